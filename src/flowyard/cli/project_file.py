"""``flowyard.yaml``: several deployments of one project, declared in a file.

    pull:                                   # optional: how runs get the code
      - git_clone: {repository: https://git.example.com/etl.git, branch: main}
    deployments:
      - name: nightly
        entrypoint: flows/etl.py:etl_flow   # relative to this file's folder
        work_pool: {name: local, work_queue_name: default, job_variables: {}}
        parameters: {day: "2026-11-26"}
        schedules:
          - cron: "0 3 * * *"
            timezone: Europe/Berlin
        catch_up: latest                    # all | latest | skip
        triggers:                           # automations that run it (see docs/automations.md)
          - expect: ["upstream.done"]
            parameters: {day: "{{ event.payload.day }}"}

The whole file is checked before anything is sent: an error names the file, the
deployment and the field, and no deployment of the file is applied.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flowyard import schemas as s
from flowyard.cli.automations import field_path
from flowyard.errors import InvalidInput
from flowyard.schemas import automations as a

FILE_NAME = "flowyard.yaml"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleEntry(_Entry):
    cron: str | None = None
    interval: float | str | None = None  # seconds, or a duration: 1h30m, PT15M
    rrule: str | None = None
    timezone: str = "UTC"
    anchor_date: datetime | None = None
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleEntry:
        if sum(x is not None for x in (self.cron, self.interval, self.rrule)) != 1:
            raise ValueError("a schedule has exactly one of cron, interval, rrule")
        return self

    def to_create(self) -> s.ScheduleCreate:
        kind, expression = next(
            (kind, value)
            for kind, value in (
                ("cron", self.cron),
                ("interval", self.interval),
                ("rrule", self.rrule),
            )
            if value is not None
        )
        text = f"{expression:g}" if isinstance(expression, float) else str(expression)
        return s.ScheduleCreate(
            kind=kind,  # type: ignore[arg-type]
            expression=text,
            timezone=self.timezone,
            anchor_date=self.anchor_date,
            active=self.active,
            parameters=self.parameters,
        )


class WorkPoolRef(_Entry):
    name: str
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)


class DeploymentEntry(_Entry):
    name: str = Field(pattern=s.NAME_PATTERN)
    entrypoint: str
    work_pool: WorkPoolRef
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    blocks: list[s.BlockRef] = Field(default_factory=list)  # what the flow's code loads
    description: str | None = None
    version: str | None = None
    catch_up: Literal["all", "latest", "skip"] = "all"
    late_after_seconds: float | None = Field(default=None, ge=0)
    crash_retries: int = Field(default=0, ge=0, le=100)
    concurrency_limit: int | None = Field(default=None, ge=0)
    collision_strategy: Literal["enqueue", "cancel-new"] = "enqueue"
    priority: int = Field(default=0, ge=s.MIN_RUN_PRIORITY, le=s.MAX_RUN_PRIORITY)
    schedules: list[ScheduleEntry] = Field(default_factory=list)
    pull: list[s.PullStep] | None = None
    triggers: a.DeploymentTriggers = Field(default_factory=list)
    """The deployment's triggers: what it has after deploying (none: it has none)."""


class ProjectFile(_Entry):
    name: str | None = None
    pull: list[s.PullStep] = Field(default_factory=list)
    deployments: list[DeploymentEntry] = Field(min_length=1)


def load_project(path: Path) -> ProjectFile:
    """The file read and checked; ``InvalidInput`` names the file, deployment and field."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path}: not found (write a starter with `flowyard init`)") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from exc
    try:
        return ProjectFile.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(f"{path}: {_where(raw, exc)}") from exc


def _where(raw: Any, exc: ValidationError) -> str:
    """The first error, with ``deployment 'NAME'`` instead of a list index when it has one."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    prefix = ""
    if len(loc) >= 2 and loc[0] == "deployments" and isinstance(loc[1], int):
        entries = raw.get("deployments") if isinstance(raw, dict) else None
        entry = entries[loc[1]] if isinstance(entries, list) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        prefix = f"deployment {name!r}: " if name else f"deployment #{loc[1] + 1}: "
        loc = loc[2:]
    return f"{prefix}{field_path(loc) or 'file'}: {error['msg']}"


def select(project: ProjectFile, names: tuple[str, ...], everything: bool) -> list[DeploymentEntry]:
    """The deployments asked for (``--name``, repeatable) or all of them (``--all``)."""
    if everything:
        return list(project.deployments)
    if not names:
        raise InvalidInput("give --all or --name NAME to deploy from flowyard.yaml")
    known = {entry.name: entry for entry in project.deployments}
    missing = [name for name in names if name not in known]
    if missing:
        raise InvalidInput(
            f"no deployment {missing[0]!r} in flowyard.yaml (it has: {', '.join(known)})"
        )
    return [known[name] for name in names]


STARTER = """\
# flowyard.yaml: this project's deployments. `flowyard deploy --all` applies them all,
# `flowyard deploy --name NAME` one of them; the whole file is checked first.

# How a run gets the code (optional; default: the folder of this file, which the worker
# must be able to read). Steps run in order; a deployment may give its own `pull:`.
# pull:
#   - git_clone:
#       repository: https://git.example.com/team/flows.git
#       branch: main                      # a branch or tag
#       access_token_secret: git-token    # a Secret block, for private repositories
#   - set_working_directory:
#       directory: flows                  # relative to the clone

deployments:
  - name: nightly                         # flowyard deployment run "FLOW/nightly"
    entrypoint: {entrypoint}              # path/to/file.py:function
    work_pool:
      name: {pool}
      # work_queue_name: default
      # job_variables: {{env: {{LOG_LEVEL: INFO}}}}
    # parameters: {{day: "2026-11-26"}}
    # tags: [etl]
    schedules:
      - cron: "0 3 * * *"                 # or interval: 3600, or rrule: "FREQ=WEEKLY;BYDAY=MO"
        timezone: UTC
        # active: false
    # What happens to runs that could not start on time: all | latest | skip
    catch_up: all
    # late_after_seconds: 60
    # crash_retries: 2                    # schedule a Crashed run again, at most this often
    # concurrency_limit: 1                # runs of it at once; more wait (or are cancelled
    # collision_strategy: enqueue         # with cancel-new)
    # priority: 0                         # of its runs within their queue; lower first
"""
