"""``NotificationBlock``: a block that delivers a message with ``notify(subject, body)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import SecretStr

from flowyard.blocks.core import Block


class NotificationBlock(Block):
    """Base of the notification block types: one ``notify`` each.

    ``context`` is what ``messages.run_context`` built for the run the message is about
    (None for a test message); types that can use it do (a webhook's body template,
    PagerDuty's de-duplication key and link).
    """

    service: ClassVar[str] = ""
    """The service's name as errors and logs say it (``Slack``, ``email``…)."""

    def notify(self, subject: str, body: str, *, context: Mapping[str, Any] | None = None) -> None:
        raise NotImplementedError

    def secret_values(self) -> list[str]:
        """The block's secrets in clear: what no error or log may quote."""
        values = []
        for name in self.secret_fields():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return values
