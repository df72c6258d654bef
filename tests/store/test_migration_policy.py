"""The migration policy of docs/upgrading.md, checked on the migrations' source: the old
server keeps serving while a migration runs on PostgreSQL, so nothing may lock a busy
table for longer than a moment."""

from __future__ import annotations

import ast
from pathlib import Path

from flowyard.store.database import MIGRATIONS

BUSY = {"flow_runs", "flow_run_states", "task_runs", "logs", "events"}
POLICY_SINCE = 16
"""Migrations before 0016 ran before the policy was written (on small tables)."""


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _tables_of_batches(tree: ast.AST) -> dict[str, str]:
    """``with op.batch_alter_table("t") as batch``: batch → t."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and getattr(call.func, "attr", None) == "batch_alter_table"
                    and isinstance(item.optional_vars, ast.Name)
                ):
                    found[item.optional_vars.id] = _text(call.args[0]) if call.args else ""
    return found


def _table(call: ast.Call, batches: dict[str, str]) -> str | None:
    """The table an ``op.…`` (or ``batch.…``) call changes."""
    owner = call.func.value  # type: ignore[attr-defined]
    if isinstance(owner, ast.Name) and owner.id in batches:
        return batches[owner.id]
    position = 1 if call.func.attr == "create_index" else 0  # type: ignore[attr-defined]
    given = call.args[position] if len(call.args) > position else _keyword(call, "table_name")
    return _text(given)


def _index(call: ast.Call, table: str) -> str | None:
    concurrently = _keyword(call, "postgresql_concurrently")
    if isinstance(concurrently, ast.Constant) and concurrently.value:
        return None
    return f"index on {table} not built CONCURRENTLY"


def _new_column(call: ast.Call, table: str) -> str | None:
    column = call.args[-1] if call.args else None
    if not isinstance(column, ast.Call):
        return None
    nullable = _keyword(column, "nullable")
    required = isinstance(nullable, ast.Constant) and nullable.value is False
    if required and _keyword(column, "server_default") is None:
        return f"required column on {table} without a default"
    return None


def _changed_column(call: ast.Call, table: str) -> str | None:
    if _keyword(call, "type_") is None:
        return None
    return f"type of a column of {table} changed in place"


CHECKS = {"create_index": _index, "add_column": _new_column, "alter_column": _changed_column}


def _statement(call: ast.Call) -> str | None:
    words = ((_text(call.args[0]) if call.args else None) or "").lower().split()
    if words[:1] in (["update"], ["delete"]) and BUSY & set(words):
        return f"a whole-table {words[0].upper()} of a busy table"
    return None


def violations(source: str) -> list[str]:
    """What in a migration's ``source`` would lock a busy table on PostgreSQL."""
    tree = ast.parse(source)
    batches = _tables_of_batches(tree)
    found = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        operation = getattr(call.func, "attr", None)
        problem = None
        if operation == "execute":
            problem = _statement(call)
        elif operation in CHECKS and (table := _table(call, batches)) in BUSY:
            problem = CHECKS[operation](call, table)  # type: ignore[arg-type]
        if problem:
            found.append((call.lineno, f"{problem} (line {call.lineno})"))
    return [text for _, text in sorted(found)]


def test_the_migrations_since_the_policy_keep_it():
    checked = []
    for path in sorted((Path(MIGRATIONS) / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")):
        if int(path.name[:4]) >= POLICY_SINCE:
            checked.append(path.name)
            assert violations(path.read_text()) == [], path.name
    assert "0016_runs_by_state_created.py" in checked


def test_the_check_finds_what_would_lock_a_busy_table():
    """The checker itself, on a migration that breaks every rule once."""
    bad = """
import sqlalchemy as sa
from alembic import op

def upgrade():
    op.create_index("ix_runs_x", "flow_runs", ["x"])
    op.create_index("ix_pools_x", "work_pools", ["x"])
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("y", sa.Integer(), nullable=False))
        batch.add_column(sa.Column("z", sa.Integer(), nullable=False, server_default="0"))
        batch.alter_column("name", type_=sa.Text())
    op.execute("UPDATE flow_runs SET x = 1")
"""
    assert violations(bad) == [
        "index on flow_runs not built CONCURRENTLY (line 6)",
        "required column on task_runs without a default (line 9)",
        "type of a column of task_runs changed in place (line 11)",
        "a whole-table UPDATE of a busy table (line 12)",
    ]
