"""Job variables of a lambda pool: its base job template's schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flowyard.blocks import AwsCredentials

LAMBDA_MAX_TIMEOUT = 900
"""Lambda ends any invocation after 15 minutes."""


class LambdaVariables(BaseModel):
    """What the worker invokes, how, and what the function's engine is told."""

    function_name: str = Field(
        default="flowyard-engine", description="Name or ARN of the function that runs flows."
    )
    qualifier: str | None = Field(default=None, description="Version or alias; default $LATEST.")
    invocation_type: Literal["Event", "RequestResponse"] = Field(
        default="Event",
        description="Event: asynchronous, the worker follows the run through the API; "
        "RequestResponse: the worker waits for the function's answer.",
    )
    memory_mb: int | None = Field(
        default=None,
        ge=128,
        le=10240,
        description="Memory the function needs; a function configured with less is refused.",
    )
    timeout_seconds: int = Field(
        default=LAMBDA_MAX_TIMEOUT,
        ge=1,
        le=LAMBDA_MAX_TIMEOUT,
        description="How long a run may take in the function, at most 900 s: Lambda ends "
        "any invocation after 15 minutes (sizes the run token and waits).",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment the handler sets before running the flow."
    )
    api_url: str | None = Field(
        default=None,
        description="API URL the function reports to; default: the worker's own API URL.",
    )
    aws_credentials: AwsCredentials | None = Field(
        default=None,
        description="An aws-credentials block; default: boto3's credential chain and region.",
    )
    start_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Event: a run the function has not started after this long is Crashed.",
    )
    throttle_retries: int = Field(
        default=5, ge=0, le=20, description="Retries of a throttled invoke (with backoff)."
    )
