"""Flowyard's one settings object, read from ``FLOWYARD_*`` environment variables.

Built once at the edge (the CLI, the server factory, the engine's entry) and passed
down; library code never reads the environment itself. A command that only talks to the
API reads its three settings with ``api_settings.ApiSettings`` instead (same defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowyard.api_settings import (
    DEFAULT_API_URL,
    DEFAULT_MAX_REQUEST_BYTES,
    ENV_PREFIX,
    MIN_MAX_REQUEST_BYTES,
)

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob, with its environment variable ``FLOWYARD_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".flowyard",
        description="Folder of the server's data (SQLite file, secret key, managed Redis); "
        "kept 0700 with files 0600 (flowyard.private_files).",
    )
    api_url: str = DEFAULT_API_URL
    api_key: str | None = None
    ui_url: str | None = Field(
        default=None,
        description="Where people open runs (the web UI), for links in notifications; "
        "default: the API URL.",
    )
    ui_session_seconds: float = Field(
        default=8 * 3600,
        ge=1,
        description="How long a web UI sign-in lasts (only when the server requires API keys); "
        "then the browser is sent back to sign in.",
    )
    database_url: str | None = None
    redis_url: str | None = None
    server_host: str = "127.0.0.1"
    server_port: int = 4200

    max_request_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES,
        ge=MIN_MAX_REQUEST_BYTES,
        description="Largest request body the API accepts (413 beyond); clients keep their "
        "batches of logs and task-run records under it.",
    )
    max_body_depth: int = Field(
        default=64, ge=8, le=500, description="Deepest nesting of a JSON body (422 beyond)."
    )

    claim_lease_seconds: float = 30.0
    worker_heartbeat_seconds: float = 10.0
    final_report_seconds: float = Field(
        default=3600.0,
        description="How long an engine whose flow has ended keeps trying to deliver its "
        "logs, task-run records and final state while the API is away (it heartbeats "
        "meanwhile, so the run is not taken for crashed).",
    )
    run_heartbeat_seconds: float = Field(
        default=10.0, description="How often the engine tells the API its run is alive."
    )
    reconcile_interval_seconds: float = 2.0
    pause_expiration_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often runs whose pause or suspension timed out are Failed.",
    )
    leader_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="With several API replicas, one runs the scheduler, reconciler and late "
        "runs; another takes over this long after it stops renewing.",
    )
    dispatch_interval_seconds: float = 5.0
    scheduler_interval_seconds: float = Field(
        default=10.0, description="How often the scheduler materializes runs of schedules."
    )
    scheduler_max_runs: int = Field(
        default=3, ge=1, description="At most this many future runs per schedule."
    )
    scheduler_horizon_seconds: float = Field(
        default=3600.0, description="Runs are materialized at most this far ahead."
    )
    scheduler_max_catch_up_runs: int = Field(
        default=100,
        ge=1,
        description="After downtime, at most this many missed slots per schedule are written "
        "(the most recent), under the catch-up policy 'all'.",
    )
    late_after_seconds: float = Field(
        default=15.0,
        ge=0,
        description="A Scheduled run not started this long after its time is named Late (or "
        "skipped, per its deployment's catch-up policy); a deployment may set its own.",
    )
    cancel_timeout_seconds: float = Field(
        default=120.0,
        description="A run still Cancelling after this long is marked Cancelled, with a warning.",
    )
    automation_metric_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the metric triggers of automations measure their resources.",
    )

    events_retention_seconds: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="Events older than this are deleted by the retention service.",
    )
    events_retention_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often the retention service looks for old events."
    )
    events_max_size_bytes: int = Field(
        default=1_500_000, ge=1024, description="The largest event the API stores (its JSON)."
    )
    events_stream_maxlen: int = Field(
        default=100_000, ge=1, description="About how many events the Redis stream keeps."
    )

    automation_action_retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="An automation action that fails for a reason that may pass (a service "
        "down, Redis or the store busy) is tried again this many times (RQ retries).",
    )
    automation_action_retry_intervals: list[Annotated[int, Field(ge=0, le=86400)]] = Field(
        default_factory=lambda: [1, 5, 15],
        min_length=1,
        max_length=20,
        description="Seconds before each retry of an action (the last repeats), as JSON, "
        "e.g. [1, 5, 15].",
    )
    automation_action_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How long one attempt of an action may take (a notification's own "
        "delivery retries included) before it counts as failed.",
    )
    automation_action_requeue_after_seconds: float = Field(
        default=10.0,
        gt=0,
        description="An action still waiting this long after its firing with no RQ job "
        "(the process stopped before queuing it, or Redis lost it) is queued again.",
    )

    log_level: str = "INFO"
    engine_log_level: str = Field(
        default="WARNING",
        description="Level of the engine's own stderr lines; the run's logs are shipped apart.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts block secrets at rest; default: <home>/secret.key, "
        "generated once. API replicas must share one.",
    )
    result_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC key that signs pickled results and background task parameters; a "
        "record is unpickled only with a valid signature. Every process that writes or "
        "reads them (engines, task workers, producers) must share it; default: derived "
        "from the secret key (FLOWYARD_SECRET_KEY or <home>/secret.key).",
    )
    claim_token: str | None = Field(
        default=None, description="Set by the worker for the engine: the token of its claim."
    )

    @property
    def resolved_database_url(self) -> str:
        """The configured database URL, else a SQLite file under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'flowyard.db'}"
