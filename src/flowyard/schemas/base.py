"""The API documents' bounds and building blocks: the annotated types every request
field uses, and the base document."""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    TypeAdapter,
)

NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_.\- ]{0,98}[A-Za-z0-9_.\-])?$"
MAX_JSON_DEPTH = 32
MAX_LABEL_LENGTH = 200
MAX_LONG_LABEL_LENGTH = 4000
MAX_STATE_NAME_LENGTH = 50
MAX_TAGS = 100
MAX_TEXT_LENGTH = 100_000
MAX_LOG_MESSAGE_LENGTH = 1_000_000
MAX_LIST_ITEMS = 1000  # logs per request, task-run records per bulk request, tags, ...
MAX_COUNT = 1_000_000  # concurrency limits, run counts
# what a label may not hold: controls (category Cc), bidi overrides and isolates, surrogates
_REFUSED_IN_LABELS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # no store keeps NUL; lone surrogates


def _refuse(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    if found:
        raise ValueError(f"contains the character U+{ord(found.group()):04X}, which is not allowed")
    return text


def _printable(text: str) -> str:
    """A label or name: no control, bidi-override or surrogate characters, no edge spaces."""
    _refuse(_REFUSED_IN_LABELS, text)
    if text != text.strip():
        raise ValueError("starts or ends with white space")
    return text


def storable_label(text: str, max_length: int = MAX_LABEL_LENGTH) -> str:
    """``text`` made a label the API takes: refused characters replaced (U+FFFD), white space
    at the ends trimmed, cut in the middle (``…``, keeping its end, such as a run's
    number) to ``max_length``; ``unnamed`` when nothing is left."""
    text = _REFUSED_IN_LABELS.sub("\ufffd", text).strip()
    if len(text) > max_length:
        tail = min(20, max_length // 4)
        text = text[: max_length - 1 - tail].rstrip() + "…" + text[len(text) - tail :].lstrip()
    return text or "unnamed"


def storable_tags(tags: Any) -> list[str]:
    """Tags the API takes: each a ``storable_label`` (empty ones dropped), sorted, without
    repeats, at most ``MAX_TAGS``."""
    return sorted({storable_label(str(tag)) for tag in tags if str(tag).strip()})[:MAX_TAGS]


def _storable(value: Any) -> Any:
    """Free text with NUL and lone surrogates replaced (U+FFFD), which no store can keep.

    Replaced, not refused: messages come from tracebacks and programs' output, and a run's
    final state must not be lost to a stray byte in its message."""
    return _UNSTORABLE.sub("\ufffd", value) if isinstance(value, str) else value


def _cut_text(value: Any) -> Any:
    """``_storable`` text, cut to ``MAX_TEXT_LENGTH`` characters (a note says so)."""
    value = _storable(value)
    if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
        note = f"… (cut to {MAX_TEXT_LENGTH} characters)"
        return value[: MAX_TEXT_LENGTH - len(note)] + note
    return value


def _json_shape(value: Any) -> tuple[int, bool]:
    """How deep ``value`` nests (a scalar is 0, ``{}`` is 1), and whether it holds a number
    JSON cannot carry (NaN, infinities); without recursing."""
    deepest, odd, stack = 0, False, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(node, float) and not math.isfinite(node):
            odd = True
    return deepest, odd


def _bounded_json(value: Any) -> Any:
    depth, odd = _json_shape(value)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if odd:
        raise ValueError("holds a number JSON cannot carry (NaN or an infinity)")
    return value


def _cut_json(value: Any, depth: int = 1) -> Any:
    """``value`` with what lies deeper than ``MAX_JSON_DEPTH`` replaced by a note, and NaN and
    infinities by their names.

    Rows stored before the bounds existed may hold either, and neither can be serialized."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if not isinstance(value, dict | list):
        return value
    if depth > MAX_JSON_DEPTH:
        return f"<cut: nested deeper than {MAX_JSON_DEPTH} levels>"
    if isinstance(value, dict):
        return {key: _cut_json(item, depth + 1) for key, item in value.items()}
    return [_cut_json(item, depth + 1) for item in value]


def _stored_json(value: Any) -> Any:
    depth, odd = _json_shape(value)
    return _cut_json(value) if depth > MAX_JSON_DEPTH or odd else value


def _datetime_text(value: Any) -> Any:
    """Times come as ISO 8601 text: a bare number (in JSON, or as text in a query string)
    is refused, not read as a Unix time."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value.strip())
    ):
        raise ValueError("a date-time is ISO 8601 text, not a number")
    return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=100)]
"""An identifier: letters, digits, ``_.-`` and inner spaces, at most 100 characters."""
Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_LENGTH), AfterValidator(_printable)]
"""A name people choose freely (flows, task runs, tags, workers): printable, trimmed."""
Text = Annotated[str, BeforeValidator(_cut_text)]
"""Free text (descriptions, state messages): never refused, but made storable and cut to
``MAX_TEXT_LENGTH``."""
LogMessage = Annotated[str, Field(max_length=MAX_LOG_MESSAGE_LENGTH), BeforeValidator(_storable)]
"""A log line: made storable; longer than ``MAX_LOG_MESSAGE_LENGTH``, refused (the SDK cuts)."""
JsonObject = Annotated[dict[str, Any], AfterValidator(_bounded_json)]
"""Arbitrary user JSON (parameters, job variables, block data), bounded in depth."""
StoredJson = Annotated[dict[str, Any], AfterValidator(_stored_json)]
"""User JSON as read back from the store: cut rather than failing the read."""
Bool = StrictBool
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
Float = StrictFloat
Time = Annotated[datetime, BeforeValidator(_datetime_text)]
Tags = Annotated[list[Label], Field(max_length=MAX_TAGS)]
LongLabel = Annotated[
    str, Field(min_length=1, max_length=MAX_LONG_LABEL_LENGTH), AfterValidator(_printable)
]
"""A label that may be long: paths, URLs, entrypoints, tokens, keys."""
Id = Annotated[Label, Field(max_length=36)]
"""The id of a stored record (the store keeps 36 characters: a UUID)."""
Kind = Annotated[Name, Field(max_length=50)]
"""A type's or state's short name (the store keeps 50 characters)."""
BlockRef = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,99}/[A-Za-z0-9][A-Za-z0-9_\-]{0,199}$")
]
"""A saved block, ``TYPE/NAME``."""


class Doc(BaseModel):
    # built on first use: a CLI command pays only for the documents it reads (build_all)
    model_config = ConfigDict(
        from_attributes=True, extra="forbid", allow_inf_nan=False, defer_build=True
    )


def build_all() -> None:
    """Build every document's validator now, and defer no more: the server does this before
    FastAPI wraps the documents in its adapters (which would otherwise defer too, and warn)."""
    pending: list[type[Doc]] = [Doc]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        model.model_config["defer_build"] = False  # each class has its own config dict
        if model is not Doc:
            model.model_rebuild(force=True)


DocT = TypeVar("DocT", bound=BaseModel)


def read(model: type[DocT], data: Any) -> DocT:
    """A response document as a client reads it: fields this version does not know are
    ignored, so that a newer server may add fields to any response (requests stay strict)."""
    return model.model_validate(data, extra="ignore")


def read_list(model: type[DocT], data: Any) -> list[DocT]:
    """``read`` for a response that is a list of documents."""
    return _list_of(model).validate_python(data, extra="ignore")


@functools.cache
def _list_of(model: type[DocT]) -> TypeAdapter[list[DocT]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


class ErrorDoc(Doc):
    detail: str
