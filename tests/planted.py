"""Result records an intruder plants: unpickling one makes a marker folder (code ran)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any


class Payload:
    """Unpickling this calls ``os.mkdir(marker)``: proof that the reader ran our code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def plant(folder: Path, key: str, marker: Path, **header: Any) -> Path:
    """Write an unsigned pickled record ``key`` in ``folder`` (extra ``header`` fields
    added, e.g. a forged signature); its path."""
    fields = {"serializer": "pickle", "expiration": None, "owner": "intruder", **header}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / key
    path.write_bytes(json.dumps(fields).encode() + b"\n" + pickle.dumps(Payload(marker)))
    return path


def evil_ref(folder: Path, key: str) -> dict[str, Any]:
    """A result reference (``schemas.ResultRef`` as JSON) naming ``folder`` and ``key``."""
    storage = {"type": "local-file-system", "basepath": str(folder)}
    return {"storage": storage, "key": key, "location": str(folder / key), "serializer": "pickle"}
