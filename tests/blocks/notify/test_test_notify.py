"""Notification blocks on a real server: secrets encrypted and masked, ``block test-notify``."""

from __future__ import annotations

import json
import sqlite3
import uuid

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr

from flowyard import schemas as s
from flowyard.blocks import MASK
from flowyard.blocks.notify import EmailServer, Opsgenie, SlackWebhook, Webhook
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from tests.blocks.notify.receivers import HttpReceiver
from tests.servers import run_cli

TOKEN = "tok-" + "0f6a3d9b27"  # assembled, so that grepping the sources never finds it


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def stored_row(server: ServerProcess, block_type: str, name: str) -> tuple[str, str]:
    """The block's row as the database holds it: (public JSON, secrets token)."""
    with sqlite3.connect(server.home / "flowyard.db") as db:
        row = db.execute(
            "SELECT data, secrets FROM blocks WHERE type = ? AND name = ?", (block_type, name)
        ).fetchone()
    assert row is not None, f"no row for {block_type}/{name}"
    return row[0], row[1]


class TestSecrets:
    def test_encrypted_at_rest_and_masked_in_the_api(self, server: ServerProcess, api):
        """Each notification block's secret fields are a Fernet token in the row (nothing in
        clear) and read as the mask in ``GET /api/blocks/TYPE/NAME``."""
        blocks = {
            "slack-webhook": (SlackWebhook(url=SecretStr(f"https://h.example/{TOKEN}")), ["url"]),
            "opsgenie": (Opsgenie(api_key=SecretStr(TOKEN)), ["api_key"]),
            "email-smtp": (
                EmailServer(
                    host="smtp.example",
                    username="u",
                    password=SecretStr(TOKEN),
                    from_address="a@example.com",
                    to_addresses=["b@example.com"],
                ),
                ["password"],
            ),
            "webhook": (
                Webhook(
                    url=SecretStr(f"https://h.example/?k={TOKEN}"),
                    authorization=SecretStr(f"Bearer {TOKEN}"),
                ),
                ["url", "authorization"],
            ),
        }
        key = (server.home / "secret.key").read_bytes().strip()
        for slug, (block, secret_names) in blocks.items():
            name = unique("n")
            block.save(name, client=api)
            data, sealed = stored_row(server, slug, name)
            assert TOKEN not in data and TOKEN not in sealed
            assert set(json.loads(Fernet(key).decrypt(sealed.encode()))) == set(secret_names)
            answer = httpx.get(f"{server.url}/api/blocks/{slug}/{name}")
            assert answer.status_code == 200 and TOKEN not in answer.text
            assert {n: answer.json()["data"][n] for n in secret_names} == dict.fromkeys(
                secret_names, MASK
            )
            assert set(answer.json()["secret_fields"]) == set(secret_names)


class TestTestNotify:
    def test_sends_a_test_message_through_the_saved_block(
        self, server: ServerProcess, api: FlowyardClient, receiver: HttpReceiver
    ):
        """``block test-notify NAME`` posts a test message to the block's webhook and says so."""
        name = unique("ops")
        SlackWebhook(url=SecretStr(f"{receiver.url}/services/{TOKEN}")).save(name, client=api)
        done = run_cli(server, "block", "test-notify", name)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"Sent a test message through slack-webhook/{name} (Slack)."
        assert len(receiver.requests) == 1
        assert receiver.requests[0].path == f"/services/{TOKEN}"
        assert receiver.requests[0].json == {
            "text": "*Flowyard test notification*\nThis is a test message from Flowyard, "
            f"sent through the block slack-webhook/{name}."
        }

    def test_renders_the_templates_about_a_real_run(
        self, server: ServerProcess, api: FlowyardClient, receiver: HttpReceiver
    ):
        """With ``--run`` the message (and a webhook's body template) is about that run."""
        run = api.create_flow_run(s.FlowRunCreate(flow_name="etl", parameters={"day": "mon"}))
        template = (
            '{"s": {{ subject | tojson }}, "run": {{ flow_run.name | tojson }}, '
            '"params": {{ flow_run.parameters | tojson }}, "url": {{ url | tojson }}}'
        )
        name = unique("hook")
        Webhook(url=SecretStr(f"{receiver.url}/hook"), body_template=template).save(
            name, client=api
        )
        done = run_cli(server, "block", "test-notify", f"webhook/{name}", "--run", run.id)
        assert done.returncode == 0, done.stderr
        assert receiver.requests[0].json == {
            "s": f"Flow run {run.name} is Running",
            "run": run.name,
            "params": {"day": "mon"},
            "url": f"{server.url}/api/flow_runs/{run.id}",
        }

    def test_a_failing_service_exits_1_naming_it_and_its_status(
        self, server: ServerProcess, api: FlowyardClient, receiver: HttpReceiver
    ):
        """A receiver that always answers 500 makes the command fail: service and status
        named, the token nowhere in the output."""
        receiver.answer(then=500, reply="boom")
        name = unique("ops")
        SlackWebhook(url=SecretStr(f"{receiver.url}/services/{TOKEN}")).save(name, client=api)
        done = run_cli(server, "block", "test-notify", f"slack-webhook/{name}")
        assert done.returncode == 1
        assert f"the test message through slack-webhook/{name} failed: Slack at" in done.stderr
        assert "answered 500: boom after 4 attempts" in done.stderr
        assert TOKEN not in done.stdout + done.stderr

    def test_refuses_a_block_that_does_not_notify(self, server: ServerProcess, api: FlowyardClient):
        """A block of another type, or a name no notification block has, is a clear error."""
        name = unique("s")
        api.save_block("secret", name, {"value": TOKEN})
        other = run_cli(server, "block", "test-notify", f"secret/{name}")
        assert other.returncode == 1 and "not a notification block type" in other.stderr
        missing = run_cli(server, "block", "test-notify", name)
        assert missing.returncode == 1 and f"no notification block named {name!r}" in missing.stderr
        assert TOKEN not in other.stderr + missing.stderr
