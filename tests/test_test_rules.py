"""Rules for the tests themselves, that ruff cannot check: no fixed waits, and no test
module importing another (what two suites share lives in tests/helpers/)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ALLOWED = "noqa: TID251"  # as for time.sleep and asyncio.sleep: the line says why


def _fixed_waits(path: Path) -> list[str]:
    """``threading.Event().wait(n)``: a sleep in disguise (a fresh event is never set)."""
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        fresh_event = (
            node.func.attr == "wait"
            and isinstance(target, ast.Call)
            and (getattr(target.func, "attr", None) or getattr(target.func, "id", None)) == "Event"
        )
        if fresh_event and (node.args or node.keywords) and ALLOWED not in lines[node.lineno - 1]:
            found.append(f"{path.relative_to(TESTS.parent)}:{node.lineno}")
    return found


def test_no_test_waits_a_fixed_time():
    """Wait on a condition with tests.waiting (a deadline), or say on the line why the wait
    is the workload itself (a flow that takes this long, a fault that lasts this long)."""
    found = [hit for path in sorted(TESTS.rglob("*.py")) for hit in _fixed_waits(path)]
    assert found == []


def _imported_test_modules(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [
            f"{path.relative_to(TESTS.parent)}:{node.lineno} imports {name}"
            for name in names
            if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
        ]
    return found


def test_no_test_module_imports_another():
    """A test module is run, not imported: importing one ties two suites together, so a
    change to one breaks the other. Shared helpers live in tests/helpers/."""
    found = [hit for path in sorted(TESTS.rglob("*.py")) for hit in _imported_test_modules(path)]
    assert found == []
