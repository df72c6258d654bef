"""Chat services' incoming webhooks: Slack, Microsoft Teams, Discord.

Each posts the service's documented JSON to the webhook URL the block holds (a secret: the
URL is the credential). The payload builders are pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from flowyard.blocks.notify.base import NotificationBlock
from flowyard.blocks.notify.delivery import HttpRequest, deliver

DISCORD_TITLE_CHARS = 256
DISCORD_DESCRIPTION_CHARS = 4096


def slack_payload(subject: str, body: str) -> dict[str, Any]:
    """Slack's incoming-webhook message: ``text`` in mrkdwn, with ``&<>`` escaped as Slack asks."""
    return {"text": f"*{_slack_escape(subject)}*\n{_slack_escape(body)}"}


def teams_payload(subject: str, body: str) -> dict[str, Any]:
    """An Adaptive Card message, what Teams' Workflows webhooks (and old connectors) take."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": subject,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": body, "wrap": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def discord_payload(subject: str, body: str, username: str | None = None) -> dict[str, Any]:
    """Discord's execute-webhook body: one embed (title and description within their limits)."""
    embed = {
        "title": _clip(subject, DISCORD_TITLE_CHARS),
        "description": _clip(body, DISCORD_DESCRIPTION_CHARS),
    }
    payload: dict[str, Any] = {"embeds": [embed]}
    if username:
        payload["username"] = username
    return payload


class SlackWebhook(NotificationBlock):
    """A Slack incoming webhook (https://hooks.slack.com/services/…)."""

    block_type_slug: ClassVar[str] = "slack-webhook"
    service: ClassVar[str] = "Slack"
    url: SecretStr = Field(description="the incoming webhook URL (it holds the token)")

    def notify(self, subject: str, body: str, *, context: Mapping[str, Any] | None = None) -> None:
        request = HttpRequest("POST", self.url.get_secret_value(), slack_payload(subject, body))
        deliver(self.service, request, secrets=self.secret_values())


class MicrosoftTeamsWebhook(NotificationBlock):
    """A Microsoft Teams webhook (a Workflows "post to a channel when a webhook request is
    received" URL, or a legacy incoming-webhook connector)."""

    block_type_slug: ClassVar[str] = "ms-teams-webhook"
    service: ClassVar[str] = "Microsoft Teams"
    url: SecretStr = Field(description="the webhook URL (it holds the signature)")

    def notify(self, subject: str, body: str, *, context: Mapping[str, Any] | None = None) -> None:
        request = HttpRequest("POST", self.url.get_secret_value(), teams_payload(subject, body))
        deliver(self.service, request, secrets=self.secret_values())


class DiscordWebhook(NotificationBlock):
    """A Discord channel webhook (https://discord.com/api/webhooks/ID/TOKEN)."""

    block_type_slug: ClassVar[str] = "discord-webhook"
    service: ClassVar[str] = "Discord"
    url: SecretStr = Field(description="the webhook URL (it holds the token)")
    username: str | None = Field(default=None, description="who the message appears from")

    def notify(self, subject: str, body: str, *, context: Mapping[str, Any] | None = None) -> None:
        payload = discord_payload(subject, body, self.username)
        request = HttpRequest("POST", self.url.get_secret_value(), payload)
        deliver(self.service, request, secrets=self.secret_values())


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
