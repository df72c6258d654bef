"""A store that is busy answers 503 (clients retry it), never a bare 500."""

import sqlite3

from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from flowyard.orchestrator.app import STORE_BUSY, create_app
from flowyard.settings import Settings


def _app_raising(tmp_path, error: Exception):
    app = create_app(Settings(home=tmp_path), redis_url="redis://127.0.0.1:1")

    async def store_work() -> None:
        raise error

    app.add_api_route("/api/store-work", store_work, methods=["POST"])
    return app


def test_a_locked_database_is_a_503_to_retry(tmp_path):
    """SQLite's 'database is locked' (a writer held the lock past the busy timeout)."""
    locked = OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))
    response = TestClient(_app_raising(tmp_path, locked)).post("/api/store-work")
    assert response.status_code == 503 and response.json() == {"detail": STORE_BUSY}


def test_other_operational_errors_stay_server_errors(tmp_path):
    """A broken query is a bug to see in the server's log, not something to retry."""
    broken = OperationalError("SELECT …", {}, sqlite3.OperationalError("no such column: x"))
    client = TestClient(_app_raising(tmp_path, broken), raise_server_exceptions=False)
    assert client.post("/api/store-work").status_code == 500
