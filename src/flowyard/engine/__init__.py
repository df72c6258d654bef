"""The engine: runs one flow run inside whatever infrastructure a worker launched.

Entry point: ``python -m flowyard.engine <flow_run_id>``.
"""

from flowyard.engine.runner import run_flow_run

__all__ = ["run_flow_run"]
