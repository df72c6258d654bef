"""The engine starts lean: no server libraries on its import path."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {"fastapi", "sqlalchemy", "redis", "uvicorn", "starlette", "rq", "alembic"}

PROBE = """
import json, sys
import flowyard.engine.__main__
import flowyard.engine.runner
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))
"""


def test_engine_imports_no_server_libraries():
    """Importing the engine's entry and runner loads none of fastapi/sqlalchemy/redis/uvicorn."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert "flowyard" in loaded
    assert loaded & HEAVY == set()
