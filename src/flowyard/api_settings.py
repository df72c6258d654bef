"""The few settings a client of the API needs: where it is, the key, the body limit.

``Settings`` (pydantic-settings) reads every ``FLOWYARD_*`` variable, and importing it
costs a CLI command ~50 ms before it does anything. A command that only talks to the API
reads these three with ``ApiSettings.from_env`` instead: the same variables, the same
defaults (``Settings`` takes them from here) and the same rules (names in any case, the
body limit at least ``MIN_MAX_REQUEST_BYTES``); ``tests/test_api_settings.py`` keeps the
two readings equal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from flowyard.errors import InvalidInput

ENV_PREFIX = "FLOWYARD_"
DEFAULT_API_URL = "http://127.0.0.1:4200"
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
MIN_MAX_REQUEST_BYTES = 1024


@dataclass(frozen=True)
class ApiSettings:
    """What ``FlowyardClient.from_settings`` reads; ``Settings`` has the same attributes."""

    api_url: str = DEFAULT_API_URL
    api_key: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Read ``FLOWYARD_API_URL``, ``FLOWYARD_API_KEY`` and ``FLOWYARD_MAX_REQUEST_BYTES``
        (in any case, as ``Settings`` does) from ``environ`` (default: this process's)."""
        environ = os.environ if environ is None else environ
        found = {name.lower(): value for name, value in environ.items()}
        url, key, limit = (
            found.get((ENV_PREFIX + name).lower())
            for name in ("api_url", "api_key", "max_request_bytes")
        )
        return cls(
            api_url=DEFAULT_API_URL if url is None else url,
            api_key=key,
            max_request_bytes=DEFAULT_MAX_REQUEST_BYTES if limit is None else _limit(limit),
        )


def _limit(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < MIN_MAX_REQUEST_BYTES:
        raise InvalidInput(
            f"{ENV_PREFIX}MAX_REQUEST_BYTES must be a whole number of bytes, at least "
            f"{MIN_MAX_REQUEST_BYTES}, not {text!r}"
        )
    return limit
