"""The durable record: SQLAlchemy models and Alembic migrations (SQLite or PostgreSQL)."""

from flowyard.store import models
from flowyard.store.database import Database

__all__ = ["Database", "models"]
