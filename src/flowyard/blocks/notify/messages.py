"""Message templates: Jinja2 in a sandbox, and the one context a run's message is rendered with.

Templates come from users (blocks, automations), so they render in a
``SandboxedEnvironment``: no attribute starting with ``_``, no unsafe calls. A name a
template uses that the context lacks renders empty (a pool's event has no flow run), and so
does a None (an ad-hoc run has no deployment).

The context (``run_context``)::

    flow_run:   id, name, state {type, name, message, timestamp}, parameters, tags,
                scheduled_time, start_time, end_time, pool, queue, worker, url
    flow:       id, name
    deployment: id, name, tags, pool, queue, version (all None for an ad-hoc run)
    url:        the link to the run (also ``flow_run.url``)
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from flowyard import schemas as s
from flowyard.errors import InvalidInput

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

    from flowyard.settings import Settings

DEFAULT_SUBJECT = "Flow run {{ flow_run.name }} is {{ flow_run.state.name }}"
DEFAULT_BODY = (
    "Flow run {{ flow_run.name }} of flow {{ flow.name }}"
    "{% if deployment.name %} (deployment {{ deployment.name }}){% endif %}"
    " entered {{ flow_run.state.name }} at {{ flow_run.state.timestamp }}."
    "{% if flow_run.state.message %}\n{{ flow_run.state.message }}{% endif %}"
    "{% if flow_run.parameters %}\nParameters: {{ flow_run.parameters | tojson }}{% endif %}"
    "{% if flow_run.tags %}\nTags: {{ flow_run.tags | join(', ') }}{% endif %}"
    "\n{{ url }}"
)


def run_url(run_id: str, settings: Settings) -> str:
    """The link to a run: its UI page with ``FLOWYARD_UI_URL``, else its API document."""
    if settings.ui_url:
        return f"{settings.ui_url.rstrip('/')}/runs/flow-run/{run_id}"
    return f"{settings.api_url.rstrip('/')}/api/flow_runs/{run_id}"


def run_context(
    run: s.FlowRun, deployment: s.Deployment | None, settings: Settings
) -> dict[str, Any]:
    """What a message about ``run`` may use (the module docstring lists it)."""
    url = run_url(run.id, settings)
    tags = list(deployment.tags) if deployment else []
    # a run's own tags; one made before runs had tags has none: its deployment's stand in
    run_tags = list(run.tags) or tags
    return {
        "flow_run": {
            "id": run.id,
            "name": run.name,
            "state": run.state.model_dump(mode="json"),
            "parameters": run.parameters,
            "tags": run_tags,
            "scheduled_time": _iso(run.scheduled_time),
            "start_time": _iso(run.start_time),
            "end_time": _iso(run.end_time),
            "pool": run.pool_name,
            "queue": run.queue_name,
            "worker": run.worker_name,
            "url": url,
        },
        "flow": {"id": run.flow_id, "name": run.flow_name},
        "deployment": {
            "id": deployment.id if deployment else run.deployment_id,
            "name": deployment.name if deployment else run.deployment_name,
            "tags": tags,
            "pool": deployment.pool_name if deployment else None,
            "queue": deployment.queue_name if deployment else None,
            "version": deployment.version if deployment else None,
        },
        "url": url,
    }


def render(template: str, context: Mapping[str, Any]) -> str:
    """``template`` rendered with ``context`` in the sandbox; a bad template is InvalidInput."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    try:
        return _environment().from_string(template).render(**context)
    except SecurityError as exc:
        raise InvalidInput(f"template refused by the sandbox: {exc}") from exc
    except TemplateError as exc:
        raise InvalidInput(f"template error: {exc}") from exc
    except Exception as exc:  # a user's template failing in a filter: 1/0, a huge range…
        raise InvalidInput(f"template error: {type(exc).__name__}: {exc}") from exc


def render_message(
    context: Mapping[str, Any],
    subject_template: str = DEFAULT_SUBJECT,
    body_template: str = DEFAULT_BODY,
) -> tuple[str, str]:
    """(subject, body) of a message about the run in ``context``."""
    return render(subject_template, context), render(body_template, context)


@cache
def _environment() -> SandboxedEnvironment:
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(
        undefined=ChainableUndefined,
        finalize=lambda value: "" if value is None else value,
        autoescape=False,
    )
    # tojson: keys in their order, a missing name as null, anything else as its text
    environment.policies["json.dumps_kwargs"] = {"sort_keys": False, "default": _json_default}
    return environment


def _json_default(value: Any) -> Any:
    from jinja2 import Undefined

    return None if isinstance(value, Undefined) else str(value)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
