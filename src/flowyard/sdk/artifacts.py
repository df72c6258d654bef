"""Artifacts from flows and tasks: markdown, links, tables, progress and images.

Signatures follow ``prefect.artifacts``. Called inside a flow run or task run, an
artifact is attached to it (the task run too, inside a task) and stored through the API
the run is recorded in: an engine's (deployed runs, with its run token) or the one
``FLOWYARD_API_URL`` names (a flow called from a script). A ``key`` keeps a history: every
artifact created with it is a version, the newest the current one.

With no API (a flow run kept in-process), nothing is stored: the artifact is still
checked against the API's bounds, so that a flow that works locally works deployed, one
warning says it is not recorded, and a fresh id is returned. (Prefect, with no API
configured, starts a temporary local server and records it there; Flowyard's local mode
contacts nothing.) Outside any run, an artifact goes to ``FLOWYARD_API_URL`` if set,
attached to no run (which only an admin key may do), as Prefect allows.
"""

from __future__ import annotations

import asyncio
import math
import threading
import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog

from flowyard.schemas.artifacts import ArtifactCreate, ArtifactUpdate
from flowyard.sdk.api import direct_run_client
from flowyard.sdk.context import get_flow_run_context, get_task_run_context

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

log = structlog.get_logger()

Table = dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]]

_warned = threading.Event()


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish ``markdown`` (stored as given; sanitised by whatever renders it)."""
    return _create("markdown", markdown, key, description)


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
    client: FlowyardClient | None = None,
) -> UUID:
    """Publish a link, as a markdown artifact ``[link_text](link)`` (as Prefect does)."""
    markdown = f"[{link_text or link}]({link})"
    return _create("markdown", markdown, key, description, client)


def create_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish a table: a list of rows (dicts or lists) or a dict of columns. NaN cells
    become null (as in Prefect); the table is stored as JSON, not as a JSON string."""
    return _create("table", _without_nan(table), key, description)


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish a progress figure from 0 to 100 (clamped, with a warning, as in Prefect)."""
    return _create("progress", _clamped(progress), key, description)


def update_progress_artifact(
    artifact_id: UUID | str,
    progress: float,
    description: str | None = None,
    client: FlowyardClient | None = None,
) -> UUID:
    """Set a progress artifact's figure (and description) in place; returns its id."""
    body = ArtifactUpdate(data=_clamped(progress), description=description)
    api = client or _client()
    if api is not None:
        api.update_artifact(str(artifact_id), body)
    else:
        _not_recorded()
    return UUID(str(artifact_id))


def create_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish the URL of an image (which a UI shows; Flowyard stores the URL only)."""
    return _create("image", image_url, key, description)


# -- the async forms Prefect also has ----------------------------------------------------


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    return await asyncio.to_thread(create_markdown_artifact, markdown, key, description)


async def acreate_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
    client: FlowyardClient | None = None,
) -> UUID:
    return await asyncio.to_thread(create_link_artifact, link, link_text, key, description, client)


async def acreate_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> UUID:
    return await asyncio.to_thread(create_table_artifact, table, key, description)


async def acreate_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    return await asyncio.to_thread(create_progress_artifact, progress, key, description)


async def aupdate_progress_artifact(
    artifact_id: UUID | str,
    progress: float,
    description: str | None = None,
    client: FlowyardClient | None = None,
) -> UUID:
    return await asyncio.to_thread(
        update_progress_artifact, artifact_id, progress, description, client
    )


async def acreate_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> UUID:
    return await asyncio.to_thread(create_image_artifact, image_url, key, description)


# -- one way in --------------------------------------------------------------------------


def _create(
    kind: str,
    data: Any,
    key: str | None,
    description: str | None,
    client: FlowyardClient | None = None,
) -> UUID:
    """Check the artifact (``ValueError``, as pydantic's, when out of bounds), attach it to
    the current run and store it through the API, if there is one."""
    flow_run, task_run = get_flow_run_context(), get_task_run_context()
    body = ArtifactCreate.model_validate(
        {
            "type": kind,
            "key": key,
            "description": description,
            "data": data,
            "flow_run_id": flow_run.flow_run_id if flow_run else None,
            "task_run_id": task_run.task_run_id if task_run else None,
        }
    )
    api = client or _client()
    if api is None:
        _not_recorded()
        return uuid.uuid4()
    return UUID(api.create_artifact(body).id)


def _client() -> FlowyardClient | None:
    """The API the current run is recorded in; outside any run, ``FLOWYARD_API_URL``'s."""
    flow_run = get_flow_run_context()
    return flow_run.client if flow_run is not None else direct_run_client()


def _not_recorded() -> None:
    if not _warned.is_set():
        _warned.set()
        log.warning(
            "artifacts_not_recorded",
            reason="no Flowyard API: set FLOWYARD_API_URL to keep artifacts of local runs",
        )


def _clamped(progress: float) -> float:
    if not 0 <= progress <= 100:
        log.warning("progress_out_of_range", progress=progress, clamped_to="0-100")
        return max(0.0, min(float(progress), 100.0))
    return float(progress)


def _without_nan(item: Any) -> Any:
    if isinstance(item, list):
        return [_without_nan(value) for value in item]
    if isinstance(item, dict):
        return {name: _without_nan(value) for name, value in item.items()}
    if isinstance(item, float) and math.isnan(item):
        return None
    return item
