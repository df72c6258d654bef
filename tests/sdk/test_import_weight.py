"""``import flowyard`` stays light: the SDK only, no server or HTTP libraries, so that a
script without a server starts fast (the quick-start benchmark's 0.25 s depends on it)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pydantic", "httpx", "sqlalchemy", "fastapi", "redis", "flowyard.schemas")


def test_importing_flowyard_and_its_public_sdk_modules_loads_no_heavy_library():
    script = (
        "import sys, flowyard, flowyard.futures, flowyard.states, flowyard.transactions, "
        "flowyard.flow_runs, flowyard.runtime, flowyard.cache_policies\n"
        f"print(sorted({{m.split('.')[0] if not m.startswith('flowyard') else m "
        f"for m in sys.modules}} & set({HEAVY!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
