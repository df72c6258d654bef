"""Incoming webhooks: who may call one, and the event a request becomes (pure, no I/O).

A request to ``POST /hooks/{slug}`` proves it comes from someone who holds the webhook's
secret (``verify``): with ``auth="secret"`` it carries the secret itself, in
``X-Flowyard-Webhook-Secret`` or as ``Authorization: Bearer``; with ``"hmac-sha256"`` it
carries ``X-Flowyard-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` (or GitHub's
``X-Hub-Signature-256``). Then the webhook's template renders, in the Jinja sandbox of
notification messages, the JSON text of one event from the request (``context``)::

    body:     the parsed JSON, or a form's fields as a dict, else None
    raw_body: the body as text (bytes that are not UTF-8, and NUL, replaced by U+FFFD)
    headers:  lower-cased names, without credentials (secret, signatures, cookies)
    query:    the query string as a dict
    webhook:  {id, name}
    now:      the time the request arrived (ISO 8601)

The template is the administrator's, the request anyone's: rendering stops (and the request
is refused) once the text outgrows ``max_chars`` or keeps coming for ``RENDER_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from flowyard.blocks.notify.messages import _environment as sandbox
from flowyard.errors import InvalidInput
from flowyard.events.schemas import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event

if TYPE_CHECKING:
    from jinja2 import Template

SECRET_HEADER = "x-flowyard-webhook-secret"
SIGNATURE_HEADERS = ("x-flowyard-signature", "x-hub-signature-256")
SIGNATURE_PREFIX = "sha256="
HIDDEN_HEADERS = frozenset(
    {
        SECRET_HEADER,
        *SIGNATURE_HEADERS,
        "x-hub-signature",
        "authorization",
        "proxy-authorization",
        "cookie",
    }
)
"""Headers a template never sees: they carry credentials."""
MAX_FORM_FIELDS = 1000
RENDER_SECONDS = 5.0
"""How long a template may keep producing output before the request is refused."""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_slug() -> str:
    """Where a webhook listens: 192 random bits, so that its URL cannot be guessed."""
    return secrets.token_urlsafe(24)


# -- who may call ------------------------------------------------------------------------


def verify(auth: str, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the request (its lower-cased ``headers`` and raw ``body``) proves it holds
    ``secret`` as ``auth`` asks; compared in constant time."""
    if auth == "hmac-sha256":
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        given = next((headers[h] for h in SIGNATURE_HEADERS if h in headers), "")
        digest = given.strip()
        if not digest.lower().startswith(SIGNATURE_PREFIX):
            return False
        return _same(digest[len(SIGNATURE_PREFIX) :].lower(), expected)
    presented = headers.get(SECRET_HEADER)
    if presented is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else ""
    return bool(presented) and _same(presented, secret)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


# -- what a request becomes --------------------------------------------------------------


def context(
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    webhook: Mapping[str, str],
    now: datetime,
) -> dict[str, Any]:
    """What the template may use (the module docstring lists it)."""
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    return {
        "body": _parsed(body, media),
        "raw_body": body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
        "headers": {k.lower(): v for k, v in headers.items() if k.lower() not in HIDDEN_HEADERS},
        "query": dict(query),
        "webhook": {"id": webhook["id"], "name": webhook["name"]},
        "now": now.isoformat(),
    }


def _parsed(body: bytes, media: str) -> Any:
    """JSON (as the API's door reads it: a JSON type, or none) or a form's fields; else None."""
    if not body:
        return None
    if media == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", errors="replace")
        try:
            return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
        except ValueError:
            raise InvalidInput(f"the form has more than {MAX_FORM_FIELDS} fields") from None
    if media in ("", "application/json") or media.endswith("+json"):
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return None
    return None


def check_template(template: str) -> str | None:
    """Why ``template`` does not parse (None when it does)."""
    from jinja2 import TemplateSyntaxError

    try:
        _compiled(template)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {_short(exc.message or str(exc))}"
    except RecursionError:
        return "it nests too deeply"
    except Exception as exc:  # Python's own limits on the code Jinja makes of it
        return f"it does not compile: {type(exc).__name__}: {_short(exc)}"
    return None


def render_event(
    template: str,
    ctx: Mapping[str, Any],
    webhook: Mapping[str, str],
    now: datetime,
    *,
    max_chars: int,
) -> Event:
    """The event ``template`` renders from ``ctx``, about the webhook too (a related
    resource); a missing ``id`` is a new one, a missing ``occurred`` is ``now``.

    Raises InvalidInput when the template fails or renders no event; the message never
    holds more than a short cut of what was rendered."""
    text = _render(template, ctx, max_chars)
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"the template did not render JSON: {_short(exc)}") from None
    if not isinstance(document, dict):
        raise InvalidInput("the template did not render a JSON object (an event)")
    document.setdefault("id", str(uuid.uuid4()))
    document.setdefault("occurred", now.isoformat())
    try:
        event = Event.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InvalidInput(f"the rendered event is invalid: {where}: {first['msg']}") from None
    event.related.append(
        {
            RESOURCE_ID: f"flowyard.webhook.{webhook['id']}",
            RESOURCE_NAME: webhook["name"],
            RESOURCE_ROLE: "webhook",
        }
    )
    return event


def _render(template: str, ctx: Mapping[str, Any], max_chars: int) -> str:
    """The rendered text, refused once it outgrows ``max_chars`` or ``RENDER_SECONDS``."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    size, parts, deadline = 0, [], time.monotonic() + RENDER_SECONDS
    try:
        for part in _compiled(template).generate(**ctx):
            size += len(part)
            if size > max_chars:
                raise InvalidInput(f"the template rendered more than {max_chars} characters")
            if time.monotonic() > deadline:
                raise InvalidInput(f"the template rendered for more than {RENDER_SECONDS} s")
            parts.append(part)
    except InvalidInput:
        raise
    except SecurityError as exc:
        raise InvalidInput(f"template refused by the sandbox: {_short(exc)}") from None
    except TemplateError as exc:
        raise InvalidInput(f"template error: {_short(exc)}") from None
    except Exception as exc:  # a filter failing on the request's data: 1/0, int("x")…
        raise InvalidInput(f"template error: {type(exc).__name__}: {_short(exc)}") from None
    return "".join(parts)


@lru_cache(maxsize=128)
def _compiled(template: str) -> Template:
    return sandbox().from_string(template)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _short(error: BaseException | str, limit: int = 200) -> str:
    """An error's message, cut: it may quote the request's data."""
    text = str(error)
    return text if len(text) <= limit else text[:limit] + "…"
