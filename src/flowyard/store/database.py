"""Connecting to the store and migrating it to the current schema."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from flowyard.private_files import private_file

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    """One engine and session factory for a database URL (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: writers take the lock up front (BEGIN IMMEDIATE); readers must not.
        self._read_engine = _make_engine(url, writer=False) if self.is_sqlite else self.engine
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if self.is_sqlite else nullcontext()
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error.

        On SQLite, writers of this process take turns on a lock first: SQLite allows one
        writer at a time, and its own busy handler waits by sleeping for milliseconds.
        """
        with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only; on SQLite it does not take the write lock."""
        with self._read_sessions() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command

        command.upgrade(alembic_config(self.engine), "head")

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection_engine"] = engine
    return config


def _make_engine(url: str, *, writer: bool = True) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            _private_database_file(Path(database))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_json_text,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy, not pysqlite, start transactions, so BEGIN IMMEDIATE takes the lock.
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
        return engine
    return create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, json_serializer=_json_text
    )


def _json_text(value: Any) -> str:
    """JSON columns' text, encoded by pydantic-core: several times faster than ``json.dumps``
    for the thousands of values (parameters, event labels) a bulk create writes."""
    return to_json(value).decode()


def _private_database_file(path: Path) -> None:
    """The SQLite file, created 0600 before SQLite opens it (its -wal and -shm files then
    get the same mode); a folder made for it is 0700, an existing one is left as it is."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_file(path)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
