"""The Lambda function's handler: runs the engine for the flow run its event names.

Set the function's handler to ``flowyard.workers.aws_lambda.handler.handler``. The event
is what the Lambda worker sends (``invocation.build_payload``): the run id, the API URL,
a token that acts for that run only, the claim token, and environment for the flow. The
engine then does what it does in any infrastructure: moves the run to Running (refused
if the claim was taken back), heartbeats, ships logs, reports the final state. What the
flow prints reaches the run's logs as on other worker types (``output.captured_output``),
and CloudWatch as well, whose log group and stream are recorded with the run. The handler
returns a summary; it raises (a function error) only when the engine could not report, so
that a ``RequestResponse`` worker marks the run Crashed.

Imports stay lean: the engine is imported inside the handler, once per cold start.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LAMBDA_HOME = "/tmp/flowyard"  # noqa: S108 - Lambda's only writable folder
"""Flowyard's home inside Lambda (results, keys), unless ``FLOWYARD_HOME`` says otherwise."""


class EngineFailed(RuntimeError):
    """Raised when the engine could not reach the API to start or to report its run."""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the flow run of ``event`` to a final state; return what happened."""
    run_id, api_url, token, claim_token = _required(event)
    request_id = str(getattr(context, "aws_request_id", "") or "")
    env = {str(k): str(v) for k, v in (event.get("env") or {}).items()}
    with _environment({**env, "FLOWYARD_FLOW_RUN_ID": run_id}), _task_root():
        return _run(run_id, api_url, token, claim_token, request_id, log_location(context))


def log_location(context: Any) -> dict[str, str]:
    """Where CloudWatch keeps this invocation's output (recorded with the run): the
    context's log group and stream, or the runtime's environment variables for them."""
    group = getattr(context, "log_group_name", "") or os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    stream = getattr(context, "log_stream_name", "") or os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
    return {
        key: str(value) for key, value in (("log_group", group), ("log_stream", stream)) if value
    }


def _run(
    run_id: str,
    api_url: str,
    token: str,
    claim_token: str,
    request_id: str,
    details: dict[str, str],
) -> dict[str, Any]:
    from flowyard.client import FlowyardClient
    from flowyard.engine.runner import EXIT_OK, EXIT_UNSETTLED, run_flow_run
    from flowyard.log_config import configure_logging
    from flowyard.schemas import InfrastructureReport
    from flowyard.settings import Settings
    from flowyard.workers.aws_lambda.output import captured_output

    home = Path(os.environ.get("FLOWYARD_HOME") or LAMBDA_HOME)
    settings = Settings(api_url=api_url, api_key=token, claim_token=claim_token, home=home)
    configure_logging(settings.engine_log_level)
    with FlowyardClient.from_settings(settings) as client:
        if request_id:
            with contextlib.suppress(Exception):  # the worker records it too
                report = InfrastructureReport(
                    token=claim_token, infrastructure_id=request_id, details=details or None
                )
                client.report_infrastructure(run_id, report)
        with captured_output(client, run_id):
            exit_code = run_flow_run(run_id, settings, token=claim_token)
        if exit_code not in (EXIT_OK, EXIT_UNSETTLED):  # refused or rescheduled: answered
            raise EngineFailed(f"the engine could not start or report flow run {run_id}")
        state = client.read_flow_run(run_id).state
    return {
        "flow_run_id": run_id,
        "request_id": request_id,
        "state": state.type.value,
        "message": state.message,
    }


def _required(event: dict[str, Any]) -> tuple[str, str, str, str]:
    """The run id, API URL, run token and claim token; ``ValueError`` names what is missing."""
    if not isinstance(event, dict):
        raise ValueError("the event must be a JSON object sent by a Flowyard Lambda worker")
    names = ("flow_run_id", "api_url", "token", "claim_token")
    missing = [name for name in names if not isinstance(event.get(name), str) or not event[name]]
    if missing:
        raise ValueError(f"the event lacks {', '.join(missing)}: was it sent by a Flowyard worker?")
    return event["flow_run_id"], event["api_url"], event["token"], event["claim_token"]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` for this invocation only: a warm function is reused by the next one."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@contextlib.contextmanager
def _task_root() -> Iterator[None]:
    """Run in the function's code folder, so a deployment without a path finds its flows."""
    root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    if not Path(root).is_dir():
        yield
        return
    with contextlib.chdir(root):
        yield
