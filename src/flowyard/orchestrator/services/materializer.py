"""The scheduler's passes, run in a process of their own.

A pass works out every schedule's due slots and writes up to thousands of runs: seconds of
Python CPU. In the API's process that CPU took the GIL from the event loop, and claims
stalled for 1-3 s with each pass (bench/claim_latency.py --scheduled-backlog). The leader
starts this child once and asks it for each pass; the child writes the runs and answers,
batch by batch as they commit, what to queue and the events to stream. The API only
queues and streams them: a few Redis calls per batch, with the loop free in between.

The protocol is JSON lines: the first line on the child's stdin carries the database URL
(never a command line), then one request per pass; the child answers each with ``batch``
lines and one ``done`` (or ``error``) line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog

from flowyard.orchestrator import events
from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.services.scheduler import Encoded, Window, materialize

log = structlog.get_logger()

MODULE = "flowyard.orchestrator.services.materializer"
LINE_LIMIT = 64 * 1024 * 1024  # one batch's line: its runs' queue entries and events
STOP_GRACE_SECONDS = 1.0
NICENESS = 5
"""The child yields the CPU to the API's process: claims before materialization (the
runs a pass writes are due ahead, within the scheduler's horizon)."""
OnBatch = Callable[[list[QueueEffect], list[Encoded]], Awaitable[None]]


class MaterializerGone(Exception):
    """The child ended (or answered nonsense) during a pass; the next pass starts another."""


class Materializer:
    """The API's handle on the child process (started at the first pass, on the leader)."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._busy = False  # a pass is under way (cancelled mid-pass, it may still be)

    async def run_pass(self, now: datetime, window: Window, on_batch: OnBatch) -> int:
        """One pass in the child; ``on_batch`` gets each committed batch. Returns the runs
        written."""
        async with self._lock:
            if self._busy:  # the last pass was cancelled half-way: its answers are stale
                await self._kill()
            process = await self._started()
            assert process.stdin is not None and process.stdout is not None
            request = {"now": now.isoformat(), "window": _window_fields(window)}
            self._busy = True
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                await process.stdin.drain()
                written = await self._answers(process.stdout, on_batch)
            except (MaterializerGone, OSError, ValueError) as exc:
                await self._kill()
                raise MaterializerGone(str(exc)) from exc
            self._busy = False  # not on cancellation: then the child is still at work
            return written

    async def _answers(self, stdout: asyncio.StreamReader, on_batch: OnBatch) -> int:
        while True:
            line = await stdout.readline()
            if not line:
                raise MaterializerGone("the scheduler process ended")
            answer = json.loads(line)
            if "batch" in answer:
                effects = [QueueEffect(*fields) for fields in answer["batch"]]
                await on_batch(effects, [tuple(e) for e in answer["events"]])
            elif "done" in answer:
                return int(answer["done"])
            else:
                log.error("scheduler_pass_failed", error=answer.get("error"))
                return 0

    async def _started(self) -> asyncio.subprocess.Process:
        if self._process is not None and self._process.returncode is None:
            return self._process
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"database_url": self._database_url}).encode())
        self._process.stdin.write(b"\n")
        log.info("scheduler_process_started", pid=self._process.pid)
        return self._process

    async def stop(self) -> None:
        """End the child: EOF on its stdin when idle; killed when mid-pass (a pass killed
        half-way loses nothing: its batches committed, the next pass writes the rest)."""
        process = self._process
        if self._busy or process is None or process.stdin is None:
            await self._kill()
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            await self._kill()
        self._process = None

    async def _kill(self) -> None:
        process, self._process = self._process, None
        self._busy = False
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()


def can_serve(database_url: str) -> bool:
    """Whether another process can open this database (not an in-memory SQLite one)."""
    return not (
        database_url.startswith("sqlite")
        and (":memory:" in database_url or database_url.rstrip("/") in ("sqlite:", "sqlite:/"))
    )


def _window_fields(window: Window) -> dict[str, Any]:
    return {
        "max_runs": window.max_runs,
        "horizon_seconds": window.horizon_seconds,
        "max_catch_up": window.max_catch_up,
        "max_per_pass": window.max_per_pass,
    }


# -- the child ---------------------------------------------------------------------------------


def _effect_fields(effect: QueueEffect) -> list[Any]:
    return [
        effect.pool,
        effect.queue,
        effect.run_id,
        effect.release,
        effect.enqueue_at,
        effect.unqueue,
        effect.deployment_id,
        effect.priority,
    ]


def serve(lines: Any, out: Any) -> None:
    """Answer pass requests read from ``lines`` on ``out`` until EOF."""
    from flowyard.events.schemas import Event, dumps
    from flowyard.store import Database

    database_url = json.loads(next(lines))["database_url"]
    db = Database(database_url)
    committed: list[Event] = []
    events.install(db, committed.extend)

    def send(answer: dict[str, Any]) -> None:
        out.write(json.dumps(answer, separators=(",", ":")) + "\n")
        out.flush()

    def batch_done(effects: list[QueueEffect]) -> None:
        encoded = [(str(e.id), e.event, dumps(e)) for e in committed]
        committed.clear()
        send({"batch": [_effect_fields(e) for e in effects], "events": encoded})

    for line in lines:
        request = json.loads(line)
        try:
            now = datetime.fromisoformat(request["now"])
            written = materialize(db, now, Window(**request["window"]), on_batch=batch_done)
        except Exception as exc:  # reported to the API, which logs it; the next pass goes on
            committed.clear()
            send({"error": f"{type(exc).__name__}: {exc}"})
            continue
        send({"done": len(written)})
    db.dispose()


def main() -> None:
    from flowyard.log_config import configure_logging

    configure_logging()  # on stderr: stdout carries the answers
    os.nice(NICENESS)
    serve(iter(sys.stdin.readline, ""), sys.stdout)


if __name__ == "__main__":
    main()
