"""Incoming webhooks' pure core: who may call, and the event a request becomes."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import pytest

from flowyard.errors import InvalidInput
from flowyard.orchestrator import webhooks as hooks

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
HOOK = {"id": "wh-1", "name": "shop"}
SECRET = "s3cret-value"
TEMPLATE = (
    '{"event": "shop.order.{{ body.action }}",'
    ' "resource": {"flowyard.resource.id": "shop.order.{{ body.id }}"},'
    ' "payload": {"body": {{ body | tojson }}, "agent": {{ headers["user-agent"] | tojson }},'
    ' "q": {{ query | tojson }}}}'
)


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _event(template: str, body: bytes, **headers: str) -> hooks.Event:
    ctx = hooks.context(body, headers, {"src": "test"}, HOOK, NOW)
    return hooks.render_event(template, ctx, HOOK, NOW, max_chars=100_000)


def test_the_secret_is_accepted_from_its_header_or_as_a_bearer_token():
    """The dedicated header wins over Authorization (which may hold an API key)."""
    assert hooks.verify("secret", SECRET, {hooks.SECRET_HEADER: SECRET}, b"")
    assert hooks.verify("secret", SECRET, {"authorization": f"Bearer {SECRET}"}, b"")
    both = {hooks.SECRET_HEADER: SECRET, "authorization": "Bearer fy_some_api_key"}
    assert hooks.verify("secret", SECRET, both, b"")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {hooks.SECRET_HEADER: "wrong"},
        {hooks.SECRET_HEADER: ""},
        {"authorization": "Basic x"},
        {"authorization": f"Bearer {SECRET}x"},
        {hooks.SECRET_HEADER: "wröng"},
    ],
)
def test_a_missing_or_wrong_secret_is_refused(headers):
    """Anything but the exact secret fails, non-ASCII included (no exception)."""
    assert not hooks.verify("secret", SECRET, headers, b"")


def test_hmac_signatures_are_checked_over_the_raw_body():
    """Ours and GitHub's header are accepted; a signature of another body or secret, a
    missing prefix, or the bare secret are not."""
    body = b'{"id": 1}'
    assert hooks.verify("hmac-sha256", SECRET, {"x-flowyard-signature": _sign(body)}, body)
    assert hooks.verify("hmac-sha256", SECRET, {"x-hub-signature-256": _sign(body)}, body)
    refused = [
        {"x-flowyard-signature": _sign(b"other")},
        {"x-flowyard-signature": _sign(body, "other")},
        {"x-flowyard-signature": _sign(body).removeprefix("sha256=")},
        {hooks.SECRET_HEADER: SECRET},
        {},
    ]
    assert not any(hooks.verify("hmac-sha256", SECRET, h, body) for h in refused)


def test_the_template_builds_the_event_from_the_request():
    """Name, resource and payload come from body, headers and query; id and time are
    filled in; the webhook is a related resource; credentials never reach the template."""
    body = b'{"action": "shipped", "id": 42}'
    event = _event(TEMPLATE, body, **{"user-agent": "curl", hooks.SECRET_HEADER: SECRET})
    assert event.event == "shop.order.shipped"
    assert event.resource == {"flowyard.resource.id": "shop.order.42"}
    assert event.payload == {
        "body": {"action": "shipped", "id": 42},
        "agent": "curl",
        "q": {"src": "test"},
    }
    assert event.occurred == NOW and isinstance(event.id, uuid.UUID)
    assert event.related == [
        {
            "flowyard.resource.id": "flowyard.webhook.wh-1",
            "flowyard.resource.name": "shop",
            "flowyard.resource.role": "webhook",
        }
    ]
    seen = hooks.context(
        b"", {hooks.SECRET_HEADER: SECRET, "Cookie": "c", "x-a": "1"}, {}, HOOK, NOW
    )["headers"]
    assert seen == {"x-a": "1"}


def test_forms_are_fields_and_other_bodies_only_text():
    """A form's fields become ``body``; bytes that are not UTF-8 are replaced in
    ``raw_body`` (and NUL, which no store keeps); a body that is not JSON is None."""
    form = hooks.context(
        b"a=1&b=x+y", {"content-type": "application/x-www-form-urlencoded"}, {}, HOOK, NOW
    )
    assert form["body"] == {"a": "1", "b": "x y"}
    binary = hooks.context(b"\xff\x00{", {"content-type": "application/json"}, {}, HOOK, NOW)
    assert binary["body"] is None and binary["raw_body"] == "\ufffd\ufffd{"
    text = hooks.context(b'{"a": 1}', {"content-type": "text/plain"}, {}, HOOK, NOW)
    assert text["body"] is None and text["raw_body"] == '{"a": 1}'


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("not json", "did not render JSON"),
        ("[1, 2]", "did not render a JSON object"),
        ('{"event": "x"}', "resource: Field required"),
        ('{"event": "x", "resource": {}, "occurred": "soon"}', "occurred"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ ''.__class__ }}", "did not render JSON"),  # the sandbox: renders empty
        ("{{ body.__class__.__mro__ }}", "did not render JSON"),
    ],
)
def test_what_renders_no_valid_event_is_refused(template, why):
    """A clear reason names what is wrong; nothing of the sandbox leaks."""
    with pytest.raises(InvalidInput, match=why):
        _event(template, b"{}")


def test_rendering_stops_at_the_size_cap_without_echoing_the_input():
    """A body that makes the template grow past the cap is refused, its text not quoted."""
    template = "{% for x in body.things %}{{ x }}{% endfor %}"
    body = b'{"things": [' + b",".join([b'"' + b"A" * 1000 + b'"'] * 200) + b"]}"
    ctx = hooks.context(body, {}, {}, HOOK, NOW)
    with pytest.raises(InvalidInput, match="more than 5000 characters") as refused:
        hooks.render_event(template, ctx, HOOK, NOW, max_chars=5000)
    assert "AAAA" not in str(refused.value)


def test_templates_are_checked_when_saved():
    """A template that does not parse is named with its line; one that does passes."""
    assert hooks.check_template(TEMPLATE) is None
    assert "line 2" in (hooks.check_template("{}\n{% if %}") or "")


def test_templates_that_nest_too_deeply_are_refused_not_crashing():
    """Jinja's parser recurses: a template nested past its limit is a reason, not an error."""
    assert hooks.check_template("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}") == (
        "it nests too deeply"
    )
