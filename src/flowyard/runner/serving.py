"""Serving deployments from the process that defines them, as ``prefect.serve`` does.

::

    from flowyard import flow, serve

    hello_deploy = hello.to_deployment("hello", cron="0 4 * * *", tags=["dev"])
    bye_deploy = bye.to_deployment("goodbye", interval=3600)
    serve(hello_deploy, bye_deploy, limit=4)     # until Ctrl-C or SIGTERM
    await aserve(hello_deploy, bye_deploy)       # the same from async code (or cancel it)

One process worker (``flowyard.workers.process``) serves a work pool of this process's
own, made on first use, into which every served deployment is put: its runs get
everything a worker gives them (leases, heartbeats, crash detection, cancellation), and
``limit`` bounds the runs of all of them at once, as a Prefect runner's does. When the
process stops, the deployments are paused (``pause_on_shutdown``), so no scheduled run
waits (and goes Late) for a process that is gone; serving them again resumes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import warnings
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowyard.errors import FlowyardError, InvalidInput

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.sdk.flows import Flow
    from flowyard.workers.process import ProcessWorker

__all__ = ["RunnerDeployment", "aserve", "serve"]

MAX_SERVED = 100
"""Deployments one ``serve`` call may serve."""


@dataclass
class RunnerDeployment:
    """A deployment of a flow of this process, not yet sent to the API (what
    ``Flow.to_deployment`` returns, as Prefect's ``RunnerDeployment``); ``serve`` or
    ``apply`` sends it."""

    flow: Flow[..., Any] = field(repr=False)
    name: str
    cron: str | None = None
    interval: float | str | timedelta | None = None
    rrule: str | None = None
    timezone: str = "UTC"
    paused: bool | None = None
    concurrency_limit: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    triggers: list[Any] | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    version: str | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = field(default_factory=dict)

    @property
    def flow_name(self) -> str:
        return self.flow.name

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{self.name}"

    def apply(self, work_pool_name: str | None = None) -> str:
        """Create or update the deployment on ``work_pool_name`` (default: its own);
        returns its id. Its ``paused`` is applied when given."""
        from flowyard.client import FlowyardClient
        from flowyard.runner.deployments import deploy
        from flowyard.settings import Settings

        pool = work_pool_name or self.work_pool_name
        if pool is None:
            raise InvalidInput(
                f"deployment {self.full_name!r} has no work pool: give work_pool_name, or serve it"
            )
        deployment_id = deploy(
            self.flow,
            self.name,
            pool,
            work_queue_name=self.work_queue_name,
            cron=self.cron,
            interval=self.interval,
            rrule=self.rrule,
            timezone=self.timezone,
            parameters=self.parameters,
            job_variables=self.job_variables,
            tags=self.tags,
            description=self.description,
            version=self.version,
            concurrency_limit=self.concurrency_limit,
            triggers=self.triggers,
        )
        if self.paused is not None:
            with FlowyardClient.from_settings(Settings()) as api:
                api.set_deployment_paused(deployment_id, self.paused)
        return deployment_id


def serve(
    *deployments: RunnerDeployment,
    pause_on_shutdown: bool = True,
    print_starting_message: bool = True,
    limit: int | None = None,
    pool_name: str | None = None,
) -> None:
    """Serve ``deployments`` (from ``Flow.to_deployment``) in this process until stopped:
    their scheduled and manual runs run here, at most ``limit`` at once over all of them.

    A deployment's ``work_pool_name`` is ignored, with a warning, as in Prefect: served
    deployments go to this process's own pool (``pool_name``, default derived from the
    deployments' names). A deployment made with ``paused=True`` stays paused.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("Cannot call `serve` in an asynchronous context.")
    pool = _served_pool(deployments, pool_name)
    api, worker = _serving_worker(pool, limit)
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: worker.stop())
    _serve_with(api, worker, deployments, pool, pause_on_shutdown, print_starting_message)


async def aserve(
    *deployments: RunnerDeployment,
    pause_on_shutdown: bool = True,
    print_starting_message: bool = True,
    limit: int | None = None,
    pool_name: str | None = None,
) -> None:
    """``serve`` from async code (as Prefect's ``aserve``): the worker runs in a thread
    while the event loop goes on. SIGINT or SIGTERM (in the main thread), or cancelling
    the awaiting task, stops it; its runs finish and the deployments are paused first."""
    pool = _served_pool(deployments, pool_name)
    api, worker = _serving_worker(pool, limit)
    loop = asyncio.get_running_loop()
    handled = _stop_on_signals(loop, worker)
    serving = asyncio.ensure_future(
        asyncio.to_thread(
            _serve_with, api, worker, deployments, pool, pause_on_shutdown, print_starting_message
        )
    )
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        worker.stop()
        await serving  # the runs going finish and the deployments are paused
        raise
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def _stop_on_signals(loop: asyncio.AbstractEventLoop, worker: ProcessWorker) -> list[int]:
    """SIGINT and SIGTERM stop ``worker`` (in the main thread, where the loop can take them)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return []
    handled: list[int] = [signal.SIGINT, signal.SIGTERM]
    for signum in handled:
        loop.add_signal_handler(signum, worker.stop)
    return handled


def _served_pool(deployments: tuple[Any, ...], pool_name: str | None) -> str:
    """Check what is to be served (Prefect's warning for a ``work_pool_name``); the pool."""
    _check_served(deployments)
    for deployment in deployments:
        if deployment.work_pool_name:
            warnings.warn(
                "Work pools are not necessary for served deployments - the `work_pool_name` "
                "argument will be ignored. Omit the `work_pool_name` argument from "
                f"`to_deployment` for {deployment.name!r}.",
                UserWarning,
                stacklevel=3,
            )
    return pool_name or served_pool_name([d.full_name for d in deployments])


def _check_served(deployments: tuple[Any, ...]) -> None:
    if not deployments:
        raise InvalidInput("give at least one deployment to serve (flow.to_deployment(...))")
    if len(deployments) > MAX_SERVED:
        raise InvalidInput(f"serve at most {MAX_SERVED} deployments, not {len(deployments)}")
    for deployment in deployments:
        if not isinstance(deployment, RunnerDeployment):
            raise TypeError(
                f"serve takes deployments made by flow.to_deployment(...), not "
                f"{type(deployment).__name__}"
            )
    names = [d.full_name for d in deployments]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise InvalidInput(f"deployment {twice!r} is given twice")


def _serving_worker(pool: str, limit: int | None) -> tuple[FlowyardClient, ProcessWorker]:
    """The API client and the process worker that serve ``pool``."""
    from flowyard.client import FlowyardClient
    from flowyard.settings import Settings
    from flowyard.workers.process import ProcessWorker

    settings = Settings()
    api = FlowyardClient.from_settings(settings, retry_seconds=30.0)
    worker = ProcessWorker(
        api, pool, limit=limit, heartbeat_seconds=settings.worker_heartbeat_seconds
    )
    return api, worker


def _serve_with(
    api: FlowyardClient,
    worker: ProcessWorker,
    deployments: tuple[RunnerDeployment, ...],
    pool: str,
    pause_on_shutdown: bool,
    print_starting_message: bool,
) -> None:
    """Put every deployment in ``pool`` and serve it with ``worker`` until it stops."""
    try:
        worker.setup()
        served = {d.full_name: _apply_served(api, d, pool) for d in deployments}
        if print_starting_message:
            print(starting_message(list(served), pool), flush=True)
        worker.run()
        if pause_on_shutdown:
            for full_name, deployment_id in served.items():
                _pause_unserved(api, deployment_id, full_name)
    finally:
        api.close()


def _apply_served(api: FlowyardClient, deployment: RunnerDeployment, pool: str) -> str:
    """Deploy into ``pool``; resume it (paused when last served) unless made paused."""
    deployment_id = replace(deployment, paused=None).apply(work_pool_name=pool)
    api.set_deployment_paused(deployment_id, bool(deployment.paused))
    return deployment_id


def starting_message(full_names: list[str], pool: str) -> str:
    """What serving prints first: Prefect's words, with Flowyard's command and the pool."""
    lines = [
        "Your deployments are being served and polling for scheduled runs!",
        "",
        *(f"Serving {name} (work pool {pool!r})" for name in full_names),
        "",
        "To trigger any of these deployments, use the following command:",
        "",
        "\t$ flowyard deployment run [DEPLOYMENT_NAME]",
        "",
        "Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _pause_unserved(api: FlowyardClient, deployment_id: str, full_name: str) -> None:
    """Pause a deployment nothing serves any more, and say so (as Prefect's serve does)."""
    try:
        api.set_deployment_paused(deployment_id, True)
    except FlowyardError as exc:
        print(f"Stopped serving {full_name}; could not pause its schedules: {exc}", flush=True)
        return
    print(
        f"Stopped serving {full_name}: paused its schedules (no run waits for this process); "
        "serving it again resumes them.",
        flush=True,
    )


def served_pool_name(full_names: list[str]) -> str:
    """This process's pool: ``serve-FLOW-NAME`` for one deployment; for several, the first
    one's, how many more, and a digest of them all (another set gets another pool)."""
    first = full_names[0].replace("/", "-")
    if len(full_names) == 1:
        return _pool_label(f"serve-{first}")
    digest = hashlib.sha256("\n".join(sorted(full_names)).encode()).hexdigest()[:8]
    suffix = f"-and-{len(full_names) - 1}-more-{digest}"
    return _pool_label(f"serve-{first}"[: 100 - len(suffix)] + suffix)


def _pool_label(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\- ]", "-", name)[:100]
