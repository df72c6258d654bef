"""The pure half of a Lambda invocation: the payload, the answer, what is retried.

No boto3 here: the worker passes the dicts that botocore takes and returns, so that these
rules are tested without AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PAYLOAD_VERSION = 1
THROTTLE_CODES = frozenset({"TooManyRequestsException", "EC2ThrottledException"})
"""Error codes of an invoke Lambda refused for lack of capacity: retrying may succeed."""


def build_payload(
    *,
    run_id: str,
    api_url: str,
    run_token: str,
    claim_token: str,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The event the handler receives: which run, where to report, and with what token.

    ``run_token`` is scoped to this run (never the worker's key); ``claim_token`` is the
    claim's compare-and-set token the engine's move to Running must present.
    """
    return {
        "flowyard": PAYLOAD_VERSION,
        "flow_run_id": run_id,
        "api_url": api_url.rstrip("/"),
        "token": run_token,
        "claim_token": claim_token,
        "env": dict(env or {}),
    }


def invoke_arguments(
    function_name: str, qualifier: str | None, invocation_type: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Keyword arguments of ``lambda.invoke``."""
    arguments: dict[str, Any] = {
        "FunctionName": function_name,
        "InvocationType": invocation_type,
        "Payload": json.dumps(payload).encode(),
    }
    if qualifier:
        arguments["Qualifier"] = qualifier
    return arguments


@dataclass(frozen=True)
class InvokeOutcome:
    """What Lambda answered: its request id, and for RequestResponse the function's result."""

    request_id: str
    status: int
    function_error: str | None = None
    result: Any = None

    @property
    def error_message(self) -> str:
        """A one-line reason for a function error, from the error document Lambda returns."""
        if isinstance(self.result, dict) and self.result.get("errorMessage"):
            kind = self.result.get("errorType") or self.function_error
            return f"{kind}: {str(self.result['errorMessage']).splitlines()[0]}"[:300]
        return f"{self.function_error}: the function failed without an error message"


def parse_response(response: dict[str, Any], body: bytes) -> InvokeOutcome:
    """An ``InvokeOutcome`` from botocore's answer and the payload it streamed."""
    metadata = response.get("ResponseMetadata", {})
    headers = metadata.get("HTTPHeaders", {})
    request_id = metadata.get("RequestId") or headers.get("x-amzn-requestid") or ""
    try:
        result = json.loads(body) if body else None
    except ValueError:
        result = body.decode(errors="replace")
    return InvokeOutcome(
        request_id=request_id,
        status=int(response.get("StatusCode", metadata.get("HTTPStatusCode", 0))),
        function_error=response.get("FunctionError"),
        result=result,
    )


def error_code(error_response: dict[str, Any]) -> str:
    """The code of a botocore ``ClientError.response``."""
    return str(error_response.get("Error", {}).get("Code", ""))


def is_throttle(error_response: dict[str, Any]) -> bool:
    """True when Lambda refused the invoke for lack of capacity (retry with backoff)."""
    return error_code(error_response) in THROTTLE_CODES


def read_timeout(timeout_seconds: int) -> float:
    """How long to wait for an invoke's answer.

    A RequestResponse answer comes when the run ends; an Event one at once on AWS, but
    emulations (moto) answer Event invokes only once the function returned.
    """
    return float(timeout_seconds) + 60.0


def memory_refusal(configured_mb: int | None, needed_mb: int | None, function: str) -> str | None:
    """Why a function's configured memory is not enough for the job, or None."""
    if needed_mb is None or configured_mb is None or configured_mb >= needed_mb:
        return None
    return (
        f"function {function!r} has {configured_mb} MB of memory; the job asks for {needed_mb} MB"
    )
