"""Fault tests reuse the end-to-end fixtures: a real server, real workers, real flows."""

from tests.e2e.conftest import api, deploy, flows_dir, pool, server, start_worker

__all__ = ["api", "deploy", "flows_dir", "pool", "server", "start_worker"]
