"""``python -m flowyard.engine <flow_run_id>``: what a worker's infrastructure runs.

Reads ``FLOWYARD_API_URL``, ``FLOWYARD_API_KEY`` (through ``Settings``) and
``FLOWYARD_CLAIM_TOKEN`` (the token of the worker's claim). The engine's own log lines
go to stderr, never stdout.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

from flowyard.engine.runner import run_flow_run
from flowyard.settings import Settings

EXIT_USAGE = 2


def configure_logging(level: str) -> None:
    """Key-value lines on stderr (JSON when stderr is not a terminal)."""
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m flowyard.engine <flow_run_id>\n")
        return EXIT_USAGE
    settings = Settings()
    configure_logging(settings.log_level)
    token = os.environ.get("FLOWYARD_CLAIM_TOKEN") or None
    return run_flow_run(args[0], settings, token=token)


if __name__ == "__main__":
    sys.exit(main())
