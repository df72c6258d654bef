"""Automations are evaluated against a real store: SQLite and PostgreSQL."""

from __future__ import annotations

from tests.store.conftest import database

__all__ = ["database"]
