"""The durable record: SQLAlchemy models and Alembic migrations (SQLite or PostgreSQL)."""

from flowyard.store.database import Database
from flowyard.store import models

__all__ = ["Database", "models"]
