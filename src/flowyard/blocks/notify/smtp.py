"""Email over SMTP (the standard library's ``smtplib``): STARTTLS, implicit TLS, or plain.

Transient failures (no connection, a dropped one, a 4xx answer) are retried like the HTTP
services' (``delivery``'s policy); a 5xx answer (a refused login, a refused recipient) and
an untrusted certificate are final. Errors name the server and the SMTP code, never the password.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any, ClassVar, Literal

import structlog
from pydantic import Field, SecretStr, field_validator

from flowyard.blocks.notify import delivery
from flowyard.blocks.notify.base import NotificationBlock
from flowyard.errors import NotificationError

log = structlog.get_logger()


def email_message(sender: str, to: list[str], subject: str, body: str) -> EmailMessage:
    """A plain-text message; header injection is refused by ``EmailMessage`` itself."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = " ".join(subject.splitlines())
    message.set_content(body)
    return message


class EmailServer(NotificationBlock):
    """An SMTP server that sends each message to ``to_addresses``."""

    block_type_slug: ClassVar[str] = "email-smtp"
    service: ClassVar[str] = "email"
    host: str
    port: int = Field(default=587, ge=1, le=65535, description="587 (STARTTLS), 465 (TLS), 25")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade after connecting; tls: TLS from the start (SMTPS); "
        "none: plain text (only on a trusted network)",
    )
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = Field(description="the From address, e.g. flowyard@example.com")
    to_addresses: list[str] = Field(min_length=1, description="recipients")
    tls_ca_cert: str | None = Field(
        default=None, description="PEM of a CA to trust besides the system's (a private relay)"
    )
    timeout: float = Field(default=10.0, gt=0, description="seconds per connection")

    @field_validator("from_address", "to_addresses")
    @classmethod
    def _one_line(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if "\r" in address or "\n" in address or "@" not in address:
                raise ValueError(f"{address!r} is not an email address")
        return value

    def notify(self, subject: str, body: str, *, context: Mapping[str, Any] | None = None) -> None:
        message = email_message(self.from_address, self.to_addresses, subject, body)
        delivery.with_retries(self.service, self._where(), lambda: self._send(message))
        log.info("notification_sent", service=self.service, recipients=len(self.to_addresses))

    def _send(self, message: EmailMessage) -> None:
        try:
            with self._connect() as smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self._tls_context())
                if self.username:
                    password = self.password.get_secret_value() if self.password else ""
                    smtp.login(self.username, password)
                smtp.send_message(message)
        except ssl.SSLCertVerificationError as exc:
            raise NotificationError(
                self.service,
                None,
                f"{self._where()} presented a certificate that is not trusted "
                f"({exc.verify_message}); set tls_ca_cert for a private CA",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS, no AUTH: a setting to fix
            raise NotificationError(self.service, None, f"{self._where()}: {exc}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            self._refused(codes[0] if codes else None, f"refused the recipients {codes}")
        except smtplib.SMTPResponseException as exc:
            self._refused(exc.smtp_code, self._reason(exc.smtp_error))
        except (smtplib.SMTPException, OSError) as exc:
            reason = delivery.redact(str(exc) or type(exc).__name__, self.secret_values())
            detail = f"could not be reached ({type(exc).__name__}: {reason})"
            raise delivery.Transient(None, detail) from None

    def _refused(self, code: int | None, reason: str) -> None:
        detail = f"answered {code}: {reason}"
        if code is not None and 400 <= code < 500:
            raise delivery.Transient(code, detail)
        raise NotificationError(self.service, code, f"{self._where()} {detail}")

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            context = self._tls_context()
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.tls_ca_cert:
            context.load_verify_locations(cadata=self.tls_ca_cert)
        return context

    def _reason(self, raw: bytes | str) -> str:
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return delivery.redact(text, self.secret_values())

    def _where(self) -> str:
        return f"email server {self.host}:{self.port}"
