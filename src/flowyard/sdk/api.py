"""Recording flow runs called directly from a script, when a server is configured.

A script that calls a flow while ``FLOWYARD_API_URL`` is set and the API answers has its
flow runs, task runs, states and logs recorded there (so they show in ``flowyard
flow-run ls``). With the variable unset, nothing is contacted and everything stays
in-process; with the API unreachable the run stays local and a warning says why.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

_lock = threading.Lock()
_clients: dict[str, FlowyardClient | None] = {}

PROBE_SECONDS = 2.0


def direct_run_client() -> FlowyardClient | None:
    """The API client for direct flow calls, or None to run in-process (probed once per URL)."""
    url = os.environ.get("FLOWYARD_API_URL")
    if not url:
        return None
    with _lock:
        if url not in _clients:
            _clients[url] = _connect()
        return _clients[url]


_required: dict[str, FlowyardClient] = {}


def required_client(who_needs: str) -> FlowyardClient:
    """The API client for what cannot run without a server (``who_needs`` it, e.g.
    "resuming a flow run needs"): ``RuntimeError`` saying so when no API is configured."""
    url = os.environ.get("FLOWYARD_API_URL")
    if not url:
        raise RuntimeError(
            f"{who_needs} a Flowyard API: set FLOWYARD_API_URL (and FLOWYARD_API_KEY if the "
            "server has keys)"
        )
    with _lock:
        if url not in _required:
            from flowyard.client import FlowyardClient
            from flowyard.settings import Settings

            _required[url] = FlowyardClient.from_settings(Settings())
        return _required[url]


def _connect() -> FlowyardClient | None:
    from flowyard.client import FlowyardClient
    from flowyard.errors import FlowyardError
    from flowyard.settings import Settings

    client = FlowyardClient.from_settings(Settings(), retry_seconds=PROBE_SECONDS)
    try:
        client.health()
    except FlowyardError as exc:
        client.close()
        sys.stderr.write(f"flowyard: the API is not reachable ({exc}); running the flow locally\n")
        return None
    return client


def jsonable(parameters: dict[str, Any], fn: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Parameters as JSON values for the API (a short ``repr`` for anything else), secrets
    masked (``redaction.py``; ``fn``'s annotations say which parameters are secret)."""
    from flowyard.sdk.redaction import masked

    out: dict[str, Any] = {}
    for name, value in masked(parameters, fn).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = repr(value)[:500]
        out[name] = value
    return out
