"""The one HTTP client of the Flowyard API, used by workers, the engine and the CLI.

``FlowyardClient`` (typed documents, pydantic) is imported on first use, as the package
``flowyard`` does for its names: a CLI command that only lists things reads the API's
JSON through ``transport.ApiTransport`` and never loads the API documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowyard.client.retries import INTERACTIVE, ONCE, STANDARD, WORKER, RetryPolicy, is_transient

if TYPE_CHECKING:
    from flowyard.client.http import FlowyardClient

__all__ = [
    "INTERACTIVE",
    "ONCE",
    "STANDARD",
    "WORKER",
    "FlowyardClient",
    "RetryPolicy",
    "is_transient",
]


def __getattr__(name: str) -> Any:
    """``FlowyardClient``, imported on first use (PEP 562) and kept."""
    if name != "FlowyardClient":
        raise AttributeError(f"module 'flowyard.client' has no attribute {name!r}")
    from flowyard.client.http import FlowyardClient

    globals()[name] = FlowyardClient
    return FlowyardClient
