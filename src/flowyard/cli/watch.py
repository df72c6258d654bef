"""Following a flow run from the terminal: its state changes and its logs as they arrive."""

from __future__ import annotations

import time
from dataclasses import dataclass

import click

from flowyard import schemas as s
from flowyard.cli.output import state_text
from flowyard.client import FlowyardClient
from flowyard.errors import FlowyardError
from flowyard.states import StateType

POLL_SECONDS = 0.25
WORKER_CHECK_POLLS = 20  # while a run waits, look at its pool every ~5 s


@dataclass(frozen=True)
class FinalState:
    type: StateType
    message: str | None

    @property
    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED


def format_log(log: s.Log, task_run_name: str | None = None) -> str:
    """One line; a task's log names its task run as a script run prints it."""
    stamp = log.timestamp.strftime("%H:%M:%S.%f")[:-3]
    message = log.message
    if log.task_run_id is not None:
        message = f"Task run {task_run_name or log.task_run_id[:8]!r} - {message}"
    return f"{stamp} | {_level(log.level):<7} | {log.source:<6} | {message}"


def _learn_task_names(
    api: FlowyardClient, run_id: str, logs: list[s.Log], names: dict[str, str]
) -> None:
    """Add the names of the task runs ``logs`` mention that ``names`` lacks (one request;
    a task run not recorded yet is shown by its id's prefix)."""
    if any(log.task_run_id and log.task_run_id not in names for log in logs):
        names.update((task_run.id, task_run.name) for task_run in api.list_task_runs(run_id))


def _level(level: int) -> str:
    return {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}.get(
        level, str(level)
    )


def print_logs(
    api: FlowyardClient, run_id: str, after_id: int = 0, names: dict[str, str] | None = None
) -> int:
    """Print logs after ``after_id``; returns the last id printed. ``names`` (task run id →
    name) is kept across calls by a caller that polls.

    Each page is printed in time order: the engine's records and the worker's capture of
    the process output reach the API separately, a moment apart.
    """
    names = {} if names is None else names
    while True:
        logs = api.read_logs(run_id, after_id=after_id)
        _learn_task_names(api, run_id, logs, names)
        for log in sorted(logs, key=lambda entry: entry.timestamp):
            click.echo(format_log(log, names.get(log.task_run_id or "")))
        if logs:
            after_id = max(log.id for log in logs)
        if len(logs) < 1000:
            return after_id


def drain_logs(
    api: FlowyardClient,
    run_id: str,
    after_id: int,
    *,
    idle: float = 0.6,
    most: float = 3.0,
    names: dict[str, str] | None = None,
) -> int:
    """After a run ended, print the output its infrastructure shipped a moment later."""
    deadline = time.monotonic() + most
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < idle:
        newest = print_logs(api, run_id, after_id, names)
        if newest != after_id:
            after_id, quiet_since = newest, time.monotonic()
        time.sleep(POLL_SECONDS / 2)
    return after_id


def watch_run(api: FlowyardClient, run_id: str, *, show_logs: bool = True) -> FinalState:
    """Print state changes (and logs) until the run reaches a final state.

    States come from the run's history, so one that lasted less than a poll (a quick
    Running) is printed too, and so is Late (a Scheduled state by another name). While the
    run waits, a pool with no online worker is said once.
    """
    shown = 0
    after_id = 0
    names: dict[str, str] = {}
    polls = 0
    pool_warned = False
    while True:
        history = api.read_flow_run_history(run_id)
        run = history.run
        states = history.states or [run.state]
        for state in states[shown:]:
            note = f": {state.message}" if state.message else ""
            click.echo(f"Flow run {run.name!r} is {state_text(state.name, state.type.value)}{note}")
        shown = max(shown, len(states))
        waiting = run.state.type in (StateType.SCHEDULED, StateType.PENDING)
        if waiting and not pool_warned and run.pool_name and polls % WORKER_CHECK_POLLS == 0:
            pool_warned = _say_if_no_worker(api, run.pool_name)
        polls += 1
        if show_logs:
            after_id = print_logs(api, run_id, after_id, names)
        if run.state.type.is_terminal:
            if show_logs:
                drain_logs(api, run_id, after_id, names=names)
            return FinalState(run.state.type, run.state.message)
        time.sleep(POLL_SECONDS)


def _say_if_no_worker(api: FlowyardClient, pool: str) -> bool:
    """Say so when no worker serving ``pool`` is online, or it is paused; True once said."""
    try:
        status = api.read_work_pool(pool).status
    except FlowyardError:
        return False
    if status == "PAUSED":
        click.echo(f"Work pool {pool!r} is paused: the run waits until it is resumed")
    elif status == "NOT_READY":
        click.echo(
            f"No online worker serves pool {pool!r}: the run waits until one does "
            f"(start one with: flowyard worker start --pool {pool})"
        )
    return status != "READY"
