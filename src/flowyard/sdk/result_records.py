"""The bytes of a result record on disk: Prefect 3's layout, and Flowyard's older one.

A record is one JSON document, as Prefect 3.9.1 writes it, so that tools reading Prefect's
result files read Flowyard's::

    {"metadata": {"storage_key": ..., "expiration": ..., "serializer": {"type": ...},
                  "prefect_version": ..., "storage_block_id": null,
                  "owner": ..., "signature": ...},
     "result": "..."}

``result`` is the JSON text for the ``json`` serializer and base64 (``encodebytes``, as
Prefect's pickle serializer) for the others. ``owner`` and ``signature`` are Flowyard's
(Prefect ignores fields it does not know): the signature covers the record's name, the
metadata without it, and ``result``. Records written before this layout (a JSON header
line, then the payload's bytes) are still read.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from typing import Any

from flowyard.sdk import signing

# Prefect's descriptions of its serializers, for its readers; decoders left out: the
# JSON is plain, and Prefect's pickle serializer reads stdlib pickles.
_SERIALIZER_FIELDS: dict[str, dict[str, Any]] = {
    "json": {
        "jsonlib": "json",
        "object_encoder": None,
        "object_decoder": None,
        "dumps_kwargs": {},
        "loads_kwargs": {},
    },  # fmt: skip
    "pickle": {"picklelib": "pickle", "picklelib_version": None},
}


@dataclass(frozen=True)
class Decoded:
    """A record read back: its metadata (``serializer`` as a type name), the serialized
    value, and what its signature was computed over (the metadata as written, and bytes)."""

    header: dict[str, Any]
    payload: bytes
    signed_header: dict[str, Any]
    signed: bytes


@functools.cache
def _writer() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"flowyard {version('flowyard')}"
    except PackageNotFoundError:
        return "flowyard"


def encode(
    name: str,
    *,
    location: str,
    serializer: str,
    expiration: str | None,
    owner: str,
    payload: bytes,
    key: bytes,
) -> bytes:
    """One signed record in Prefect's layout."""
    text = payload.decode() if serializer == "json" else base64.encodebytes(payload).decode()
    metadata: dict[str, Any] = {
        "storage_key": location,
        "expiration": expiration,
        "serializer": {"type": serializer, **_SERIALIZER_FIELDS.get(serializer, {})},
        "prefect_version": _writer(),
        "storage_block_id": None,
        "owner": owner,
    }
    metadata[signing.FIELD] = signing.sign(key, name, metadata, text.encode())
    return json.dumps({"metadata": metadata, "result": text}, separators=(",", ":")).encode()


def decode(raw: bytes) -> Decoded:
    """The record in ``raw`` (either layout); ``ValueError`` when it is neither."""
    document = _document(raw)
    if document is not None:
        metadata = document["metadata"]
        kind = metadata.get("serializer")
        kind = kind.get("type") if isinstance(kind, dict) else kind
        text = document["result"]
        if not isinstance(text, str) or not isinstance(kind, str):
            raise ValueError("not a result record")
        try:
            payload = text.encode() if kind == "json" else base64.decodebytes(text.encode())
        except binascii.Error as exc:
            raise ValueError("its result is not base64") from exc
        return Decoded({**metadata, "serializer": kind}, payload, metadata, text.encode())
    head, _, payload = raw.partition(b"\n")  # the older layout: a header line, then bytes
    header = json.loads(head)
    if not isinstance(header, dict):
        raise ValueError("not a result record")
    return Decoded(header, payload, header, payload)


def verify(key: bytes, name: str, decoded: Decoded, where: str) -> None:
    """``UntrustedResult`` unless ``decoded`` carries a valid signature (either layout)."""
    signing.verify(key, name, decoded.signed_header, decoded.signed, where)


def _document(raw: bytes) -> dict[str, Any] | None:
    """The record as one JSON document; None for the older layout (whose header line is
    followed by more than JSON can parse, and never holds ``metadata``)."""
    if not raw.lstrip().startswith(b"{"):
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("metadata"), dict):
        return document
    return None
