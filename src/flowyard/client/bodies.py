"""Request bodies as the client sends them, and their sizes as the API's limit counts them."""

from __future__ import annotations

import json
from typing import Any


def json_bytes(document: Any) -> bytes:
    """``document`` as the client sends it: compact UTF-8 JSON, so that its size is what
    the API's limit counts. A lone surrogate, which UTF-8 cannot carry, becomes ``?``."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8", "replace")


def json_size(document: Any) -> int:
    return len(json_bytes(document))
