"""A generic webhook: any URL, method and headers, with a JSON body from a Jinja template."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from flowyard.blocks.notify.base import NotificationBlock
from flowyard.blocks.notify.delivery import HttpRequest, deliver
from flowyard.blocks.notify.messages import render
from flowyard.errors import InvalidInput

DEFAULT_BODY_TEMPLATE = '{"subject": {{ subject | tojson }}, "body": {{ body | tojson }}}'


def webhook_body(template: str, subject: str, body: str, context: Mapping[str, Any]) -> Any:
    """The JSON value ``template`` renders to with ``subject``, ``body`` and the run context."""
    text = render(template, {**context, "subject": subject, "body": body})
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(
            f"the webhook's body template did not render to JSON ({exc}); "
            "quote values with the tojson filter, e.g. {{ body | tojson }}"
        ) from exc


class Webhook(NotificationBlock):
    """Any HTTP endpoint that takes JSON: the body is rendered from ``body_template``."""

    block_type_slug: ClassVar[str] = "webhook"
    service: ClassVar[str] = "webhook"
    url: SecretStr = Field(description="where to send (a secret: such URLs often hold tokens)")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers (not secret)")
    authorization: SecretStr | None = Field(
        default=None, description="the Authorization header's value, e.g. 'Bearer …'"
    )
    body_template: str = Field(
        default=DEFAULT_BODY_TEMPLATE,
        description="Jinja template of the JSON body: subject, body and the run context "
        "(flow_run, flow, deployment, url); quote strings with | tojson",
    )

    def notify(self, subject: str, body: str, *, context: Mapping[str, Any] | None = None) -> None:
        payload = webhook_body(self.body_template, subject, body, context or {})
        headers = dict(self.headers)
        if self.authorization is not None:
            headers["Authorization"] = self.authorization.get_secret_value()
        request = HttpRequest(self.method, self.url.get_secret_value(), payload, headers)
        deliver(self.service, request, secrets=self.secret_values())
