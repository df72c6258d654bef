"""``flowyard flow-run …``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flowyard.cli.common import client, json_option, reader
from flowyard.cli.output import details, emit_json, state_text, table, timestamp

if TYPE_CHECKING:
    from flowyard import schemas as s
    from flowyard.client import FlowyardClient
    from flowyard.schemas import FlowRunGraph


@click.group("flow-run")
def flow_run() -> None:
    """List, inspect, graph, follow and cancel flow runs (by id or a unique id prefix)."""


@flow_run.command("ls")
@click.option("--state", help="Only these states, comma-separated (e.g. RUNNING,PENDING).")
@click.option("--pool", help="Only runs of this work pool.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="Show at most this many.",
)
@json_option
def list_runs(state: str | None, pool: str | None, limit: int, as_json: bool) -> None:
    """List recent flow runs, newest first."""
    with reader() as api:
        runs = api.get("flow_runs", state=state, pool=pool, limit=limit)
    if as_json:
        emit_json(runs)
        return
    table(
        ["id", "name", "flow", "deployment", "state", "scheduled", "pool"],
        [
            (
                r["id"],
                r["name"],
                r.get("flow_name"),
                r.get("deployment_name"),
                state_text(r["state"]["name"], r["state"]["type"]),
                timestamp(r.get("scheduled_time")),
                r.get("pool_name"),
            )
            for r in runs
        ],
    )


@flow_run.command("inspect")
@click.argument("run_id")
@json_option
def inspect_run(run_id: str, as_json: bool) -> None:
    """Show a flow run, its state history and its task runs."""
    with client() as api:
        history = api.read_flow_run_history(run_id)
        tasks = api.list_task_runs(history.run.id)
    if as_json:
        emit_json(
            {
                **history.model_dump(mode="json"),
                "task_runs": [t.model_dump(mode="json") for t in tasks],
            }
        )
        return
    run = history.run
    details(
        [
            ("id", run.id),
            ("name", run.name),
            ("flow", run.flow_name),
            ("deployment", run.deployment_name),
            ("state", run.state.name),
            ("message", run.state.message),
            ("pool", run.pool_name),
            ("queue", run.queue_name),
            ("parameters", run.parameters),
            ("scheduled", run.scheduled_time),
            ("started", run.start_time),
            ("ended", run.end_time),
            ("worker", run.worker_name),
            ("infrastructure", run.infrastructure_id),
            *(
                (f"infrastructure {key}", value)
                for key, value in run.infrastructure_details.items()
            ),
        ]
    )
    click.echo("\nState history:")
    table(
        ["time", "state", "message"], [(st.timestamp, st.name, st.message) for st in history.states]
    )
    click.echo("\nTask runs:")
    table(
        ["task run", "state", "started", "ended", "attempts", "tags"],
        [
            (t.name, t.state_name or t.state_type, t.start_time, t.end_time, t.run_count,
             ", ".join(t.tags) or None)
            for t in tasks
        ],
    )  # fmt: skip


@flow_run.command("graph")
@click.argument("run_id")
@json_option
def run_graph(run_id: str, as_json: bool) -> None:
    """Show a flow run's task runs and subflow runs, in start order, with their upstreams."""
    with client() as api:
        graph = api.read_flow_run_graph(run_id)
    if as_json:
        emit_json(graph)
        return
    click.echo(f"{len(graph.nodes)} runs, {len(graph.edges)} edges")
    upstream = _upstream_names(graph)
    table(
        ["run", "kind", "state", "started", "duration", "tags", "upstream"],
        [
            (
                node.name,
                node.kind.removesuffix("-run"),
                node.state_name or node.state_type.display_name,
                node.start_time,
                _duration(node.start_time, node.end_time),
                ", ".join(node.tags) or None,
                ", ".join(upstream.get(node.id, [])) or None,
            )
            for node in graph.nodes
        ],
    )


def _duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    return f"{(end - start).total_seconds():.3f}s"


def _upstream_names(graph: FlowRunGraph) -> dict[str, list[str]]:
    """For each run, ``name (parameter)`` of each run that fed it."""
    names = {node.id: node.name for node in graph.nodes}
    fed: dict[str, list[str]] = {}
    for edge in graph.edges:
        fed.setdefault(edge.downstream, []).append(f"{names[edge.upstream]} ({edge.parameter})")
    return fed


@flow_run.command("logs")
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new logs until the run ends.")
@json_option
def run_logs(run_id: str, follow: bool, as_json: bool) -> None:
    """Print a flow run's logs."""
    if follow and as_json:
        raise click.UsageError("--json prints the logs so far; give it without --follow")
    from flowyard.cli.watch import print_logs, watch_run

    with client() as api:
        run = api.read_flow_run(run_id)
        if as_json:
            emit_json(_all_logs(api, run.id))
        elif follow and not run.state.type.is_terminal:
            watch_run(api, run.id)
        else:
            print_logs(api, run.id)


def _all_logs(api: FlowyardClient, run_id: str) -> list[s.Log]:
    """Every log of the run so far, page by page, in the order they were recorded."""
    logs: list[s.Log] = []
    while True:
        page = api.read_logs(run_id, after_id=logs[-1].id if logs else 0)
        logs.extend(page)
        if len(page) < 1000:
            return logs


@flow_run.command("cancel")
@click.argument("run_id")
def cancel_run(run_id: str) -> None:
    """Cancel a flow run: at once if it has not started, else through its worker."""
    with client() as api:
        run = api.cancel_flow_run(run_id)
    click.echo(f"Flow run {run.name!r} ({run.id}) is {run.state.name}.")


@flow_run.command("resume")
@click.argument("run_id")
@click.option(
    "--input",
    "input_json",
    metavar="JSON",
    help="For a run waiting for input: a JSON object, checked against the run's schema.",
)
@click.option(
    "--input-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="For a run waiting for input: a file holding the JSON object.",
)
def resume_run(run_id: str, input_json: str | None, input_file: Path | None) -> None:
    """Resume a paused flow run (pause_flow_run: it carries on where it waits) or a
    suspended one (suspend_flow_run: it is scheduled again and starts from the top)."""
    run_input = _run_input(input_json, input_file)
    with client() as api:
        run = api.resume_flow_run(run_id, run_input=run_input)
    click.echo(f"Flow run {run.name!r} ({run.id}) is {run.state.name}.")


def _run_input(raw: str | None, path: Path | None) -> dict[str, Any] | None:
    """The ``--input`` (or ``--input-file``) JSON object; a file larger than the API takes
    is refused before it is read whole."""
    from pydantic import ValidationError

    from flowyard.errors import InvalidInput
    from flowyard.schemas.pauses import MAX_RUN_INPUT_BYTES, ResumeRequest

    if raw is not None and path is not None:
        raise InvalidInput("give --input or --input-file, not both")
    if path is not None:
        with path.open("rb") as file:
            data = file.read(MAX_RUN_INPUT_BYTES + 1)
        if len(data) > MAX_RUN_INPUT_BYTES:
            raise InvalidInput(f"--input-file is larger than {MAX_RUN_INPUT_BYTES} bytes")
        raw, option = data.decode("utf-8", errors="replace"), "--input-file"
    else:
        option = "--input"
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"{option} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{option} must hold a JSON object")
    try:  # the API's bounds, checked before sending
        ResumeRequest(run_input=value)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"{option} {reason}") from None
    return value
