"""``python -m flowyard.engine <flow_run_id>``: what a worker's infrastructure runs.

Reads ``FLOWYARD_API_URL``, ``FLOWYARD_API_KEY`` and ``FLOWYARD_CLAIM_TOKEN`` (the token
of the worker's claim) through ``Settings``; ``FLOWYARD_ENGINE_LOG_LEVEL`` sets how much
of the engine's own logging reaches stderr, never stdout (the run's logs are shipped).
SIGTERM stops the flow gracefully: its hooks run before the process ends.
"""

from __future__ import annotations

import sys

from flowyard.engine.runner import run_flow_run
from flowyard.engine.streams import protect_standard_streams
from flowyard.log_config import configure_logging
from flowyard.settings import Settings

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m flowyard.engine <flow_run_id>\n")
        return EXIT_USAGE
    protect_standard_streams()
    settings = Settings()
    configure_logging(settings.engine_log_level)
    return run_flow_run(args[0], settings, token=settings.claim_token, handle_sigterm=True)


if __name__ == "__main__":
    sys.exit(main())
