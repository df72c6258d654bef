"""Automations: a trigger that watches events (or the server's metrics) and actions to take.

Shaped as Prefect's (``prefect.automations``): an event trigger is ``Reactive`` (fires when
``threshold`` matching events arrive ``within`` a window) or ``Proactive`` (fires when fewer
than ``threshold`` expected events arrive within the window, optionally opened by an
``after`` event); ``compound`` and ``sequence`` triggers combine others; ``metric`` triggers
watch what the server measures (Prefect Cloud only). Durations are seconds.

Names and label values in ``match``, ``after`` and ``expect`` are patterns: a trailing ``*``
matches any rest, a leading ``!`` negates. Templates (action parameters, notification
texts, the dedupe key) are sandboxed Jinja over ``event``, ``automation``, ``labels`` and,
when the event is about one, ``flow_run``.

Every field is bounded; a malformed automation is refused with a 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from flowyard.schemas import JsonObject, Label, Text

MAX_WINDOW = 31 * 24 * 3600.0
"""The longest ``within``, ``range`` or dedupe window: 31 days."""
MIN_PROACTIVE_WINDOW = 1.0
DEFAULT_PROACTIVE_WINDOW = 10.0
"""Prefect's default for a proactive trigger with no window (its minimum, too)."""
MAX_PATTERNS = 50
MAX_CHILD_TRIGGERS = 20
MAX_TRIGGER_DEPTH = 4
MAX_ACTIONS = 20
MAX_TEMPLATE = 10_000

Pattern = Annotated[str, Field(min_length=1, max_length=1024)]
Patterns = Annotated[list[Pattern], Field(max_length=MAX_PATTERNS)]
Seconds = Annotated[float, Field(ge=0, le=MAX_WINDOW, allow_inf_nan=False, strict=True)]
"""A duration in seconds: a number (``true`` is not one)."""
Template = Annotated[str, Field(max_length=MAX_TEMPLATE)]


def _bounded_spec(spec: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
    for label, value in spec.items():
        if not 0 < len(label) <= 1024:
            raise ValueError("a label name has 1 to 1024 characters")
        values = [value] if isinstance(value, str) else value
        if len(values) > MAX_PATTERNS:
            raise ValueError(f"at most {MAX_PATTERNS} values for {label[:100]!r}")
        if any(len(v) > 1024 for v in values):
            raise ValueError(f"a value of {label[:100]!r} is longer than 1024 characters")
    return spec


ResourceSpec = Annotated[
    dict[str, str | list[str]], Field(max_length=MAX_PATTERNS), AfterValidator(_bounded_spec)
]
"""Labels a resource must carry: each label's value matches one of the given patterns."""


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


# -- triggers ----------------------------------------------------------------------------


class EventTrigger(_Doc):
    type: Literal["event"] = "event"
    match: ResourceSpec = Field(default_factory=dict)
    match_related: ResourceSpec | Annotated[list[ResourceSpec], Field(max_length=20)] = Field(
        default_factory=dict
    )
    after: Patterns = Field(default_factory=list)
    expect: Patterns = Field(default_factory=list)
    for_each: Patterns = Field(
        default_factory=list,
        description="labels of the event's resource (or ``related:<role>:<label>``): one "
        "window per distinct value",
    )
    posture: Literal["Reactive", "Proactive"] = "Reactive"
    threshold: StrictInt = Field(default=1, ge=1, le=1_000_000)
    within: Seconds = Field(default=0.0, validate_default=True)

    @field_validator("within")
    @classmethod
    def _proactive_window(cls, within: float, info: ValidationInfo) -> float:
        """A proactive window of 0 is Prefect's default of 10 s; less than 1 s is refused."""
        if info.data.get("posture") != "Proactive":
            return within
        if within == 0:
            return DEFAULT_PROACTIVE_WINDOW
        if within < MIN_PROACTIVE_WINDOW:
            raise ValueError(f"a proactive trigger's window is at least {MIN_PROACTIVE_WINDOW} s")
        return within


class MetricQuery(_Doc):
    name: Literal["successes", "failures", "duration", "lateness", "late_runs", "queue_depth"]
    """``successes``/``failures``: the share (0 to 1) of a deployment's runs that ended in
    ``range`` that completed/failed; ``duration``: their mean run time (s); ``lateness``:
    the mean delay (s) of runs that started in ``range``; ``late_runs``: runs Late now;
    ``queue_depth``: runs due and waiting now (of a deployment, queue or pool)."""
    operator: Literal["<", "<=", ">", ">="]
    threshold: float = Field(allow_inf_nan=False, strict=True)
    range: Seconds = Field(default=300.0, ge=10)
    firing_for: Seconds = 0.0
    """How long the condition must hold before the trigger fires."""


class MetricTrigger(_Doc):
    type: Literal["metric"] = "metric"
    match: ResourceSpec = Field(
        default_factory=dict,
        description="which deployments, pools or queues: their ``flowyard.resource.id`` "
        "or ``flowyard.resource.name``",
    )
    metric: MetricQuery


class CompoundTrigger(_Doc):
    type: Literal["compound"] = "compound"
    triggers: Annotated[list[Trigger], Field(min_length=1, max_length=MAX_CHILD_TRIGGERS)]
    require: StrictInt | Literal["any", "all"] = "all"
    within: Seconds | None = None

    @model_validator(mode="after")
    def _require(self) -> CompoundTrigger:
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(f"require is between 1 and the {len(self.triggers)} triggers")
        return self

    @property
    def needed(self) -> int:
        if self.require == "any":
            return 1
        if self.require == "all":
            return len(self.triggers)
        return self.require


class SequenceTrigger(_Doc):
    type: Literal["sequence"] = "sequence"
    triggers: Annotated[list[Trigger], Field(min_length=1, max_length=MAX_CHILD_TRIGGERS)]
    within: Seconds | None = None


def _trigger_type(value: Any) -> str:
    """A trigger without ``type`` is an event trigger (as in Prefect)."""
    if isinstance(value, dict):
        return str(value.get("type", "event"))
    return str(getattr(value, "type", "event"))


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[MetricTrigger, Tag("metric")]
    | Annotated[CompoundTrigger, Tag("compound")]
    | Annotated[SequenceTrigger, Tag("sequence")],
    Discriminator(_trigger_type),
]
CompoundTrigger.model_rebuild()
SequenceTrigger.model_rebuild()


def bounded_depth(trigger: Any) -> None:
    """Refuse a tree of triggers nested deeper than ``MAX_TRIGGER_DEPTH``."""
    if max(path.count(".") for path, _ in walk(trigger)) >= MAX_TRIGGER_DEPTH:
        raise ValueError(f"triggers nest at most {MAX_TRIGGER_DEPTH} deep")


def walk(trigger: Any, path: str = "0") -> list[tuple[str, Any]]:
    """Every trigger in a tree with its path (``0``, ``0.1``, ``0.1.0``…), parents first."""
    found = [(path, trigger)]
    for i, child in enumerate(getattr(trigger, "triggers", None) or []):
        found += walk(child, f"{path}.{i}")
    return found


# -- actions -----------------------------------------------------------------------------

Source = Literal["selected", "inferred"]
"""``selected``: the action names its target; ``inferred``: the triggering event's
resource (or a related resource of that kind) is the target."""


def _ref(*aliases: str) -> Any:
    return Field(default=None, max_length=300, validation_alias=AliasChoices(*aliases))


class RunDeployment(_Doc):
    type: Literal["run-deployment"] = "run-deployment"
    source: Source = "selected"
    deployment: str | None = _ref("deployment", "deployment_id")
    parameters: JsonObject = Field(default_factory=dict)
    """Values may be templates: ``"{{ event.payload.x }}"`` alone keeps the value's type."""
    job_variables: JsonObject = Field(default_factory=dict)


class _Deployment(_Doc):
    source: Source = "selected"
    deployment: str | None = _ref("deployment", "deployment_id")


class PauseDeployment(_Deployment):
    type: Literal["pause-deployment"] = "pause-deployment"


class ResumeDeployment(_Deployment):
    type: Literal["resume-deployment"] = "resume-deployment"


class _Pool(_Doc):
    source: Source = "selected"
    work_pool: str | None = _ref("work_pool", "work_pool_id")


class PauseWorkPool(_Pool):
    type: Literal["pause-work-pool"] = "pause-work-pool"


class ResumeWorkPool(_Pool):
    type: Literal["resume-work-pool"] = "resume-work-pool"


class _Queue(_Doc):
    source: Source = "selected"
    work_queue: str | None = _ref("work_queue", "work_queue_id")
    """``POOL/QUEUE`` or a queue's id."""


class PauseWorkQueue(_Queue):
    type: Literal["pause-work-queue"] = "pause-work-queue"


class ResumeWorkQueue(_Queue):
    type: Literal["resume-work-queue"] = "resume-work-queue"


class _Automation(_Doc):
    source: Source = "selected"
    automation: str | None = _ref("automation", "automation_id")


class PauseAutomation(_Automation):
    type: Literal["pause-automation"] = "pause-automation"


class ResumeAutomation(_Automation):
    type: Literal["resume-automation"] = "resume-automation"


class CancelFlowRun(_Doc):
    """Cancels the flow run the triggering event is about."""

    type: Literal["cancel-flow-run"] = "cancel-flow-run"


class ChangeFlowRunState(_Doc):
    """Moves the flow run the triggering event is about (forced, as an operator would)."""

    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    state: Literal[
        "SCHEDULED", "PENDING", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED", "CRASHED"
    ]
    name: Label | None = None
    message: Template | None = None


class SendNotification(_Doc):
    type: Literal["send-notification"] = "send-notification"
    block: str = Field(
        max_length=300,
        validation_alias=AliasChoices("block", "block_document_id"),
        description="a notification block, ``TYPE/NAME``",
    )
    subject: Template | None = None
    body: Template | None = None


class CallWebhook(_Doc):
    type: Literal["call-webhook"] = "call-webhook"
    block: str = Field(
        max_length=300,
        validation_alias=AliasChoices("block", "block_document_id"),
        description="a webhook block, ``webhook/NAME``",
    )
    payload: Template | None = None
    """A template whose output is the JSON body (default: the block's own template)."""


class DoNothing(_Doc):
    type: Literal["do-nothing"] = "do-nothing"


Action = Annotated[
    RunDeployment
    | PauseDeployment
    | ResumeDeployment
    | PauseWorkPool
    | ResumeWorkPool
    | PauseWorkQueue
    | ResumeWorkQueue
    | PauseAutomation
    | ResumeAutomation
    | CancelFlowRun
    | ChangeFlowRunState
    | SendNotification
    | CallWebhook
    | DoNothing,
    Field(discriminator="type"),
]
Actions = Annotated[list[Action], Field(max_length=MAX_ACTIONS)]


# -- automations -------------------------------------------------------------------------


def _no_slash(name: str) -> str:
    if "/" in name:
        raise ValueError("an automation's name has no '/' (it is a part of its URL)")
    return name


AutomationName = Annotated[Label, AfterValidator(_no_slash)]


class Dedupe(_Doc):
    """At most one firing acts per key per window; the others are recorded as suppressed."""

    key: Template = "{{ event.resource['flowyard.resource.id'] if event else '' }}"
    window: Seconds = Field(gt=0)


class AutomationCore(_Doc):
    name: AutomationName
    description: Text = ""
    enabled: StrictBool = True
    trigger: Trigger
    actions: Actions = Field(default_factory=list)
    actions_on_trigger: Actions = Field(default_factory=list)
    actions_on_resolve: Actions = Field(default_factory=list)
    dedupe: Dedupe | None = None

    @model_validator(mode="after")
    def _bounded_tree(self) -> AutomationCore:
        bounded_depth(self.trigger)
        if not (self.actions or self.actions_on_trigger or self.actions_on_resolve):
            raise ValueError("an automation needs at least one action")
        return self


class AutomationCreate(AutomationCore):
    pass


class AutomationPatch(_Doc):
    enabled: StrictBool


class Automation(AutomationCore):
    id: str
    created: datetime
    updated: datetime
    deployment_id: str | None = None
    """Set for the automations a deployment's ``triggers:`` made (they go with it)."""


class ActionRecord(_Doc):
    index: int
    when: Literal["trigger", "resolve"]
    type: str
    status: Literal["pending", "running", "succeeded", "failed"]
    attempts: int
    error: str | None = None
    finished: datetime | None = None


class Firing(_Doc):
    """One time the automation's trigger fired (or resolved) and what its actions did."""

    id: str
    automation_id: str
    fired: datetime
    state: Literal["triggered", "resolved"]
    suppressed: bool = False
    triggering_event: dict[str, Any] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    actions: list[ActionRecord] = Field(default_factory=list)


# -- a deployment's triggers -------------------------------------------------------------

MAX_DEPLOYMENT_TRIGGERS = 50
MAX_NAME = 200


class _DeploymentTriggerFields(_Doc):
    """What a deployment's trigger adds to its trigger: the automation's name and switch, and
    what the run it starts gets (templates, as a run-deployment action's)."""

    name: AutomationName | None = None
    description: Text = ""
    enabled: StrictBool = True
    parameters: JsonObject = Field(default_factory=dict)
    job_variables: JsonObject = Field(default_factory=dict)


class DeploymentEventTrigger(EventTrigger, _DeploymentTriggerFields):
    pass


class DeploymentMetricTrigger(MetricTrigger, _DeploymentTriggerFields):
    pass


class DeploymentCompoundTrigger(CompoundTrigger, _DeploymentTriggerFields):
    @model_validator(mode="after")
    def _bounded_tree(self) -> DeploymentCompoundTrigger:
        bounded_depth(self)
        return self


class DeploymentSequenceTrigger(SequenceTrigger, _DeploymentTriggerFields):
    @model_validator(mode="after")
    def _bounded_tree(self) -> DeploymentSequenceTrigger:
        bounded_depth(self)
        return self


DeploymentTrigger = Annotated[
    Annotated[DeploymentEventTrigger, Tag("event")]
    | Annotated[DeploymentMetricTrigger, Tag("metric")]
    | Annotated[DeploymentCompoundTrigger, Tag("compound")]
    | Annotated[DeploymentSequenceTrigger, Tag("sequence")],
    Discriminator(_trigger_type),
]
"""Prefect's ``DeploymentTrigger``: a trigger's fields inline, plus ``name``,
``description``, ``enabled``, ``parameters`` and ``job_variables``. It becomes an automation
owned by the deployment whose one action runs that deployment."""
DeploymentTriggers = Annotated[list[DeploymentTrigger], Field(max_length=MAX_DEPLOYMENT_TRIGGERS)]

_OWN_FIELDS = frozenset(_DeploymentTriggerFields.model_fields)


def deployment_automation(
    trigger: Any, *, deployment_id: str, default_name: str
) -> AutomationCreate:
    """The automation a deployment's trigger stands for: the trigger, and one action that
    runs the deployment (``selected``) with the trigger's parameters and job variables."""
    own = trigger.model_dump(include=_OWN_FIELDS)
    condition = trigger.model_dump(mode="json", exclude=_OWN_FIELDS)
    action = RunDeployment(
        deployment=deployment_id,
        parameters=own["parameters"],
        job_variables=own["job_variables"],
    )
    return AutomationCreate.model_validate(
        {
            "name": own["name"] or default_name[:MAX_NAME],
            "description": own["description"],
            "enabled": own["enabled"],
            "trigger": condition,
            "actions": [action.model_dump(mode="json")],
        }
    )
