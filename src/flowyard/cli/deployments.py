"""``flowyard deploy`` and ``flowyard deployment …``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from flowyard import schemas as s
from flowyard.cli.common import client, json_option
from flowyard.cli.output import details, emit_json, parse_assignments, table
from flowyard.cli.schedules import describe, schedule, schedule_from_options, schedule_options
from flowyard.cli.watch import watch_run
from flowyard.errors import InvalidInput


@click.command("deploy")
@click.argument("entrypoint")
@click.option("--name", "-n", required=True, help="Deployment name.")
@click.option("--pool", "-p", required=True, help="Work pool that runs it.")
@click.option("--work-queue", "-q", help="Queue of the pool; default: the pool's default queue.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Default parameter.")
@click.option(
    "--job-variable",
    "job_variables",
    multiple=True,
    metavar="KEY=VALUE",
    help="Job variable for the pool's template.",
)
@click.option(
    "--image", help="Container image to run in (the job variable 'image' of docker pools)."
)
@click.option("--tag", "tags", multiple=True)
@click.option("--description")
@click.option("--version")
@click.option(
    "--catch-up",
    type=click.Choice(["all", "latest", "skip"]),
    default="all",
    show_default=True,
    help="Scheduled runs that did not start in time: run all, only the latest, or skip them.",
)
@click.option(
    "--late-after", type=float, help="Seconds before a run not started is Late (default: 15)."
)
@schedule_options
@json_option
def deploy(
    entrypoint: str,
    name: str,
    pool: str,
    work_queue: str | None,
    params: tuple[str, ...],
    job_variables: tuple[str, ...],
    image: str | None,
    tags: tuple[str, ...],
    description: str | None,
    version: str | None,
    catch_up: str,
    late_after: float | None,
    cron: str | None,
    interval: float | None,
    rrule: str | None,
    timezone: str,
    as_json: bool,
) -> None:
    """Deploy the flow at ENTRYPOINT (path/to/file.py:function) to a work pool.

    The flow is loaded here to learn its name and parameters; it runs later, from this
    directory, on a worker of the pool.
    """
    from flowyard.engine.entrypoint import load_flow
    from flowyard.sdk.parameters import parameter_schema

    one_schedule = schedule_from_options(cron, interval, rrule, timezone)
    base = Path(os.getcwd())
    flow = load_flow(entrypoint, base)
    variables = parse_assignments(job_variables, "--job-variable")
    if image:
        variables["image"] = image
    body = s.DeploymentCreate(
        name=name,
        flow_name=flow.name,
        entrypoint=entrypoint,
        path=str(base),
        pool_name=pool,
        queue_name=work_queue,
        parameters=parse_assignments(params, "--param"),
        parameter_schema=parameter_schema(flow.fn),
        job_variables=variables,
        tags=list(tags),
        description=description or (flow.fn.__doc__ or "").strip() or None,
        version=version,
        catch_up=catch_up,  # type: ignore[arg-type]
        late_after_seconds=late_after,
        schedules=None if one_schedule is None else [one_schedule],
    )
    with client() as api:
        deployment = api.create_deployment(body)
    if as_json:
        emit_json(deployment)
        return
    click.echo(
        f"Deployed {deployment.flow_name}/{deployment.name} to work pool {deployment.pool_name!r}."
    )
    full_name = json.dumps(f"{deployment.flow_name}/{deployment.name}")
    click.echo(f"Run it with: flowyard deployment run {full_name}")


@click.group("deployment")
def deployment() -> None:
    """Inspect and run deployments."""


deployment.add_command(schedule)


@deployment.command("ls")
@json_option
def list_deployments(as_json: bool) -> None:
    """List deployments."""
    with client() as api:
        found = api.list_deployments()
    if as_json:
        emit_json(found)
        return
    table(
        ["deployment", "pool", "queue", "entrypoint"],
        [(f"{d.flow_name}/{d.name}", d.pool_name, d.queue_name, d.entrypoint) for d in found],
    )


@deployment.command("inspect")
@click.argument("name")
@json_option
def inspect_deployment(name: str, as_json: bool) -> None:
    """Show a deployment (by 'flow/deployment' or id)."""
    with client() as api:
        dep = api.read_deployment(name)
        schedules = api.list_schedules(dep.id)
    if as_json:
        schedule_docs = [sch.model_dump(mode="json") for sch in schedules]
        emit_json({**dep.model_dump(mode="json"), "schedules": schedule_docs})
        return
    details(
        [
            ("deployment", f"{dep.flow_name}/{dep.name}"),
            ("id", dep.id),
            ("status", "paused" if dep.paused else "active"),
            ("pool", dep.pool_name),
            ("queue", dep.queue_name),
            ("entrypoint", dep.entrypoint),
            ("path", dep.path),
            ("parameters", dep.parameters),
            ("job variables", dep.job_variables),
            ("tags", dep.tags),
            ("description", dep.description),
            ("catch-up", dep.catch_up),
            ("late after", f"{dep.late_after_seconds:g} s" if dep.late_after_seconds else "-"),
            *((f"schedule {sch.id[:8]}", describe(sch)) for sch in schedules),
        ]
    )


@deployment.command("pause")
@click.argument("name")
def pause_deployment(name: str) -> None:
    """Pause a deployment: no scheduled runs; those not yet started are deleted."""
    with client() as api:
        dep = api.set_deployment_paused(name, True)
    click.echo(f"Paused deployment {dep.flow_name}/{dep.name}.")


@deployment.command("resume")
@click.argument("name")
def resume_deployment(name: str) -> None:
    """Resume a paused deployment; its schedules run again from now on."""
    with client() as api:
        dep = api.set_deployment_paused(name, False)
    click.echo(f"Resumed deployment {dep.flow_name}/{dep.name}.")


@deployment.command("run")
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Parameter override.")
@click.option("--params", "params_json", help="Parameters as a JSON object.")
@click.option("--job-variable", "job_variables", multiple=True, metavar="KEY=VALUE")
@click.option("--watch", is_flag=True, help="Follow the run's states and logs until it ends.")
@json_option
def run_deployment(
    name: str,
    params: tuple[str, ...],
    params_json: str | None,
    job_variables: tuple[str, ...],
    watch: bool,
    as_json: bool,
) -> None:
    """Create a flow run of deployment NAME ('flow/deployment' or id) now."""
    parameters = _json_object(params_json) if params_json else {}
    parameters.update(parse_assignments(params, "--param"))
    body = s.DeploymentRunRequest(
        parameters=parameters, job_variables=parse_assignments(job_variables, "--job-variable")
    )
    with client() as api:
        run = api.run_deployment(name, body)
        if as_json and not watch:
            emit_json(run)
            return
        click.echo(f"Created flow run {run.name!r} ({run.id}).")
        if watch:
            final = watch_run(api, run.id)
            if not final.is_completed:
                raise SystemExit(1)


def _json_object(raw: str) -> dict[str, object]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("--params must be a JSON object")
    return value
