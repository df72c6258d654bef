"""Each webhook-style block sends its service's documented request: checked at a real receiver."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from flowyard.blocks.notify import (
    DiscordWebhook,
    MicrosoftTeamsWebhook,
    Opsgenie,
    PagerDuty,
    SlackWebhook,
    Webhook,
    run_context,
)
from flowyard.errors import InvalidInput
from flowyard.settings import Settings
from tests.blocks.notify.receivers import HttpReceiver
from tests.blocks.notify.runs import deployment, failed_run

TOKEN = "tok-" + "5b1f9e27c0"  # assembled, so that grepping the sources never finds it
CONTEXT = run_context(failed_run(), deployment(), Settings(api_url="http://api.test"))


def only_request(receiver: HttpReceiver):
    assert len(receiver.requests) == 1, receiver.requests
    request = receiver.requests[0]
    assert request.headers["content-type"] == "application/json"
    return request


class TestChat:
    def test_slack(self, receiver: HttpReceiver):
        """Slack gets one POST of ``text`` in mrkdwn at the webhook's path, ``<&>`` escaped."""
        url = f"{receiver.url}/services/T0/B0/{TOKEN}"
        SlackWebhook(url=SecretStr(url)).notify("Run failed", "a <b> & c")
        request = only_request(receiver)
        assert (request.method, request.path) == ("POST", f"/services/T0/B0/{TOKEN}")
        assert request.json == {"text": "*Run failed*\na &lt;b&gt; &amp; c"}

    def test_teams(self, receiver: HttpReceiver):
        """Teams gets an Adaptive Card message: the subject bold, then the body."""
        MicrosoftTeamsWebhook(url=SecretStr(f"{receiver.url}/workflows/{TOKEN}")).notify(
            "Run failed", "details"
        )
        request = only_request(receiver)
        assert request.path == f"/workflows/{TOKEN}"
        attachment = request.json["attachments"][0]
        assert request.json["type"] == "message"
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert [(b["text"], b.get("weight")) for b in attachment["content"]["body"]] == [
            ("Run failed", "Bolder"),
            ("details", None),
        ]

    def test_discord(self, receiver: HttpReceiver):
        """Discord gets one embed (title, description) and the username, long text clipped."""
        block = DiscordWebhook(
            url=SecretStr(f"{receiver.url}/api/webhooks/1/{TOKEN}"), username="yard"
        )
        block.notify("Run failed", "x" * 5000)
        request = only_request(receiver)
        embed = request.json["embeds"][0]
        assert request.json["username"] == "yard" and embed["title"] == "Run failed"
        assert len(embed["description"]) == 4096 and embed["description"].endswith("…")


class TestIncidents:
    def test_pagerduty_event(self, receiver: HttpReceiver):
        """PagerDuty gets a v2 ``trigger`` event, de-duplicated per run and linking to it."""
        block = PagerDuty(
            routing_key=SecretStr(TOKEN), severity="critical", url=f"{receiver.url}/v2/enqueue"
        )
        block.notify("Flow run brave-otter is Failed", "details", context=CONTEXT)
        request = only_request(receiver)
        assert (request.method, request.path) == ("POST", "/v2/enqueue")
        assert request.json == {
            "routing_key": TOKEN,
            "event_action": "trigger",
            "dedup_key": "flowyard-flow-run-run-1",
            "payload": {
                "summary": "Flow run brave-otter is Failed",
                "source": "flowyard",
                "severity": "critical",
                "custom_details": {"body": "details"},
            },
            "links": [
                {"href": "http://api.test/api/flow_runs/run-1", "text": "Flow run brave-otter"}
            ],
            "client": "Flowyard",
        }

    def test_opsgenie_alert(self, receiver: HttpReceiver):
        """Opsgenie gets an alert with the key in ``Authorization: GenieKey …``, aliased per run."""
        block = Opsgenie(
            api_key=SecretStr(TOKEN), url=f"{receiver.url}/v2/alerts", priority="P1", tags=["etl"]
        )
        block.notify("s" * 200, "details", context=CONTEXT)
        request = only_request(receiver)
        assert request.path == "/v2/alerts"
        assert request.headers["authorization"] == f"GenieKey {TOKEN}"
        assert request.json == {
            "message": "s" * 130,
            "description": "details",
            "priority": "P1",
            "source": "Flowyard",
            "tags": ["etl"],
            "alias": "flowyard-flow-run-run-1",
        }

    def test_endpoints_default_to_the_services(self):
        """Without an override the blocks address the services' own hosts (EU by region)."""
        assert (
            PagerDuty(routing_key=SecretStr("k")).url == "https://events.pagerduty.com/v2/enqueue"
        )
        assert Opsgenie(api_key=SecretStr("k")).endpoint == "https://api.opsgenie.com/v2/alerts"
        eu = Opsgenie(api_key=SecretStr("k"), region="eu")
        assert eu.endpoint == "https://api.eu.opsgenie.com/v2/alerts"


class TestWebhook:
    def test_body_from_the_template_with_method_and_headers(self, receiver: HttpReceiver):
        """The body is the template rendered with subject, body and the run; headers are sent."""
        template = (
            '{"title": {{ subject | tojson }}, "text": {{ body | tojson }}, '
            '"run": {{ flow_run.name | tojson }}, "params": {{ flow_run.parameters | tojson }}}'
        )
        block = Webhook(
            url=SecretStr(f"{receiver.url}/hook?key={TOKEN}"),
            method="PUT",
            headers={"X-Team": "data"},
            authorization=SecretStr(f"Bearer {TOKEN}"),
            body_template=template,
        )
        block.notify('He said "stop"', "line1\nline2", context=CONTEXT)
        request = only_request(receiver)
        assert (request.method, request.path) == ("PUT", f"/hook?key={TOKEN}")
        assert request.headers["x-team"] == "data"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.json == {
            "title": 'He said "stop"',
            "text": "line1\nline2",
            "run": "brave-otter",
            "params": {"day": "2026-12-06", "limit": 5},
        }

    def test_default_body(self, receiver: HttpReceiver):
        """Without a template the body is ``{"subject": …, "body": …}``."""
        Webhook(url=SecretStr(f"{receiver.url}/hook")).notify("s", "b")
        assert only_request(receiver).json == {"subject": "s", "body": "b"}

    def test_a_template_that_is_not_json_is_refused_before_sending(self, receiver: HttpReceiver):
        """A body that does not render to JSON is InvalidInput naming tojson; nothing is sent."""
        block = Webhook(url=SecretStr(f"{receiver.url}/hook"), body_template='{"t": {{ body }}}')
        with pytest.raises(InvalidInput, match="tojson"):
            block.notify("s", "not json")
        assert receiver.requests == []


class TestRegistry:
    def test_types_register_through_entry_points(self):
        """Each notification type is found through ``flowyard.blocks`` by its slug."""
        from flowyard.blocks.notify import EmailServer, NotificationBlock
        from flowyard.blocks.registry import block_types

        slugs = {
            "slack-webhook": SlackWebhook,
            "ms-teams-webhook": MicrosoftTeamsWebhook,
            "discord-webhook": DiscordWebhook,
            "pagerduty": PagerDuty,
            "opsgenie": Opsgenie,
            "email-smtp": EmailServer,
            "webhook": Webhook,
        }
        found = block_types()
        assert {slug: found.get(slug) for slug in slugs} == slugs
        assert all(issubclass(t, NotificationBlock) and t.service for t in slugs.values())
