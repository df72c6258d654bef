"""Email through a real SMTP server (aiosmtpd on loopback): STARTTLS, implicit TLS, login."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from pydantic import SecretStr

from flowyard.blocks.notify import EmailServer
from flowyard.errors import NotificationError
from tests.blocks.notify.receivers import SmtpReceiver, self_signed_certificate

PASSWORD = "pw-" + "e4b7a2c913"
LOGIN = ("flowyard", PASSWORD)


@pytest.fixture
def certificate(tmp_path: Path):
    return self_signed_certificate(tmp_path)


@pytest.fixture
def starttls_server(certificate) -> Iterator[SmtpReceiver]:
    """SMTP on loopback that requires STARTTLS and a login."""
    server = SmtpReceiver(tls_context=certificate[0], login=LOGIN)
    yield server
    server.stop()


def block(server: SmtpReceiver, ca_pem: str | None, **fields: object) -> EmailServer:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": LOGIN[0],
        "password": SecretStr(PASSWORD),
        "from_address": "flowyard@example.com",
        "to_addresses": ["ops@example.com", "data@example.com"],
        "tls_ca_cert": ca_pem,
        **fields,
    }
    return EmailServer.model_validate(options)


def parsed(server: SmtpReceiver) -> Message:
    assert len(server.mails) == 1, server.mails
    return email.message_from_bytes(server.mails[0].content)


class TestEmail:
    def test_starttls_with_login(self, starttls_server: SmtpReceiver, certificate):
        """The message arrives over STARTTLS, logged in, with From, To, Subject and body."""
        block(starttls_server, certificate[1]).notify("Run failed", "brave-otter failed.\n")
        mail = starttls_server.mails[0]
        assert mail.tls and mail.login == "flowyard"
        assert mail.mail_from == "flowyard@example.com"
        assert mail.rcpt_tos == ["ops@example.com", "data@example.com"]
        message = parsed(starttls_server)
        assert message["Subject"] == "Run failed"
        assert message["To"] == "ops@example.com, data@example.com"
        assert message.get_payload(decode=True).splitlines() == [b"brave-otter failed."]

    def test_implicit_tls(self, certificate):
        """``security: tls`` speaks TLS from the first byte (SMTPS)."""
        server = SmtpReceiver(tls_context=certificate[0], implicit_tls=True)
        try:
            block(server, certificate[1], username=None, password=None, security="tls").notify(
                "s", "b"
            )
            assert server.mails[0].tls and parsed(server)["Subject"] == "s"
        finally:
            server.stop()

    def test_an_untrusted_certificate_is_refused(self, starttls_server: SmtpReceiver):
        """Without the self-signed CA the handshake fails at once, saying what to set."""
        with pytest.raises(NotificationError, match="email server 127.0.0.1:.*not trusted") as bad:
            block(starttls_server, None).notify("s", "b")
        assert "tls_ca_cert" in str(bad.value)
        assert starttls_server.mails == [] and starttls_server.attempts == 0

    def test_a_wrong_password_names_the_code_not_the_password(
        self, starttls_server: SmtpReceiver, certificate
    ):
        """A refused login is final (5xx): the error names server and code, not the password."""
        wrong = block(starttls_server, certificate[1], password=SecretStr(PASSWORD + "x"))
        with pytest.raises(NotificationError) as failed:
            wrong.notify("s", "b")
        assert failed.value.service == "email" and failed.value.status == 535
        assert f"email server 127.0.0.1:{starttls_server.port} answered 535" in str(failed.value)
        assert PASSWORD not in str(failed.value) and starttls_server.mails == []

    def test_a_subject_cannot_inject_headers(self, starttls_server: SmtpReceiver, certificate):
        """A subject with line breaks stays one header line."""
        block(starttls_server, certificate[1]).notify("a\nBcc: evil@example.com", "b")
        message = parsed(starttls_server)
        assert message["Bcc"] is None and message["Subject"] == "a Bcc: evil@example.com"
        assert starttls_server.mails[0].rcpt_tos == ["ops@example.com", "data@example.com"]

    def test_a_temporary_refusal_is_retried(self, certificate):
        """A 451 answer to the message is transient: the next attempt delivers it."""
        server = SmtpReceiver(tls_context=certificate[0], refusals=["451 4.3.0 try again later"])
        try:
            block(server, certificate[1], username=None, password=None).notify("s", "b")
            assert server.attempts == 2 and len(server.mails) == 1
        finally:
            server.stop()

    def test_addresses_are_checked_when_the_block_is_made(self):
        """An address with a line break (a header injection) or no ``@`` is refused."""
        for bad in ({"from_address": "a@x\nBcc: e@x"}, {"to_addresses": ["nobody"]}):
            fields = {"host": "h", "from_address": "a@x", "to_addresses": ["b@x"], **bad}
            with pytest.raises(ValueError, match="is not an email address"):
                EmailServer.model_validate(fields)

    def test_a_server_without_starttls_is_a_final_error(self):
        """STARTTLS asked of a server that does not offer it fails at once, saying so."""
        server = SmtpReceiver()
        try:
            plain = block(server, None, username=None, password=None)
            with pytest.raises(NotificationError, match="STARTTLS extension not supported"):
                plain.notify("s", "b")
            assert server.attempts == 0
            block(server, None, username=None, password=None, security="none").notify("s", "b")
            assert len(server.mails) == 1 and not server.mails[0].tls
        finally:
            server.stop()
