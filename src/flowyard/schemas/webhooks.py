"""Incoming webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
)

from flowyard.schemas.base import _UNSTORABLE, MAX_TEXT_LENGTH, Bool, Doc, Name, Text, _refuse


def _template_text(text: str) -> str:
    return _refuse(_UNSTORABLE, text)


Template = Annotated[
    str, Field(min_length=1, max_length=MAX_TEXT_LENGTH), AfterValidator(_template_text)
]
"""A Jinja template (parsed by the server, which answers 422 naming the field if it fails)."""
WebhookAuth = Literal["secret", "hmac-sha256"]


class WebhookCreate(Doc):
    """``POST /hooks/{slug}`` will turn a request into the event ``template`` renders."""

    name: Name
    template: Template = Field(description="Jinja rendering the event as JSON text")
    description: Text = ""
    auth: WebhookAuth = Field(
        default="secret",
        description="secret: the request carries the secret (X-Flowyard-Webhook-Secret or "
        "a bearer token); hmac-sha256: it is signed with it (X-Flowyard-Signature: sha256=…)",
    )
    enabled: Bool = True


class WebhookUpdate(Doc):
    template: Template | None = None
    description: Text | None = None
    enabled: Bool | None = None


class Webhook(Doc):
    """A webhook as the API shows it: never its secret."""

    id: str
    name: str
    path: str = Field(description="where it listens: /hooks/{slug}, under the API's URL")
    description: str
    template: str
    auth: str
    enabled: bool
    created: datetime
    updated: datetime


class WebhookCreated(Webhook):
    secret: str = Field(description="the secret, shown this once")
