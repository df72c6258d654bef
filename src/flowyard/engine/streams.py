"""stdout and stderr that survive their reader.

A process worker reads a run's output through pipes. When that worker dies, the run goes
on (its engine keeps heartbeating), but every later ``print`` or log line would raise
``BrokenPipeError`` and fail the flow. These wrappers send the output to ``/dev/null``
from the first broken write on, so the run finishes and still reports its final state.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class ResilientStream:
    """A text stream whose writes never fail because nobody reads any more."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (BrokenPipeError, ValueError):
            self._detach()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            self._detach()

    def _detach(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        except (OSError, ValueError):
            pass
        finally:
            os.close(devnull)
        self._stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def protect_standard_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` (once)."""
    if not isinstance(sys.stdout, ResilientStream):
        sys.stdout = ResilientStream(sys.stdout)
    if not isinstance(sys.stderr, ResilientStream):
        sys.stderr = ResilientStream(sys.stderr)
