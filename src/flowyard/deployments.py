"""``flowyard.deployments``, as ``prefect.deployments``: ``run_deployment``, and the
``deploy`` and ``serve`` behind ``flow.deploy`` / ``flow.serve`` (built in
``flowyard.runner.deployments``)."""

from flowyard.runner.deployments import deploy, run_deployment, serve

__all__ = ["deploy", "run_deployment", "serve"]
