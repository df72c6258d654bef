"""Task-run documents from whatever names and tags a user's code chose.

The API refuses labels holding control, bidi-override or surrogate characters, with white
space at their ends, or longer than their bound, and more than ``MAX_TAGS`` tags
(``schemas.Label``). Recording a task run is bookkeeping and must never fail the user's
task: ``task_run_document`` makes such labels storable (``schemas.storable_label``) and
warns once per task and field; a document that still cannot be built is not recorded, with
a warning, and the task runs as usual.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from flowyard.schemas import (
    MAX_LABEL_LENGTH,
    MAX_LONG_LABEL_LENGTH,
    MAX_STATE_NAME_LENGTH,
    storable_label,
    storable_tags,
)

log = structlog.get_logger()

M = TypeVar("M", bound=BaseModel)

LABELS = {
    "name": MAX_LABEL_LENGTH,
    "task_key": MAX_LABEL_LENGTH,
    "task_version": MAX_LABEL_LENGTH,
    "state_name": MAX_STATE_NAME_LENGTH,
    "cache_key": MAX_LONG_LABEL_LENGTH,
}
"""The fields of task-run documents that hold labels a user's code chose, and their bounds."""

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def task_run_document(
    model: type[M], fields: dict[str, Any], *, task: str, exact: tuple[str, ...] = ()
) -> M | None:
    """``model`` (``TaskRunCreate``, ``TaskRunUpdate``, ...) from ``fields`` with its labels
    (but those named in ``exact``) made storable; None, with a warning, when the API would
    refuse it all the same."""
    fixed = dict(fields)
    for field, limit in LABELS.items():
        value = fixed.get(field)
        if field in exact:
            continue
        if isinstance(value, str):
            fixed[field] = storable_label(value, limit)
    if fixed.get("tags") is not None:
        fixed["tags"] = storable_tags(fixed["tags"])
    for field in fixed:
        if fixed[field] != fields[field] and _first(task, field):
            log.warning(
                "task_run_label_changed", task=task, field=field,
                given=repr(fields[field])[:300], recorded=repr(fixed[field])[:300],
            )  # fmt: skip
    try:
        return model.model_validate(fixed)
    except ValidationError as exc:
        if _first(task, "*"):
            log.warning("task_run_not_recorded", task=task, error=str(exc))
        return None


def _first(task: str, field: str) -> bool:
    """True the first time this process sees ``task``'s ``field`` changed (or refused)."""
    with _warned_lock:
        if (task, field) in _warned:
            return False
        _warned.add((task, field))
        return True
