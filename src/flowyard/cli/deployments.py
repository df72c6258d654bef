"""``flowyard deploy`` and ``flowyard deployment …``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from flowyard import schemas as s
from flowyard.cli.common import client, json_option
from flowyard.cli.deploy_changes import changed_fields, read_before, verdict
from flowyard.cli.output import details, emit_json, parse_assignments, table
from flowyard.cli.parameters import HELP, parse_parameters
from flowyard.cli.project_file import (
    FILE_NAME,
    STARTER,
    DeploymentEntry,
    ProjectFile,
    load_project,
    select,
)
from flowyard.cli.schedules import describe, schedule, schedule_from_options, schedule_options
from flowyard.cli.watch import watch_run
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError, FlowyardError, InvalidInput

RUN_PRIORITY = click.IntRange(s.MIN_RUN_PRIORITY, s.MAX_RUN_PRIORITY)


@click.command("deploy")
@click.argument("entrypoint", required=False)
@click.option(
    "--name",
    "-n",
    "names",
    multiple=True,
    help="Deployment name; with flowyard.yaml, which of its deployments (repeatable).",
)
@click.option("--all", "everything", is_flag=True, help="Deploy every deployment of flowyard.yaml.")
@click.option(
    "--file",
    "project_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=FILE_NAME,
    show_default=True,
    help="The project file, when no ENTRYPOINT is given.",
)
@click.option("--pool", "-p", help="Work pool that runs it (required with ENTRYPOINT).")
@click.option("--work-queue", "-q", help="Queue of the pool; default: the pool's default queue.")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help=f"Default parameter. {HELP}"
)
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
@click.option(
    "--path",
    "code_path",
    help="Where its runs find the flow's code, as their infrastructure sees it "
    "(default: this directory; for lambda pools none: the function's packaged code).",
)
@click.option("--tag", "tags", multiple=True, help="A tag for the deployment (repeatable).")
@click.option(
    "--block",
    "blocks",
    multiple=True,
    metavar="TYPE/NAME",
    help="A block the flow's code loads by name (e.g. Secret.load); its runs may read it.",
)
@click.option("--description", help="What it does (default: the flow's docstring).")
@click.option("--version", help="A version label of your choosing, e.g. a git commit.")
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
@click.option(
    "--concurrency-limit", type=click.IntRange(0), help="At most this many runs of it at once."
)
@click.option(
    "--collision-strategy",
    type=click.Choice(["enqueue", "cancel-new"]),
    default="enqueue",
    show_default=True,
    help="A run due while the limit is reached waits (enqueue) or is cancelled.",
)
@click.option(
    "--crash-retries",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="Schedule a Crashed run again up to this many times.",
)
@click.option(
    "--priority",
    type=RUN_PRIORITY,
    default=0,
    show_default=True,
    help="Its runs' priority within their queue: lower is claimed first.",
)
@schedule_options
@json_option
def deploy(
    entrypoint: str | None,
    names: tuple[str, ...],
    everything: bool,
    project_path: Path,
    pool: str | None,
    work_queue: str | None,
    params: tuple[str, ...],
    job_variables: tuple[str, ...],
    image: str | None,
    code_path: str | None,
    tags: tuple[str, ...],
    blocks: tuple[str, ...],
    description: str | None,
    version: str | None,
    catch_up: str,
    late_after: float | None,
    concurrency_limit: int | None,
    collision_strategy: str,
    crash_retries: int,
    priority: int,
    cron: str | None,
    interval: str | None,
    rrule: str | None,
    timezone: str,
    as_json: bool,
) -> None:
    """Deploy the flow at ENTRYPOINT (path/to/file.py:function) to a work pool, or the
    deployments of flowyard.yaml (--all or --name) when no ENTRYPOINT is given.

    The flow is loaded here to learn its name and parameters; it runs later, from this
    directory (or the project file's), on a worker of the pool. Its file must be inside
    that directory (or inside the one a set_working_directory pull step names).
    """
    if entrypoint is None:
        _deploy_project(project_path, names, everything, as_json)
        return
    if len(names) != 1 or pool is None:
        raise InvalidInput("with ENTRYPOINT, give one --name and --pool")
    one_schedule = schedule_from_options(cron, interval, rrule, timezone)
    variables = parse_assignments(job_variables, "--job-variable")
    if image:
        variables["image"] = image
    body = _body(
        entrypoint,
        Path(os.getcwd()),
        name=names[0],
        pool_name=pool,
        queue_name=work_queue,
        param_items=params,
        job_variables=variables,
        tags=list(tags),
        blocks=list(blocks),
        description=description,
        version=version,
        catch_up=catch_up,
        late_after_seconds=late_after,
        crash_retries=crash_retries,
        concurrency_limit=concurrency_limit,
        collision_strategy=collision_strategy,
        priority=priority,
        schedules=None if one_schedule is None else [one_schedule],
    )
    with client() as api:
        body = body.model_copy(update={"path": _recorded_path(api, pool, code_path, body.path)})
        before = read_before(api, body)
        fields = [] if before is None else changed_fields(api, before, body)
        try:
            deployment = api.create_deployment(body)
        except ApiError as exc:
            raise _pool_hint(api, pool, exc) from exc
    if as_json:
        emit_json(deployment)
        return
    click.echo(
        f"Deployed {deployment.flow_name}/{deployment.name} to work pool "
        f"{deployment.pool_name!r}: {verdict(before, fields)}."
    )
    full_name = json.dumps(f"{deployment.flow_name}/{deployment.name}")
    click.echo(f"Run it with: flowyard deployment run {full_name}")


PACKAGED_CODE_POOLS = frozenset({"lambda"})
"""Pool types whose infrastructure runs code packaged with it (a Lambda function's zip),
never a folder of the machine that deploys: their deployments get no path by default."""


def _recorded_path(
    api: FlowyardClient, pool: str, given: str | None, local: str | None
) -> str | None:
    """The deployment's path: ``--path`` when given (empty: none), none for a pool whose
    infrastructure runs its packaged code, else the folder deployed from."""
    if given is not None:
        return given or None
    try:
        pool_type = api.read_work_pool(pool).type
    except ApiError:  # a missing pool is reported by the deploy itself, with a hint
        return local
    return None if pool_type in PACKAGED_CODE_POOLS else local


def _body(
    entrypoint: str, base: Path, param_items: tuple[str, ...] = (), **fields: Any
) -> s.DeploymentCreate:
    """The deployment of the flow at ``entrypoint``, loaded here for its name and parameters
    from where its pull steps will look for it (refused if it leaves that folder);
    ``param_items`` (``--param``) are read by the flow's parameter schema."""
    from flowyard.sdk.parameters import parameter_schema
    from flowyard.sdk.sources import load_flow

    flow = load_flow(entrypoint, local_code_directory(base, fields.get("pull_steps") or []))
    if not fields.get("description"):
        fields["description"] = (flow.fn.__doc__ or "").strip() or None
    schema = parameter_schema(flow.fn)
    if param_items:
        given = parse_parameters(param_items, schema)
        fields["parameters"] = {**(fields.get("parameters") or {}), **given}
    return s.DeploymentCreate(
        flow_name=flow.name,
        entrypoint=entrypoint,
        path=str(base),
        parameter_schema=schema,
        **fields,
    )


def local_code_directory(base: Path, steps: list[s.PullStep]) -> Path:
    """Where a run will look for the entrypoint, as seen from here: the project's folder
    stands in for a clone of its repository; set_working_directory steps move on from it."""
    directory = base
    for step in steps:
        if step.git_clone is not None:
            directory = base
        elif step.set_working_directory is not None:
            directory = directory / step.set_working_directory.directory
    return directory


def _deploy_project(path: Path, names: tuple[str, ...], everything: bool, as_json: bool) -> None:
    """Check every selected deployment of the file, then apply them; none if one is wrong."""
    project = load_project(path)
    entries = select(project, names, everything)
    base = path.resolve().parent
    with client() as api:
        pools: dict[str, s.WorkPool] = {}
        bodies = [_checked_body(api, pools, path, project, entry, base) for entry in entries]
        befores = [read_before(api, body) for body in bodies]
        verdicts = [
            verdict(old, [] if old is None else changed_fields(api, old, body))
            for old, body in zip(befores, bodies, strict=True)
        ]
        deployed = [api.create_deployment(body) for body in bodies]
        # the file's triggers are all the deployment has: none removes earlier ones
        triggers = [
            api.set_deployment_triggers(d.id, e.triggers)
            for d, e in zip(deployed, entries, strict=True)
        ]
    if as_json:
        emit_json(deployed)
        return
    for dep, made, said in zip(deployed, triggers, verdicts, strict=True):
        more = f" with {len(made)} trigger(s)" if made else ""
        click.echo(
            f"Deployed {dep.flow_name}/{dep.name} to work pool {dep.pool_name!r}{more}: {said}."
        )


def _checked_body(
    api: FlowyardClient,
    pools: dict[str, s.WorkPool],
    path: Path,
    project: ProjectFile,
    entry: DeploymentEntry,
    base: Path,
) -> s.DeploymentCreate:
    from flowyard.blocks import merge_variables
    from flowyard.orchestrator.parameters import check_parameters
    from flowyard.orchestrator.schedules import ScheduleSpec, validate

    try:
        schedules = [schedule.to_create() for schedule in entry.schedules]
        for sch in schedules:
            validate(ScheduleSpec(sch.kind, sch.expression, sch.timezone, sch.anchor_date))
        body = _body(
            entry.entrypoint,
            base,
            name=entry.name,
            pool_name=entry.work_pool.name,
            queue_name=entry.work_pool.work_queue_name,
            parameters=entry.parameters,
            job_variables=entry.work_pool.job_variables,
            tags=entry.tags,
            blocks=entry.blocks,
            description=entry.description,
            version=entry.version,
            catch_up=entry.catch_up,
            late_after_seconds=entry.late_after_seconds,
            crash_retries=entry.crash_retries,
            concurrency_limit=entry.concurrency_limit,
            collision_strategy=entry.collision_strategy,
            priority=entry.priority,
            pull_steps=project.pull if entry.pull is None else entry.pull,
            schedules=schedules,
        )
        check_parameters(body.parameter_schema, body.parameters, partial=True)
        _check_triggers(entry)
        if entry.work_pool.name not in pools:
            try:
                pools[entry.work_pool.name] = api.read_work_pool(entry.work_pool.name)
            except ApiError as exc:
                raise _pool_hint(api, entry.work_pool.name, exc) from exc
        merge_variables(pools[entry.work_pool.name].base_job_template, body.job_variables)
        if pools[entry.work_pool.name].type in PACKAGED_CODE_POOLS and not body.pull_steps:
            body = body.model_copy(update={"path": None})
    except (FlowyardError, ValidationError) as exc:
        raise InvalidInput(f"{path}: deployment {entry.name!r}: {exc}") from exc
    return body


def _pool_hint(api: FlowyardClient, pool: str, exc: ApiError) -> FlowyardError:
    """``exc``, or when it says that ``pool`` does not exist, the pools that do."""
    if exc.status_code != 404 or f"work pool {pool!r} not found" not in exc.message:
        return exc
    names = ", ".join(sorted(p.name for p in api.list_work_pools())) or "none yet"
    return InvalidInput(
        f"work pool {pool!r} not found; the pools are: {names} "
        f"(or create it: flowyard work-pool create {pool} --type process)"
    )


def _check_triggers(entry: DeploymentEntry) -> None:
    """The templates of the entry's triggers compile (the server checks them again)."""
    from flowyard.orchestrator.automations.checks import template_errors
    from flowyard.schemas.automations import deployment_automation

    for n, trigger in enumerate(entry.triggers):
        doc = deployment_automation(trigger, deployment_id="-", default_name="-")
        for error in template_errors(doc, ()):
            where = ".".join(str(part) for part in error["loc"][2:])
            raise InvalidInput(f"triggers[{n}].{where}: {error['msg']}")


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
            ("blocks", dep.blocks),
            ("description", dep.description),
            ("catch-up", dep.catch_up),
            ("late after", f"{dep.late_after_seconds:g} s" if dep.late_after_seconds else "-"),
            ("crash retries", dep.crash_retries),
            ("priority", dep.priority),
            (
                "concurrency limit",
                "-"
                if dep.concurrency_limit is None
                else f"{dep.concurrency_limit} ({dep.collision_strategy})",
            ),
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


@deployment.command("delete")
@click.argument("name")
def delete_deployment(name: str) -> None:
    """Delete a deployment, its schedules and triggers, and its runs not started yet (its
    finished runs stay); refused while a run of it is in flight."""
    with client() as api:
        api.delete_deployment(name)
    click.echo(f"Deleted deployment {name}.")


@deployment.command("run")
@click.argument("name")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help=f"Parameter override. {HELP}"
)
@click.option("--params", "params_json", help="Parameters as a JSON object.")
@click.option(
    "--job-variable",
    "job_variables",
    multiple=True,
    metavar="KEY=VALUE",
    help="Job variable for this run only, over the deployment's (repeatable).",
)
@click.option(
    "--priority",
    type=RUN_PRIORITY,
    help="Within its queue, lower is claimed first (default: the deployment's, usually 0).",
)
@click.option(
    "--tag", "tags", multiple=True, help="A tag for the run, besides the deployment's (repeatable)."
)
@click.option(
    "--count",
    type=click.IntRange(1, s.MAX_BULK_RUNS),
    default=1,
    show_default=True,
    help=f"How many alike runs to create, in one request (at most {s.MAX_BULK_RUNS}).",
)
@click.option(
    "--parameter-sets",
    "sets_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON file holding a list of parameter objects: one run each, over the other "
    "parameters, in one request (the list's length is the count).",
)
@click.option("--watch", is_flag=True, help="Follow the run's states and logs until it ends.")
@json_option
def run_deployment(
    name: str,
    params: tuple[str, ...],
    params_json: str | None,
    job_variables: tuple[str, ...],
    priority: int | None,
    tags: tuple[str, ...],
    count: int,
    sets_file: Path | None,
    watch: bool,
    as_json: bool,
) -> None:
    """Create a flow run of deployment NAME ('flow/deployment' or id) now (--count or
    --parameter-sets: many)."""
    sets = _parameter_sets(sets_file, count) if sets_file else None
    if (count > 1 or sets) and watch:
        raise InvalidInput("--watch follows one run; leave it out with --count")
    parameters = _json_object(params_json) if params_json else {}
    variables = parse_assignments(job_variables, "--job-variable")
    with client() as api:
        if params:
            schema = api.read_deployment(name).parameter_schema
            parameters.update(parse_parameters(params, schema))
        body = s.DeploymentRunRequest(
            parameters=parameters, job_variables=variables, priority=priority, tags=list(tags)
        )
        if count > 1 or sets:
            many = s.DeploymentRunBulk(
                **body.model_dump(), count=len(sets) if sets else count, parameter_sets=sets
            )
            _run_many(api, name, many, as_json)
            return
        run = api.run_deployment(name, body)
        if as_json and not watch:
            emit_json(run)
            return
        click.echo(f"Created flow run {run.name!r} ({run.id}).")
        if watch:
            final = watch_run(api, run.id)
            if not final.is_completed:
                raise SystemExit(1)


def _run_many(api: FlowyardClient, name: str, body: s.DeploymentRunBulk, as_json: bool) -> None:
    if as_json:
        emit_json(api.run_deployment_bulk(name, body))
    else:  # a count is all it prints: the lean answer, ids only
        made = api.run_deployment_bulk_ids(name, body)
        click.echo(f"Created {len(made)} flow runs of {name}.")


def _parameter_sets(path: Path, count: int) -> list[dict[str, Any]]:
    """The ``--parameter-sets`` file's list: 1 to ``s.MAX_BULK_RUNS`` JSON objects."""
    try:
        sets = json.loads(path.read_text())
    except ValueError as exc:
        raise InvalidInput(f"--parameter-sets is not valid JSON: {exc}") from exc
    if not isinstance(sets, list) or not all(isinstance(one, dict) for one in sets):
        raise InvalidInput("--parameter-sets must hold a JSON list of objects")
    if not 1 <= len(sets) <= s.MAX_BULK_RUNS:
        raise InvalidInput(f"--parameter-sets must hold 1 to {s.MAX_BULK_RUNS} objects")
    if count not in (1, len(sets)):
        raise InvalidInput(f"--count {count} but --parameter-sets holds {len(sets)} objects")
    return sets


def _json_object(raw: str) -> dict[str, object]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("--params must be a JSON object")
    return value


@click.command("init")
@click.option(
    "--entrypoint",
    default="flows.py:main",
    show_default=True,
    help="The starter deployment's flow: path/to/file.py:function.",
)
@click.option("--pool", default="local", show_default=True, help="The work pool it deploys to.")
@click.option("--force", is_flag=True, help="Overwrite an existing flowyard.yaml.")
def init(entrypoint: str, pool: str, force: bool) -> None:
    """Write a commented starter flowyard.yaml in this folder."""
    target = Path(FILE_NAME)
    if target.exists() and not force:
        raise InvalidInput(f"{FILE_NAME} already exists here; --force replaces it")
    target.write_text(STARTER.format(entrypoint=entrypoint, pool=pool))
    click.echo(f"Wrote {FILE_NAME}; edit it, then: flowyard deploy --all")
