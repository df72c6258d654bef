"""HMAC signatures of result records, so that only records written by a holder of the
result signing key are ever unpickled (as Celery and RQ sign their messages).

Every process that writes or reads pickled results holds the key: engines, task workers,
producers reading ``future.result()`` or ``load_result``. The API server never reads a
result and does not need it. The key is ``FLOWYARD_RESULT_SIGNING_KEY``; without it, it
is derived (HMAC-SHA256, one way) from the local secret that encrypts blocks at rest
(``FLOWYARD_SECRET_KEY`` or ``<home>/secret.key``), which every process of one user on one
machine shares. Processes on other machines (containers, Kubernetes Jobs, Lambda) must be
given the same ``FLOWYARD_RESULT_SIGNING_KEY``.

A signature covers the record's name, its metadata (without the signature) and its
serialized result: a record cannot be altered, nor copied under another key
(``result_records.py`` says where each lies in a record).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import TYPE_CHECKING, Any

from flowyard.errors import InvalidInput, UntrustedResult

if TYPE_CHECKING:
    from flowyard.settings import Settings

FIELD = "signature"
SCHEME = "hmac-sha256"
MIN_KEY_LENGTH = 32
_DERIVATION = b"flowyard result signing key v1"


def signing_key(settings: Settings) -> bytes:
    """``FLOWYARD_RESULT_SIGNING_KEY``, else a key derived from the local secret key."""
    if settings.result_signing_key is not None:
        key = settings.result_signing_key.get_secret_value()
        if len(key) < MIN_KEY_LENGTH:
            raise InvalidInput(
                f"FLOWYARD_RESULT_SIGNING_KEY must be at least {MIN_KEY_LENGTH} characters; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return key.encode()
    from flowyard.blocks.encryption import load_key

    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    return hmac.new(load_key(secret, settings.home), _DERIVATION, hashlib.sha256).digest()


_KEY_INPUTS = ("FLOWYARD_RESULT_SIGNING_KEY", "FLOWYARD_SECRET_KEY", "FLOWYARD_HOME")
_known: dict[tuple[str | None, ...], bytes] = {}


def configured_key() -> bytes:
    """The signing key of this process's settings (read when a result is first written
    or read, as the default storage is), remembered for the variables it depends on:
    building the settings costs milliseconds, and a task worker asks once per run."""
    inputs = tuple(os.environ.get(name) for name in _KEY_INPUTS)
    key = _known.get(inputs)
    if key is None:
        from flowyard.settings import Settings

        key = _known[inputs] = signing_key(Settings())
    return key


def sign(key: bytes, name: str, header: dict[str, Any], payload: bytes) -> str:
    """The signature of a record: ``hmac-sha256:<hex>``."""
    return f"{SCHEME}:{_mac(key, name, header, payload)}"


def verify(key: bytes, name: str, header: dict[str, Any], payload: bytes, where: str) -> None:
    """Return if ``header`` carries a valid signature of the record; ``UntrustedResult``
    saying why not otherwise."""
    signature = header.get(FIELD)
    if not isinstance(signature, str) or not signature:
        raise UntrustedResult(
            f"refusing to unpickle the result at {where!r}: it is not signed (only records "
            "written by a process holding the result signing key are unpickled)"
        )
    scheme, _, digest = signature.partition(":")
    unsigned = {k: v for k, v in header.items() if k != FIELD}
    if scheme != SCHEME or not hmac.compare_digest(digest, _mac(key, name, unsigned, payload)):
        raise UntrustedResult(
            f"refusing to unpickle the result at {where!r}: its signature does not match "
            "this process's result signing key (it was altered, or written with another "
            "key: every process that writes or reads pickled results must share "
            "FLOWYARD_RESULT_SIGNING_KEY)"
        )


def _mac(key: bytes, name: str, header: dict[str, Any], payload: bytes) -> str:
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    message = name.encode() + b"\n" + canonical + b"\n" + payload
    return hmac.new(key, message, hashlib.sha256).hexdigest()
