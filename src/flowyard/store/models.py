"""SQLAlchemy 2 models of everything Flowyard must not lose.

Times are stored in UTC and always read back timezone-aware, on SQLite as on PostgreSQL.
Migrations in ``migrations/versions`` must be kept in step with this module.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flowyard.states import StateType


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


LogId = BigInteger().with_variant(Integer(), "sqlite")
StateColumn = Enum(
    StateType, native_enum=False, length=20, values_callable=lambda e: [s.value for s in e]
)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class WorkPool(Base):
    __tablename__ = "work_pools"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(50))
    description: Mapped[str | None] = mapped_column(Text)
    concurrency_limit: Mapped[int | None]
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    base_job_template: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    queues: Mapped[list[WorkQueue]] = relationship(
        back_populates="pool", cascade="all, delete-orphan", order_by="WorkQueue.priority"
    )


class WorkQueue(Base):
    __tablename__ = "work_queues"
    __table_args__ = (UniqueConstraint("pool_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    pool_id: Mapped[str] = mapped_column(ForeignKey("work_pools.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(default=1)
    concurrency_limit: Mapped[int | None]
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    fair: Mapped[bool] = mapped_column(Boolean, default=False)  # round-robin between deployments
    description: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(default=utcnow)

    pool: Mapped[WorkPool] = relationship(back_populates="queues")


class Worker(Base):
    __tablename__ = "workers"
    __table_args__ = (UniqueConstraint("pool_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    pool_id: Mapped[str] = mapped_column(ForeignKey("work_pools.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(50))
    last_heartbeat: Mapped[datetime] = mapped_column(default=utcnow)
    # False once its heartbeats stopped (migration 0013): its online/offline events
    online: Mapped[bool] = mapped_column(Boolean, default=False)

    pool: Mapped[WorkPool] = relationship()


class Flow(Base):
    __tablename__ = "flows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("flow_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    entrypoint: Mapped[str] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)
    queue_id: Mapped[str] = mapped_column(ForeignKey("work_queues.id", ondelete="RESTRICT"))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parameter_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    job_variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[list[str]] = mapped_column(default=list)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(100))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # what happens to scheduled runs that did not start in time: all | latest | skip
    catch_up: Mapped[str] = mapped_column(String(10), default="all")
    late_after_seconds: Mapped[float | None]
    crash_retries: Mapped[int] = mapped_column(default=0)  # a crashed run is rescheduled
    concurrency_limit: Mapped[int | None]
    # a run due while the limit is reached: "enqueue" (waits) | "cancel-new" (is cancelled)
    collision_strategy: Mapped[str] = mapped_column(String(20), default="enqueue")
    # how the engine gets the code before loading the entrypoint (see sources/pull_steps.py)
    pull_steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # the blocks (TYPE/NAME) its flow code loads by name: its run tokens may read them
    blocks: Mapped[list[str]] = mapped_column(JSON, default=list)
    priority: Mapped[int] = mapped_column(default=0)  # of its runs within their queue; lower first
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    flow: Mapped[Flow] = relationship()
    queue: Mapped[WorkQueue] = relationship()


class DeploymentSchedule(Base):
    """When a deployment runs by itself: a cron, interval or RRule expression in a time zone."""

    __tablename__ = "deployment_schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    expression: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(100), default="UTC")
    anchor_date: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    deployment: Mapped[Deployment] = relationship()


class FlowRun(Base):
    __tablename__ = "flow_runs"
    __table_args__ = (
        Index("ix_flow_runs_state_scheduled", "state_type", "scheduled_time"),
        Index("ix_flow_runs_queue_state", "queue_id", "state_type"),
        # One run per schedule slot, whoever materializes it: the scheduler's idempotence.
        UniqueConstraint(
            "deployment_id", "schedule_id", "scheduled_time", name="uq_flow_runs_schedule_slot"
        ),
        Index("ix_flow_runs_parent_task_run_id", "parent_task_run_id"),  # a run's subflows
        # runs that ended (started) in a window: metric triggers (migration 0015)
        # and the UI's keyset pages by end or start time (migration 0019)
        Index("ix_flow_runs_end_time_id", "end_time", "id"),
        Index("ix_flow_runs_start_time_id", "start_time", "id"),
        Index("ix_flow_runs_created_id", "created", "id"),  # the UI's keyset pages, newest first
        Index("ix_flow_runs_state_created_id", "state_type", "created", "id"),  # …by state
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"))
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), index=True
    )
    queue_id: Mapped[str | None] = mapped_column(ForeignKey("work_queues.id", ondelete="SET NULL"))
    schedule_id: Mapped[str | None] = mapped_column(String(36))
    parent_task_run_id: Mapped[str | None] = mapped_column(String(36))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    job_variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state_type: Mapped[StateType] = mapped_column(StateColumn)
    state_name: Mapped[str] = mapped_column(String(50))
    state_message: Mapped[str | None] = mapped_column(Text)
    state_timestamp: Mapped[datetime]
    scheduled_time: Mapped[datetime]
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(100))
    worker_name: Mapped[str | None] = mapped_column(String(200))
    infrastructure_id: Mapped[str | None] = mapped_column(Text)
    # what its infrastructure reported beyond its id (a Lambda function's log stream)
    infrastructure_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(default=0)  # within its queue: lower is claimed first
    # a run called directly whose process heartbeats every heartbeat_seconds: Crashed if
    # not heard of by alive_until
    alive_until: Mapped[datetime | None]
    heartbeat_seconds: Mapped[float | None]
    # where the flow's persisted return value is (schemas.ResultRef), when it was persisted
    result_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # pause keys that fired, the pause under way, the input each was resumed with
    # (orchestrator/pauses.py)
    pauses: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # its tags (0022): those of the ``with tags(...)`` around its call, or its deployment's
    # and those its run request added; NULL when it has none
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(default=utcnow)

    flow: Mapped[Flow] = relationship()
    deployment: Mapped[Deployment | None] = relationship()
    queue: Mapped[WorkQueue | None] = relationship()


class FlowRunState(Base):
    """One row per state a flow run has been in: its full history."""

    __tablename__ = "flow_run_states"

    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str] = mapped_column(
        ForeignKey("flow_runs.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[StateType] = mapped_column(StateColumn)
    name: Mapped[str] = mapped_column(String(50))
    message: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)

    flow_run: Mapped[FlowRun] = relationship()


class TaskRun(Base):
    __tablename__ = "task_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # NULL for a background task run (``Task.delay``), which belongs to no flow run (0010)
    flow_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("flow_runs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    task_key: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state_type: Mapped[StateType] = mapped_column(StateColumn)
    message: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    created: Mapped[datetime] = mapped_column(default=utcnow)
    # what the SDK records of each run (migration 0008); JSON columns are NULL in older rows
    state_name: Mapped[str | None] = mapped_column(String(50))
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    task_version: Mapped[str | None] = mapped_column(Text)
    # parameter name (or "wait_for") -> [{"input_type": "task_run", "id": upstream id}, ...]
    task_inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cache_key: Mapped[str | None] = mapped_column(Text)
    run_count: Mapped[int] = mapped_column(default=0)
    result_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # schemas.ResultRef
    # background task runs only (0010): where the parameters are, and the claim holding it
    parameters_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # schemas.ResultRef
    claim_token: Mapped[str | None] = mapped_column(String(100))
    worker_name: Mapped[str | None] = mapped_column(String(200))
    # the flow run that made a background run (0021): its logs go there
    caller_flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)


class Log(Base):
    __tablename__ = "logs"
    __table_args__ = (Index("ix_logs_flow_run_id_id", "flow_run_id", "id"),)

    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str] = mapped_column(ForeignKey("flow_runs.id", ondelete="CASCADE"))
    task_run_id: Mapped[str | None] = mapped_column(String(36))
    level: Mapped[int] = mapped_column(default=20)
    message: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(20), default="engine")


class FlowRunInput(Base):
    """A message sent to a flow run (``send_input``), read by the run in the order sent
    (``receive_input``); see ``orchestrator/run_inputs.py``."""

    __tablename__ = "flow_run_inputs"
    __table_args__ = (UniqueConstraint("flow_run_id", "key"),)

    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str] = mapped_column(ForeignKey("flow_runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any] = mapped_column(JSON)
    sender: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(default=utcnow)


class Block(Base):
    """A saved block document: public fields as JSON, secret fields as one Fernet token."""

    __tablename__ = "blocks"
    __table_args__ = (UniqueConstraint("type", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Variable(Base):
    """A named JSON value flows read (Prefect's variables): configuration, not secrets.

    The value is kept as JSON text in a text column: in a JSON column, SQLite's numeric
    affinity turns a value that is a bare number into a REAL (a big integer lost its
    digits, or became infinity)."""

    __tablename__ = "variables"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    value_json: Mapped[str] = mapped_column("value", Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConcurrencyLimit(Base):
    """At most ``limit`` task runs with ``tag`` run at once, across every flow run and machine.

    The slots themselves are leased in Redis (``pools.tag_slots``); this row is the limit.
    With ``slot_decay_per_second`` it can also serve as a rate limit; an inactive limit
    limits nothing.
    """

    __tablename__ = "concurrency_limits"

    tag: Mapped[str] = mapped_column(String(200), primary_key=True)
    limit: Mapped[int]
    slot_decay_per_second: Mapped[float | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """An API key: only its SHA-256 hash is kept, with a short prefix to recognise it."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    pools: Mapped[list[str] | None] = mapped_column(JSON)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[datetime | None]


class Event(Base):
    """Something that happened: a state change, a pool paused, an event a flow emitted.

    ``seq`` orders events as they were stored (the keyset of the API's pages with
    ``occurred``); ``id`` is the event's own identity (a sender may choose it, Prefect-style).
    The primary resource's id and name are columns so that filters on them use an index;
    every related resource is a row of ``event_related``, which names its event by ``id``
    so that a transaction's events and their related rows are written in two statements.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_occurred_seq", "occurred", "seq"),
        Index("ix_events_event_occurred", "event", "occurred"),
        Index("ix_events_resource_id_occurred", "resource_id", "occurred"),
    )

    seq: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    occurred: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(1024))
    resource_id: Mapped[str] = mapped_column(String(1024))
    resource_name: Mapped[str | None] = mapped_column(String(1024))
    resource: Mapped[dict[str, Any]] = mapped_column(JSON)
    related: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    follows: Mapped[str | None] = mapped_column(String(36))
    received: Mapped[datetime] = mapped_column(default=utcnow)


class EventRelated(Base):
    """One related resource of an event (its id and role), for filtering by them."""

    __tablename__ = "event_related"
    __table_args__ = (Index("ix_event_related_resource_id", "resource_id", "role"),)

    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[str] = mapped_column(String(1024))
    role: Mapped[str] = mapped_column(String(100))


class Artifact(Base):
    """What a flow run or task run published for people (``schemas.artifacts``); the
    artifacts sharing a key are its history, the newest being the current one."""

    __tablename__ = "artifacts"
    __table_args__ = (
        Index("ix_artifacts_created_id", "created", "id"),  # keyset pagination, newest first
        Index("ix_artifacts_key_created", "key", "created"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key: Mapped[str | None] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    data: Mapped[Any] = mapped_column(JSON)
    # a key's history outlives the runs that wrote it
    flow_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("flow_runs.id", ondelete="SET NULL"), index=True
    )
    task_run_id: Mapped[str | None] = mapped_column(String(36), index=True)  # may arrive first
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Automation(Base):
    """A trigger and the actions it takes (``schemas.automations``), stored as their JSON."""

    __tablename__ = "automations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    actions_on_trigger: Mapped[list[Any]] = mapped_column(JSON, default=list)
    actions_on_resolve: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dedupe: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # the automations of a deployment's ``triggers:`` go when it goes
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AutomationBucket(Base):
    """An open window of one event trigger (``trigger`` is its path in the tree) for one
    value of its ``for_each`` labels (``key``): the events counted between start and end."""

    __tablename__ = "automation_buckets"
    __table_args__ = (Index("ix_automation_buckets_end", "end"),)

    automation_id: Mapped[str] = mapped_column(
        ForeignKey("automations.id", ondelete="CASCADE"), primary_key=True
    )
    trigger: Mapped[str] = mapped_column(String(50), primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    start: Mapped[datetime]
    end: Mapped[datetime]
    count: Mapped[int] = mapped_column(default=0)
    last_event: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AutomationChildFiring(Base):
    """A child of a compound or sequence trigger that fired, waiting for its siblings."""

    __tablename__ = "automation_child_firings"

    automation_id: Mapped[str] = mapped_column(
        ForeignKey("automations.id", ondelete="CASCADE"), primary_key=True
    )
    parent: Mapped[str] = mapped_column(String(50), primary_key=True)
    child: Mapped[str] = mapped_column(String(50), primary_key=True)
    fired: Mapped[datetime]
    event: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AutomationMetricState(Base):
    """A metric trigger's condition for one resource: true ``since`` when, and whether it
    fired (it resolves, once, when the condition stops holding)."""

    __tablename__ = "automation_metric_states"

    automation_id: Mapped[str] = mapped_column(
        ForeignKey("automations.id", ondelete="CASCADE"), primary_key=True
    )
    trigger: Mapped[str] = mapped_column(String(50), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(1024), primary_key=True)
    since: Mapped[datetime]
    firing: Mapped[bool] = mapped_column(Boolean, default=False)
    value: Mapped[float | None]


class AutomationFiring(Base):
    """One time an automation's trigger fired (or resolved)."""

    __tablename__ = "automation_firings"
    __table_args__ = (Index("ix_automation_firings_automation_fired", "automation_id", "fired"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    automation_id: Mapped[str] = mapped_column(ForeignKey("automations.id", ondelete="CASCADE"))
    fired: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(20))  # triggered, resolved
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)  # by the dedupe window
    triggering_event: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AutomationAction(Base):
    """One action of a firing, run as an RQ job: its status, attempts and last error."""

    __tablename__ = "automation_actions"
    __table_args__ = (Index("ix_automation_actions_status", "status", "enqueued"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    firing_id: Mapped[str] = mapped_column(
        ForeignKey("automation_firings.id", ondelete="CASCADE"), index=True
    )
    automation_id: Mapped[str] = mapped_column(String(36), index=True)
    index: Mapped[int]
    when: Mapped[str] = mapped_column(String(20))  # trigger, resolve
    action: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    enqueued: Mapped[datetime | None]
    finished: Mapped[datetime | None]


class AutomationDedupe(Base):
    """A dedupe key of an automation that acted, and until when others are suppressed."""

    __tablename__ = "automation_dedupe"

    automation_id: Mapped[str] = mapped_column(
        ForeignKey("automations.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    until: Mapped[datetime]


class EvaluatorPosition(Base):
    """How far the trigger evaluator has read the events (by ``seq``), and the positions
    below it not yet seen (a PostgreSQL transaction that took its number and has not
    committed yet), with when each was first missed."""

    __tablename__ = "evaluator_positions"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    seq: Mapped[int] = mapped_column(LogId, default=0)
    gaps: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # taken (+1) first in every evaluation: a second evaluator that read the same position
    # finds it moved and rolls back, so nothing is evaluated twice
    version: Mapped[int] = mapped_column(default=0)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Webhook(Base):
    """An incoming webhook: ``POST /hooks/{slug}`` turns a request into an event by
    ``template``; the request must carry the webhook's secret (or its HMAC signature)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str] = mapped_column(Text)
    auth: Mapped[str] = mapped_column(String(20), default="secret")  # secret, hmac-sha256
    secret: Mapped[str] = mapped_column(Text)  # a Fernet token, as block secrets
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
