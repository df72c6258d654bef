"""Notification blocks: one ``notify(subject, body)`` per service, and message templates.

Every type posts the service's documented request itself (httpx for the webhook-style
services, ``smtplib`` for email) to an endpoint the block holds, so that a proxy or a test's
loopback receiver can stand in for the service; see docs/notifications.md.
"""

from flowyard.blocks.notify.base import NotificationBlock
from flowyard.blocks.notify.chat import DiscordWebhook, MicrosoftTeamsWebhook, SlackWebhook
from flowyard.blocks.notify.incidents import Opsgenie, PagerDuty
from flowyard.blocks.notify.messages import (
    DEFAULT_BODY,
    DEFAULT_SUBJECT,
    render,
    render_message,
    run_context,
    run_url,
)
from flowyard.blocks.notify.smtp import EmailServer
from flowyard.blocks.notify.webhook import Webhook

__all__ = [
    "DEFAULT_BODY",
    "DEFAULT_SUBJECT",
    "DiscordWebhook",
    "EmailServer",
    "MicrosoftTeamsWebhook",
    "NotificationBlock",
    "Opsgenie",
    "PagerDuty",
    "SlackWebhook",
    "Webhook",
    "render",
    "render_message",
    "run_context",
    "run_url",
]
