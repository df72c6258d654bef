"""Incident services: PagerDuty (Events API v2) and Opsgenie (Alert API v2).

The endpoint is a field defaulting to the service's own (US region), so an EU account, a
self-hosted proxy or a test's loopback receiver can take its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from flowyard.blocks.notify.base import NotificationBlock
from flowyard.blocks.notify.delivery import HttpRequest, deliver

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
OPSGENIE_ALERTS_URLS = {
    "us": "https://api.opsgenie.com/v2/alerts",
    "eu": "https://api.eu.opsgenie.com/v2/alerts",
}
PAGERDUTY_SUMMARY_CHARS = 1024
OPSGENIE_MESSAGE_CHARS = 130
OPSGENIE_DESCRIPTION_CHARS = 15000


def pagerduty_event(
    routing_key: str,
    subject: str,
    body: str,
    *,
    severity: str,
    source: str,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``trigger`` event; about a run, de-duplicated per run and linking to it."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "payload": {
            "summary": subject[:PAGERDUTY_SUMMARY_CHARS],
            "source": source,
            "severity": severity,
            "custom_details": {"body": body},
        },
        "client": "Flowyard",
    }
    run = (context or {}).get("flow_run") or {}
    if run.get("id"):
        event["dedup_key"] = f"flowyard-flow-run-{run['id']}"
    if run.get("url"):
        event["links"] = [{"href": run["url"], "text": f"Flow run {run.get('name', '')}".strip()}]
    return event


def opsgenie_alert(
    subject: str, body: str, *, priority: str, tags: list[str], context: Mapping[str, Any] | None
) -> dict[str, Any]:
    """An alert; about a run, aliased per run (Opsgenie de-duplicates open alerts by alias)."""
    alert: dict[str, Any] = {
        "message": subject[:OPSGENIE_MESSAGE_CHARS],
        "description": body[:OPSGENIE_DESCRIPTION_CHARS],
        "priority": priority,
        "source": "Flowyard",
    }
    if tags:
        alert["tags"] = tags
    run = (context or {}).get("flow_run") or {}
    if run.get("id"):
        alert["alias"] = f"flowyard-flow-run-{run['id']}"
    return alert


class PagerDuty(NotificationBlock):
    """A PagerDuty service's Events API v2 integration: each message triggers an incident."""

    block_type_slug: ClassVar[str] = "pagerduty"
    service: ClassVar[str] = "PagerDuty"
    routing_key: SecretStr = Field(description="the integration's routing key")
    severity: Literal["critical", "error", "warning", "info"] = "error"
    source: str = Field(default="flowyard", description="what the event says it comes from")
    url: str = Field(
        default=PAGERDUTY_EVENTS_URL,
        description="Events API endpoint (EU: https://events.eu.pagerduty.com/v2/enqueue)",
    )

    def notify(self, subject: str, body: str, *, context: Mapping[str, Any] | None = None) -> None:
        event = pagerduty_event(
            self.routing_key.get_secret_value(),
            subject,
            body,
            severity=self.severity,
            source=self.source,
            context=context,
        )
        deliver(self.service, HttpRequest("POST", self.url, event), secrets=self.secret_values())


class Opsgenie(NotificationBlock):
    """An Opsgenie API integration: each message creates an alert."""

    block_type_slug: ClassVar[str] = "opsgenie"
    service: ClassVar[str] = "Opsgenie"
    api_key: SecretStr = Field(description="the API integration's key")
    region: Literal["us", "eu"] = "us"
    url: str | None = Field(
        default=None, description="Alert API endpoint; default: the region's (…/v2/alerts)"
    )
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P3"
    tags: list[str] = Field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """Where alerts go: ``url`` if set, else the region's Alert API."""
        return self.url or OPSGENIE_ALERTS_URLS[self.region]

    def notify(self, subject: str, body: str, *, context: Mapping[str, Any] | None = None) -> None:
        alert = opsgenie_alert(
            subject, body, priority=self.priority, tags=self.tags, context=context
        )
        headers = {"Authorization": f"GenieKey {self.api_key.get_secret_value()}"}
        request = HttpRequest("POST", self.endpoint, alert, headers)
        deliver(self.service, request, secrets=self.secret_values())
