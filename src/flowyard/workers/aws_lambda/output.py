"""A flow's ``print()`` output inside a Lambda function, sent to its run's logs too.

On the other worker types the worker reads the engine's stdout and stderr and ships each
line as a log of the run. In Lambda the engine runs inside the handler and its output
goes to CloudWatch only, so for one invocation ``captured_output`` puts a tee on
``sys.stdout`` and ``sys.stderr``: every line still reaches the function's own stream
(CloudWatch keeps it) and is shipped as a log of the run, stderr as a warning, with the
run's token. The engine's own log lines are not caught: its logger keeps the stream it
was configured with.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from flowyard.client.log_shipper import LogShipper, log_record

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

FLUSH_SECONDS = 10.0
"""How long the end of an invocation waits for its captured lines to reach the API."""

LineSink = Callable[[str, str], None]
"""Called with (stream name, line) for every complete line written."""


class LineTee:
    """A text stream that writes through to ``stream`` and hands each line to ``sink``."""

    def __init__(self, stream: TextIO, name: str, sink: LineSink) -> None:
        self.stream = stream
        self._name = name
        self._sink = sink
        self._pending = ""
        self._lock = threading.Lock()  # task threads print too

    def write(self, text: str) -> int:
        self.stream.write(text)
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._sink(self._name, line.rstrip("\r"))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def finish(self) -> None:
        """Hand over a last line that did not end with a newline."""
        with self._lock:
            pending, self._pending = self._pending, ""
        if pending:
            self._sink(self._name, pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def captured_output(client: FlowyardClient, run_id: str) -> Iterator[None]:
    """While inside, lines printed on stdout and stderr are also logs of ``run_id``."""
    shipper = LogShipper(client).start()

    def sink(stream: str, line: str) -> None:
        level = 30 if stream == "stderr" else 20
        timestamp = datetime.now(UTC)
        record = log_record(
            flow_run_id=run_id, level=level, message=line, timestamp=timestamp, source=stream
        )
        shipper.put(record)

    tees = (LineTee(sys.stdout, "stdout", sink), LineTee(sys.stderr, "stderr", sink))
    sys.stdout, sys.stderr = tees
    try:
        yield
    finally:
        sys.stdout, sys.stderr = tees[0].stream, tees[1].stream
        for tee in tees:
            tee.finish()
        shipper.close(FLUSH_SECONDS)
