"""Automations from Python, as in Prefect (``prefect.automations``)::

    from flowyard.automations import Automation, EventTrigger, RunDeployment

    auto = Automation(
        name="rerun-failed-etl",
        trigger=EventTrigger(
            expect=["flowyard.flow-run.Failed"],
            match_related={"flowyard.resource.name": "etl"},
        ),
        actions=[RunDeployment(deployment="etl/nightly")],
    ).create()
    Automation.read("rerun-failed-etl").pause()

Calls go to the configured API (``FLOWYARD_API_URL``, ``FLOWYARD_API_KEY``), or to the
``client`` given. The triggers and actions are the documents of ``schemas.automations``;
``DeploymentEventTrigger`` and its kin are what ``flow.deploy(..., triggers=[...])`` and a
deployment's ``triggers:`` in flowyard.yaml take.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from flowyard.errors import InvalidInput
from flowyard.schemas.automations import (
    AutomationCore,
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    CompoundTrigger,
    Dedupe,
    DeploymentCompoundTrigger,
    DeploymentEventTrigger,
    DeploymentMetricTrigger,
    DeploymentSequenceTrigger,
    DoNothing,
    EventTrigger,
    Firing,
    MetricQuery,
    MetricTrigger,
    PauseAutomation,
    PauseDeployment,
    PauseWorkPool,
    PauseWorkQueue,
    ResumeAutomation,
    ResumeDeployment,
    ResumeWorkPool,
    ResumeWorkQueue,
    RunDeployment,
    SendNotification,
    SequenceTrigger,
)
from flowyard.schemas.automations import AutomationCreate as _Create

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

__all__ = [
    "Automation",
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "CompoundTrigger",
    "Dedupe",
    "DeploymentCompoundTrigger",
    "DeploymentEventTrigger",
    "DeploymentMetricTrigger",
    "DeploymentSequenceTrigger",
    "DoNothing",
    "EventTrigger",
    "Firing",
    "MetricQuery",
    "MetricTrigger",
    "PauseAutomation",
    "PauseDeployment",
    "PauseWorkPool",
    "PauseWorkQueue",
    "ResumeAutomation",
    "ResumeDeployment",
    "ResumeWorkPool",
    "ResumeWorkQueue",
    "RunDeployment",
    "SendNotification",
    "SequenceTrigger",
]


class Automation(AutomationCore):
    """An automation: built here, then ``create()``-d; read back with ``Automation.read``.

    ``id``, ``created``, ``updated`` and ``deployment_id`` are the server's (None until
    stored)."""

    id: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    deployment_id: str | None = None

    def create(self, *, client: FlowyardClient | None = None) -> Automation:
        """Store this automation (its name must be new); returns it with its id."""
        with _api(client) as api:
            stored = api.create_automation(self._document())
        return self._became(stored)

    @classmethod
    def read(cls, name_or_id: str, *, client: FlowyardClient | None = None) -> Automation:
        with _api(client) as api:
            stored = api.read_automation(name_or_id)
        return cls.model_validate(stored.model_dump())

    def update(self, *, client: FlowyardClient | None = None) -> Automation:
        """Replace the stored automation by this one (its trigger's open windows are
        forgotten)."""
        with _api(client) as api:
            stored = api.replace_automation(self._stored_id(), self._document())
        return self._became(stored)

    def pause(self, *, client: FlowyardClient | None = None) -> Automation:
        return self._set_enabled(False, client)

    def resume(self, *, client: FlowyardClient | None = None) -> Automation:
        return self._set_enabled(True, client)

    def delete(self, *, client: FlowyardClient | None = None) -> None:
        with _api(client) as api:
            api.delete_automation(self._stored_id())
        self.id = None

    def firings(self, limit: int = 20, *, client: FlowyardClient | None = None) -> list[Firing]:
        """The latest firings, newest first, with what their actions did (status, error)."""
        with _api(client) as api:
            return api.list_automation_firings(self._stored_id(), limit=limit)

    def _set_enabled(self, enabled: bool, client: FlowyardClient | None) -> Automation:
        with _api(client) as api:
            stored = api.set_automation_enabled(self._stored_id(), enabled)
        return self._became(stored)

    def _document(self) -> _Create:
        fields = self.model_dump(exclude={"id", "created", "updated", "deployment_id"})
        return _Create.model_validate(fields)

    def _stored_id(self) -> str:
        if self.id is None:
            raise InvalidInput(f"automation {self.name!r} is not stored yet: create() it first")
        return self.id

    def _became(self, stored: AutomationCore) -> Automation:
        """Take the server's answer as this object's state; returns self."""
        for field in type(stored).model_fields:
            setattr(self, field, getattr(stored, field))
        return self


@contextlib.contextmanager
def _api(client: FlowyardClient | None) -> Iterator[FlowyardClient]:
    if client is not None:
        yield client
        return
    from flowyard.client import FlowyardClient
    from flowyard.settings import Settings

    with FlowyardClient.from_settings(Settings()) as api:
        yield api
