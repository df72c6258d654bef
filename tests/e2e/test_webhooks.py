"""Incoming webhooks against a real server that requires API keys: the hook asks for the
webhook's own secret instead, and what it accepts is an event like any other."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from tests.e2e.conftest import FAST
from tests.helpers.cli import flowyard
from tests.postgres import fresh_database
from tests.servers import running_server

ADMIN = "admin-secret-for-the-webhook-tests-0123456789"
MAX_BODY = 64 * 1024
TEMPLATE = (
    '{"event": "shop.order.{{ body.action }}",'
    ' "resource": {"flowyard.resource.id": "shop.order.{{ body.id }}",'
    ' "flowyard.resource.name": {{ query.get("store", "none") | tojson }}},'
    ' "payload": {"items": {{ body["items"] | tojson }}, "raw": {{ raw_body | tojson }}}}'
)
_names = itertools.count()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server that asks for API keys, on SQLite and on PostgreSQL (stricter: no NUL)."""
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN, "FLOWYARD_MAX_REQUEST_BYTES": str(MAX_BODY)}
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres_server")
        env["FLOWYARD_DATABASE_URL"] = fresh_database(postgres, "flowyard_webhooks")
    with running_server(tmp_path_factory.mktemp("webhooks"), env) as server:
        yield server


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[FlowyardClient]:
    with FlowyardClient(server.url, ADMIN) as api:
        yield api


def _create(api: FlowyardClient, template: str = TEMPLATE, **kw: Any) -> s.WebhookCreated:
    return api.create_webhook(s.WebhookCreate(name=f"hook-{next(_names)}", template=template, **kw))


def _post(server: ServerProcess, hook: s.Webhook, secret: str | None, **kw: Any) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if secret is not None:
        headers["X-Flowyard-Webhook-Secret"] = secret
    return httpx.post(server.url + hook.path, headers=headers, timeout=30, **kw)


def _received(api: FlowyardClient, hook: s.Webhook) -> int:
    """How many events this webhook has stored."""
    related = f"flowyard.webhook.{hook.id}"
    return len(api.list_events(related_id=[related], limit=500).events)


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_the_cli_makes_a_webhook_whose_requests_become_events(server, api, tmp_path):
    """``webhook create`` prints the URL and the secret once; a request with it is stored as
    the event the template (read from @FILE) makes of body and query; ``ls`` and
    ``inspect`` never show the secret."""
    template_file = tmp_path / "order.j2"
    template_file.write_text(TEMPLATE)
    made = flowyard(
        server.url, "webhook", "create", "orders", "--template", f"@{template_file}", key=ADMIN
    )
    assert made.returncode == 0, made.stderr
    url, secret = [line.strip() for line in made.stdout.splitlines() if line.startswith("  ")]
    assert url.startswith(f"{server.url}/hooks/") and "not shown again" in made.stdout
    body = {"action": "shipped", "id": 7, "items": ["a", "b"]}
    answer = httpx.post(
        url, params={"store": "north"}, json=body, headers={"X-Flowyard-Webhook-Secret": secret}
    )
    assert answer.status_code == 202, answer.text
    event = api.read_event(answer.json()["id"])
    assert event.event == "shop.order.shipped"
    assert event.resource == {
        "flowyard.resource.id": "shop.order.7",
        "flowyard.resource.name": "north",
    }
    assert event.payload["items"] == ["a", "b"] and json.loads(event.payload["raw"]) == body
    about = f"flowyard.webhook.{api.read_webhook('orders').id}"
    assert {
        "flowyard.resource.id": about,
        "flowyard.resource.name": "orders",
        "flowyard.resource.role": "webhook",
    } in event.related
    shown = [
        flowyard(server.url, "webhook", *args, key=ADMIN).stdout
        for args in (["ls"], ["inspect", "orders"])
    ]
    assert all("orders" in out and url in out and secret not in out for out in shown)
    changes = api.list_events(resource_id=[about])
    assert [e.event for e in changes.events] == ["flowyard.webhook.created"]
    assert secret not in changes.model_dump_json()


def test_a_request_without_the_secret_is_401_and_stores_nothing(server, api):
    """Missing or wrong secret, or an API key in its place: 401 with a generic message; no
    event; the presented value never reaches the server's log."""
    hook = _create(api)
    body = {"action": "paid", "id": 1}
    wrong = "wrong-secret-that-must-not-be-logged"
    refused = [
        {},
        {"X-Flowyard-Webhook-Secret": wrong},
        {"Authorization": f"Bearer {ADMIN}"},
        {"X-Flowyard-Signature": _sign(hook.secret, json.dumps(body).encode())},
    ]
    for headers in refused:
        answer = httpx.post(server.url + hook.path, json=body, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"detail": "missing or wrong webhook secret or signature"}
    assert _received(api, hook) == 0
    assert wrong not in (server.home / "server.log").read_text()
    bearer = httpx.post(
        server.url + hook.path, json=body, headers={"Authorization": f"Bearer {hook.secret}"}
    )
    assert bearer.status_code == 202 and _received(api, hook) == 1


def test_hmac_webhooks_take_a_signature_of_the_raw_body(server, api):
    """Signed with the secret: stored; signed with another secret, or carrying the bare
    secret: 401. GitHub's header works too."""
    hook = _create(api, auth="hmac-sha256")
    raw = b'{"action": "refunded", "id": 3}'
    json_type = {"Content-Type": "application/json"}
    for header in ("X-Flowyard-Signature", "X-Hub-Signature-256"):
        signed = {**json_type, header: _sign(hook.secret, raw)}
        assert _post(server, hook, None, content=raw, headers=signed).status_code == 202
    forged = {**json_type, "X-Flowyard-Signature": _sign("not-the-secret", raw)}
    assert _post(server, hook, None, content=raw, headers=forged).status_code == 401
    assert _post(server, hook, hook.secret, content=raw, headers=json_type).status_code == 401
    assert _received(api, hook) == 2


def test_a_disabled_or_unknown_webhook_is_404(server, api):
    """Disabled (with the CLI), even the right secret finds nothing; enabled again, it
    listens; an unknown slug is 404."""
    hook = _create(api)
    body = {"action": "x", "id": 1}
    assert (
        flowyard(server.url, "webhook", "update", hook.name, "--disable", key=ADMIN).returncode == 0
    )
    assert _post(server, hook, hook.secret, json=body).status_code == 404
    assert (
        flowyard(server.url, "webhook", "update", hook.name, "--enable", key=ADMIN).returncode == 0
    )
    assert _post(server, hook, hook.secret, json=body).status_code == 202
    unknown = httpx.post(server.url + "/hooks/no-such-slug", json=body)
    assert unknown.status_code == 404 and _received(api, hook) == 1


def test_a_template_that_does_not_parse_is_refused_when_saved(server, api):
    """422 naming ``template``, from the API and the CLI; nothing is made."""
    body = {"name": "broken", "template": '{"event": "{% if %}"}'}
    answer = httpx.post(
        server.url + "/api/webhooks", json=body, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "template"]
    made = flowyard(server.url, "webhook", "create", "broken", "--template", "{{ x", key=ADMIN)
    assert made.returncode != 0 and "template" in made.stderr
    hook = _create(api)
    patched = flowyard(
        server.url, "webhook", "update", hook.name, "--template", "{% endfor %}", key=ADMIN
    )
    assert patched.returncode != 0 and "template" in patched.stderr
    assert "broken" not in [w.name for w in api.list_webhooks()]
    assert api.read_webhook(hook.name).template == TEMPLATE


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ('{"event": "x.y", "resource": {}}', "flowyard.resource.id"),
        (
            '{"event": "flowyard.flow-run.Completed", "resource": {"flowyard.resource.id": "a"}}',
            "reserved for the server",
        ),
        ('{"event": "x.y", "resource": {"flowyard.resource.id": "a"}', "did not render JSON"),
        ('{"event": {{ body.n / 0 }}}', "ZeroDivisionError"),
    ],
)
def test_a_template_that_makes_no_valid_event_is_422(server, api, template, why):
    """The event is checked as POST /api/events checks one: 422 with the reason, and
    nothing stored."""
    hook = _create(api, template=template)
    answer = _post(server, hook, hook.secret, json={"n": 1})
    assert answer.status_code == 422 and why in answer.text
    assert _received(api, hook) == 0


def test_hostile_bodies_are_bounded(server, api):
    """Bytes that are not UTF-8 arrive replaced; JSON nested too deep is 422 and a body
    over the limit 413, neither stored."""
    hook = _create(api)
    binary = _post(
        server,
        hook,
        hook.secret,
        content=b"\xff\xfe\x00{",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert binary.status_code == 202, binary.text
    assert api.read_event(binary.json()["id"]).payload["raw"] == "\ufffd\ufffd\ufffd{"
    deep = b'{"a": ' * 200 + b"1" + b"}" * 200
    nested = _post(
        server, hook, hook.secret, content=deep, headers={"Content-Type": "application/json"}
    )
    assert nested.status_code == 422 and "deeper" in nested.text
    huge = _post(server, hook, hook.secret, content=b"x" * (MAX_BODY + 1))
    assert huge.status_code == 413
    assert _received(api, hook) == 1


def test_viewers_read_webhooks_without_secrets_and_change_nothing(server, api):
    """A viewer key lists and reads webhooks, never a secret; it cannot create, rotate,
    change or delete one (403)."""
    hook = _create(api)
    viewer = api.create_api_key(s.ApiKeyCreate(name="webhook-viewer", role="viewer")).key
    with FlowyardClient(server.url, viewer) as as_viewer:
        listed = as_viewer.list_webhooks()
        assert hook.name in [w.name for w in listed]
        assert hook.secret not in json.dumps([w.model_dump(mode="json") for w in listed])
        assert "secret" not in as_viewer.read_webhook(hook.name).model_dump()
        attempts = [
            lambda: as_viewer.create_webhook(s.WebhookCreate(name="viewer-made", template="{}")),
            lambda: as_viewer.rotate_webhook_secret(hook.name),
            lambda: as_viewer.update_webhook(hook.name, s.WebhookUpdate(enabled=False)),
            lambda: as_viewer.delete_webhook(hook.name),
        ]
        for attempt in attempts:
            with pytest.raises(ApiError) as refused:
                attempt()
            assert refused.value.status_code == 403
    assert api.read_webhook(hook.name).enabled


def test_rotating_the_secret_retires_the_old_one(server, api):
    """After ``rotate-secret`` the old secret is 401 and the new one (printed once) works."""
    hook = _create(api)
    rotated = flowyard(server.url, "webhook", "rotate-secret", hook.name, key=ADMIN)
    assert rotated.returncode == 0 and "not shown again" in rotated.stdout
    new_secret = rotated.stdout.strip().splitlines()[-1].strip()
    assert new_secret != hook.secret
    body = {"action": "x", "id": 2}
    assert _post(server, hook, hook.secret, json=body).status_code == 401
    assert _post(server, hook, new_secret, json=body).status_code == 202
    api.delete_webhook(hook.name)
    assert _post(server, hook, new_secret, json=body).status_code == 404
    kinds = [e.event for e in api.list_events(resource_id=[f"flowyard.webhook.{hook.id}"]).events]
    assert kinds == [
        "flowyard.webhook.deleted",
        "flowyard.webhook.updated",
        "flowyard.webhook.created",
    ]


def test_a_nul_character_in_a_label_is_422_on_every_store(server, api):
    """A NUL escaped in the JSON body and copied into a label (PostgreSQL keeps no NUL in
    text) is refused as ``POST /api/events`` refuses it; in the payload it is kept."""
    template = (
        '{"event": "x.y", "resource": {"flowyard.resource.id": {{ body.id | tojson }}},'
        ' "payload": {"note": {{ body.note | tojson }}}}'
    )
    hook = _create(api, template=template)
    label = _post(server, hook, hook.secret, json={"id": "a\u0000b", "note": "n"})
    assert label.status_code == 422 and "U+0000" in label.text
    direct = {"event": "x.y", "resource": {"flowyard.resource.id": "a\u0000b"}}
    with pytest.raises(ApiError, match="U\\+0000"):
        api.request("POST", "/api/events", json=[direct])
    payload = _post(server, hook, hook.secret, json={"id": "a", "note": "a\u0000b"})
    assert payload.status_code == 202
    assert api.read_event(payload.json()["id"]).payload == {"note": "a\u0000b"}
    assert _received(api, hook) == 1
