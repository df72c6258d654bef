"""The FastAPI application: routes, error mapping, API-key check, and the services' lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from flowyard import schemas as s
from flowyard import ui
from flowyard.errors import (
    Conflict,
    FlowyardError,
    Forbidden,
    InvalidInput,
    NotFound,
    QueueUnavailable,
)
from flowyard.orchestrator import api_docs
from flowyard.orchestrator import events as event_records
from flowyard.orchestrator.api import (
    api_keys,
    artifacts,
    automations,
    background_tasks,
    blocks,
    concurrency_limits,
    deployments,
    events,
    flow_runs,
    pools,
    run_tokens,
    schedules,
    task_runs,
    variables,
    webhooks,
    workers,
)
from flowyard.orchestrator.api.api_keys import install_auth
from flowyard.orchestrator.authority import guard
from flowyard.orchestrator.automations import evaluator as automation_evaluator
from flowyard.orchestrator.automations.action_queue import open_action_queue
from flowyard.orchestrator.automations.action_queue import requeue_stale_once as action_sweep
from flowyard.orchestrator.event_stream import EventStream
from flowyard.orchestrator.limits import LimitsMiddleware
from flowyard.orchestrator.metrics import RequestCounter
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.orchestrator.services import materializer
from flowyard.orchestrator.services.dispatcher import dispatch_once
from flowyard.orchestrator.services.event_retention import event_retention_once as retention
from flowyard.orchestrator.services.late_runs import late_runs_once
from flowyard.orchestrator.services.pause_expirations import pause_expirations_once
from flowyard.orchestrator.services.reconciler import reconcile_once
from flowyard.orchestrator.services.scheduler import schedule_once
from flowyard.orchestrator.services.task_leases import task_leases_once
from flowyard.orchestrator.services.worker_liveness import worker_liveness_once as worker_liveness
from flowyard.orchestrator.version_check import ApiVersionMiddleware
from flowyard.pools import (
    DeploymentLimits,
    Leadership,
    PoolQueues,
    TagSlots,
    Wakeups,
    connect,
)
from flowyard.pools.task_queue import TaskQueue
from flowyard.settings import Settings
from flowyard.store import Database
from flowyard.utilities.tasks import cancel_and_wait

log = structlog.get_logger()

STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 422, Forbidden: 403}
_ERROR = {"model": s.ErrorDoc}
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {**_ERROR, "description": "The body is not JSON, or the request breaks a rule"},
    401: {**_ERROR, "description": "Missing, unknown or revoked API key or token"},
    403: {**_ERROR, "description": "The credential does not allow this"},
    404: {**_ERROR, "description": "No such resource"},
    409: {**_ERROR, "description": "Conflicts with the stored state"},
    413: {**_ERROR, "description": "The body is larger than FLOWYARD_MAX_REQUEST_BYTES"},
    503: {**_ERROR, "description": "The work-pool queues (Redis) are unavailable"},
}
"""Every route may answer these (422 is documented by FastAPI per route)."""
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
STORE_BUSY = "the database is busy or unreachable; nothing was written, try again"
QUEUE_DOWN = (
    "the work-pool queues (Redis) are unavailable; runs stay recorded and are queued "
    "again when Redis is back"
)


def create_app(settings: Settings, *, redis_url: str) -> FastAPI:
    """The API for ``settings``, its queues in the Redis at ``redis_url``; every request
    is bounded by ``settings.max_request_bytes`` and ``settings.max_body_depth``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.resolved_database_url)
        await asyncio.to_thread(db.migrate)
        redis, pubsub_redis = connect(redis_url), connect(redis_url)
        wakeups = Wakeups(pubsub_redis)
        leadership = Leadership(redis, settings.leader_lease_seconds)
        orch = Orchestrator(
            settings,
            db,
            PoolQueues(redis),
            wakeups,
            TagSlots(redis),
            leadership,
            DeploymentLimits(redis),
            rebuild_needed=True,
        )
        orch.event_stream = EventStream(redis, settings.events_stream_maxlen)
        orch.event_stream.start()
        event_records.install(db, orch.event_stream.committed)
        orch.run_token_key = await asyncio.to_thread(run_tokens.signing_key, settings)
        app.state.orchestrator = orch
        app.state.loop = asyncio.get_running_loop()  # where ``stop_services`` acts
        app.state.redis = redis  # the web UI's sessions (flowyard.ui.sessions)
        background = background_tasks.BackgroundRuns(TaskQueue(redis))
        app.state.background_runs = background

        if materializer.can_serve(settings.resolved_database_url):
            orch.materializer = materializer.Materializer(settings.resolved_database_url)

        async def task_leases(orch: Orchestrator) -> int:
            return await task_leases_once(orch, background)

        await wakeups.start()
        orch.action_queue = open_action_queue(redis_url, orch)
        orch.action_queue.start()
        services = [
            # every replica keeps its own Redis writes in step; one leads the rest
            asyncio.create_task(_every(settings.dispatch_interval_seconds, dispatch_once, orch)),
            asyncio.create_task(_led(settings.reconcile_interval_seconds, reconcile_once, orch)),
            asyncio.create_task(_led(settings.reconcile_interval_seconds, late_runs_once, orch)),
            asyncio.create_task(
                _led(settings.pause_expiration_interval_seconds, pause_expirations_once, orch)
            ),
            asyncio.create_task(_led(settings.scheduler_interval_seconds, schedule_once, orch)),
            asyncio.create_task(_led(settings.reconcile_interval_seconds, task_leases, orch)),
            asyncio.create_task(_led(settings.reconcile_interval_seconds, worker_liveness, orch)),
            asyncio.create_task(_led(settings.events_retention_interval_seconds, retention, orch)),
            asyncio.create_task(automation_evaluator.run(orch)),
            asyncio.create_task(_led(settings.reconcile_interval_seconds, action_sweep, orch)),
        ]
        # what startup made lives as long as the server: out of the collector's way, each
        # full collection walks only what requests made (was ~130 ms a bulk create's)
        gc.freeze()
        try:
            yield
        finally:
            await cancel_and_wait(services)
            if orch.materializer is not None:
                await orch.materializer.stop()
            # off the loop: a running action may be waiting on it
            await asyncio.to_thread(orch.action_queue.stop)
            with contextlib.suppress(Exception):  # otherwise the lease simply expires
                await leadership.resign()
            await orch.event_stream.stop()
            await wakeups.stop()
            await redis.aclose()
            await pubsub_redis.aclose()
            db.dispose()

    s.build_all()  # the documents build lazily (for the CLI); the server needs them all
    app = FastAPI(
        title="Flowyard",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(guard)],
        responses=ERROR_RESPONSES,
        docs_url=None,  # api_docs serves them without a CDN
        redoc_url=None,
    )
    api_docs.install(app)
    # schedules and automations (a deployment's triggers) before deployments: their paths
    # would otherwise match GET /{ref:path}
    for router in (
        pools.router,
        schedules.router,
        automations.router,
        deployments.router,
        flow_runs.router,
    ):
        app.include_router(router)
    app.include_router(workers.router)
    app.include_router(blocks.router)
    app.include_router(api_keys.router)
    app.include_router(concurrency_limits.router)
    app.include_router(task_runs.router)
    app.include_router(background_tasks.router)
    app.include_router(run_tokens.router)
    app.include_router(events.router)
    app.include_router(artifacts.router)
    app.include_router(webhooks.router)
    app.include_router(variables.router)
    _add_error_handlers(app)
    app.add_middleware(RequestCounter)  # first, so innermost: the requests that reach routes
    if settings.api_key:
        install_auth(app, settings.api_key)
    ui.install(app, settings)  # after install_auth: its session gate runs first (outer)
    app.add_middleware(ApiVersionMiddleware)  # a client we do not serve is told so first
    # last, so outermost: nothing reads a body before its size is bounded
    app.add_middleware(LimitsMiddleware, limits=settings)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        orch: Orchestrator = request.app.state.orchestrator
        body = await orch.metrics.render(orch)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/health", tags=["health"])
    @app.get("/health", tags=["health"])  # where probes and load balancers look
    async def health(request: Request) -> dict[str, str]:
        await request.app.state.orchestrator.queues.ping()
        return {"status": "ok"}

    return app


async def _every(
    interval: float, step: Callable[[Orchestrator], Awaitable[int]], orch: Orchestrator
) -> None:
    """Run a service step now and then every ``interval`` seconds; a failing step is logged.

    Stops once the server is asked to stop: while it drains its last requests it takes no
    heartbeats, so a reconciler still running would crash healthy runs."""
    while not orch.stopping:
        try:
            await step(orch)
        except QueueUnavailable:
            log.warning("service_waiting_for_redis", service=step.__name__)
        except Exception:
            log.exception("service_step_failed", service=step.__name__)
        await asyncio.sleep(interval)


async def _led(
    interval: float, step: Callable[[Orchestrator], Awaitable[int]], orch: Orchestrator
) -> None:
    """``_every``, but the step runs only on the replica that holds the leadership lease."""

    async def if_leading(orch: Orchestrator) -> int:
        return await step(orch) if await orch.leadership.held() else 0

    if_leading.__name__ = step.__name__
    await _every(interval, if_leading, orch)


def stop_services(app: FastAPI) -> None:
    """Stop the services and answer long-polls at once (called from the signal handler
    when shutdown begins, before requests drain; the loop does it between its steps)."""
    orch: Orchestrator | None = getattr(app.state, "orchestrator", None)
    if orch is not None:
        orch.stopping = True
        app.state.loop.call_soon_threadsafe(orch.begin_stopping)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FlowyardError)
    async def flowyard_error(_: Request, exc: FlowyardError) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        if status == 422:  # the published shape of a 422: a list of {loc, msg, type}
            error = {"loc": [], "msg": str(exc), "type": "invalid_input"}
            return JSONResponse({"detail": [error]}, status_code=422)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:  # Starlette lists only the first matching route's methods
            headers = {"Allow": ", ".join(_allowed_methods(request))}
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)

    @app.exception_handler(QueueUnavailable)
    async def queue_unavailable(_: Request, exc: QueueUnavailable) -> JSONResponse:
        log.warning("redis_unavailable", error=str(exc))
        return JSONResponse({"detail": QUEUE_DOWN}, status_code=503)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse(
            {"detail": "conflicts with stored data: " + str(exc.orig).splitlines()[0]}, 409
        )

    @app.exception_handler(OperationalError)
    async def store_busy(_: Request, exc: OperationalError) -> JSONResponse:
        """A store that is locked or unreachable for now: 503, which clients retry; any
        other operational error is a server error and goes on to be logged as one."""
        message = str(exc.orig).lower()
        if "locked" not in message and "connection" not in message:
            raise exc
        log.warning("store_unavailable", error=str(exc.orig).splitlines()[0])
        return JSONResponse({"detail": STORE_BUSY}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's shape, without echoing the input (it may be huge, deep, or a secret)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (asked of the routes themselves)."""
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed
