"""The Lambda worker: each flow run is one invocation of a function that runs the engine.

``create`` mints a token scoped to the run (never the worker's key), invokes the pool's
function with the run's payload (throttles retried with backoff, then the run Crashed),
and returns Lambda's request id as the infrastructure id. ``wait`` then depends on the
invocation type:

- ``RequestResponse``: the answer came when the function ended; a function error (the
  handler raised, Lambda's 15-minute limit, out of memory) ends the run Crashed with
  Lambda's reason, unless the engine reported a final state first.
- ``Event`` (default): the worker holds no process. It follows the run through the API
  until it is final. While the run is Pending the worker's heartbeat carries its lease
  (and a run the function has not started after ``start_timeout_seconds`` is Crashed);
  once the engine reports Running, the engine's own heartbeat carries it and the worker
  stops extending it, so a function that dies (15-minute limit) lets the lease expire and
  the reconciler Crashes the run. The pool's and queue's concurrency slots are held in
  Redis until the run is final, whatever the worker does.

The worker cannot stop a running invocation (``supports_kill`` is False): a cancelled run
is stopped by its engine, which sees Cancelling in its next heartbeat's answer.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from flowyard import schemas as s
from flowyard.blocks import AwsCredentials
from flowyard.errors import ApiError, LambdaError
from flowyard.states import StateType
from flowyard.workers.aws_lambda import invocation
from flowyard.workers.aws_lambda.variables import LambdaVariables
from flowyard.workers.base import BaseWorker, Infrastructure, OutputSink

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

THROTTLE_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=10.0)
"""Waits between retries of a throttled invoke: 0.5 s, 1 s, 2 s … (jittered), at most 10 s."""
POLL_INTERVALS = (0.2, 0.5, 1.0, 2.0)
"""How often an Event run's state is read: quickly at first, then every 2 s."""


class LambdaInfrastructure(Infrastructure):
    """``id`` is Lambda's request id for the invocation."""

    run_id: str
    function_name: str
    invocation_type: str


class LambdaWorker(BaseWorker[LambdaVariables, LambdaInfrastructure]):
    type: ClassVar[str] = "lambda"
    requires: ClassVar[tuple[str, str] | None] = ("boto3", "aws")
    variables = LambdaVariables
    supports_kill: ClassVar[bool] = False
    kills_at_shutdown: ClassVar[bool] = False  # an invocation outlives its worker anyway

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._boto: dict[str, Any] = {}
        self._boto_lock = threading.Lock()
        self._memory: dict[tuple[str, str | None], int | None] = {}
        self._runs: dict[str, tuple[s.ClaimedRun, LambdaVariables]] = {}
        self._outcomes: dict[str, invocation.InvokeOutcome] = {}
        self._handed_over: set[str] = set()

    # -- create / wait ------------------------------------------------------------------------

    def create(
        self, claimed: s.ClaimedRun, configuration: LambdaVariables, output: OutputSink
    ) -> LambdaInfrastructure:
        """Invoke the function (its request id is the handle, known only once invoked)."""
        run_id = claimed.run.id
        client = self._lambda(configuration)
        self._check_memory(client, configuration)
        ttl = configuration.timeout_seconds + configuration.start_timeout_seconds + 60
        payload = invocation.build_payload(
            run_id=run_id,
            api_url=configuration.api_url or self.client.api_url,
            run_token=self.client.create_run_token(run_id, ttl_seconds=ttl),
            claim_token=claimed.token,
            env=configuration.env,
        )
        arguments = invocation.invoke_arguments(
            configuration.function_name,
            configuration.qualifier,
            configuration.invocation_type,
            payload,
        )
        self._runs[run_id] = (claimed, configuration)
        try:
            outcome = self._invoke(client, arguments, configuration.throttle_retries)
        except Exception:
            self._runs.pop(run_id, None)
            raise
        if outcome.function_error:  # AWS sends none for Event; emulations (moto) may
            output("stderr", f"flowyard lambda worker: {outcome.error_message}")
        if configuration.invocation_type == "RequestResponse":
            self._outcomes[run_id] = outcome  # an Event answer says nothing of the run
        return LambdaInfrastructure(
            id=outcome.request_id or f"lambda-{run_id}",
            run_id=run_id,
            function_name=configuration.function_name,
            invocation_type=configuration.invocation_type,
        )

    def wait(self, infrastructure: LambdaInfrastructure) -> int:
        """0 once the run is final (or the function answered), 1 when the worker Crashed it."""
        run_id = infrastructure.run_id
        try:
            claimed, configuration = self._runs[run_id]
            if infrastructure.invocation_type == "RequestResponse":
                return self._answered(claimed, self._outcomes[run_id])
            return self._follow(claimed, configuration, infrastructure.id)
        finally:
            self._runs.pop(run_id, None)
            self._outcomes.pop(run_id, None)
            self._handed_over.discard(run_id)

    @property
    def active_run_ids(self) -> list[str]:
        """Runs whose lease this worker carries: not those the engine already carries."""
        return [run_id for run_id in super().active_run_ids if run_id not in self._handed_over]

    def shutdown(self) -> None:
        """Stop as every worker does; runs in flight go on in Lambda, carried by their engines
        (a Pending one's lease expires and it returns to the queue)."""
        try:
            super().shutdown()
        finally:
            for client in self._boto.values():
                client.close()

    # -- pieces -------------------------------------------------------------------------------

    def _invoke(
        self, client: Any, arguments: dict[str, Any], retries: int
    ) -> invocation.InvokeOutcome:
        """Invoke, retrying throttles with backoff; any other refusal is a ``LambdaError``."""
        from botocore.exceptions import BotoCoreError, ClientError

        function = arguments["FunctionName"]
        retrying = Retrying(
            retry=retry_if_exception(_throttled),
            stop=stop_after_attempt(retries + 1),
            wait=THROTTLE_BACKOFF,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = client.invoke(**arguments)
        except ClientError as exc:
            raise LambdaError(_refusal(function, exc, retries)) from exc
        except BotoCoreError as exc:
            raise LambdaError(f"could not invoke Lambda function {function!r}: {exc}") from exc
        return invocation.parse_response(response, response["Payload"].read())

    def _answered(self, claimed: s.ClaimedRun, outcome: invocation.InvokeOutcome) -> int:
        """A RequestResponse run: the function has ended; its error, if any, ends the run."""
        if outcome.function_error:
            self._crash(claimed, f"the Lambda function failed: {outcome.error_message}")
            return 1
        return 0

    def _follow(self, claimed: s.ClaimedRun, configuration: LambdaVariables, request: str) -> int:
        """Read an Event run's state until it is final; Crash it if it never starts."""
        run_id = claimed.run.id
        start_deadline = time.monotonic() + configuration.start_timeout_seconds
        pause = threading.Event()
        for polls in itertools.count():
            state = self._state(run_id)
            if state is not None and state.is_terminal:
                return 0
            if state is not None and state is not StateType.PENDING:
                self._handed_over.add(run_id)  # the engine's heartbeat carries the lease now
            elif time.monotonic() > start_deadline:
                waited = configuration.start_timeout_seconds
                message = (
                    f"the Lambda function did not start the flow run within {waited:g} s "
                    f"(request {request})"
                )
                self._crash(claimed, message)
                return 1
            pause.wait(POLL_INTERVALS[min(polls, len(POLL_INTERVALS) - 1)])
        raise AssertionError("unreachable")  # pragma: no cover

    def _state(self, run_id: str) -> StateType | None:
        try:
            return self.client.read_flow_run(run_id).state.type
        except ApiError as exc:
            self.log.warning("run_state_unreadable", run_id=run_id, error=str(exc))
            return None

    def _crash(self, claimed: s.ClaimedRun, message: str) -> None:
        """Report Crashed with ``message`` unless the run is already final."""
        state = self._state(claimed.run.id)
        if state is None or state.is_terminal:
            return
        self.metrics.crashed.inc()
        change = s.StateChange(type=StateType.CRASHED, token=claimed.token, message=message)
        try:
            self.client.set_flow_run_state(claimed.run.id, change)
        except ApiError as exc:
            self.log.error("state_not_reported", run_id=claimed.run.id, error=str(exc))

    def _check_memory(self, client: Any, configuration: LambdaVariables) -> None:
        """Refuse a function configured with less memory than the job asks for."""
        if configuration.memory_mb is None:
            return
        key = (configuration.function_name, configuration.qualifier)
        if key not in self._memory:
            options = {"FunctionName": key[0], **({"Qualifier": key[1]} if key[1] else {})}
            try:
                self._memory[key] = client.get_function_configuration(**options).get("MemorySize")
            except Exception as exc:  # botocore's errors; the invoke will say more
                self.log.warning("function_configuration_unreadable", error=str(exc))
                self._memory[key] = None
        reason = invocation.memory_refusal(
            self._memory[key], configuration.memory_mb, configuration.function_name
        )
        if reason:
            raise LambdaError(reason)

    def _lambda(self, configuration: LambdaVariables) -> Any:
        """One boto3 Lambda client per credentials block (boto3 clients are thread-safe)."""
        from botocore.config import Config

        credentials = configuration.aws_credentials or AwsCredentials()
        key = json.dumps([credentials.client_options(), configuration.timeout_seconds])
        with self._boto_lock:
            if key not in self._boto:
                config = Config(
                    connect_timeout=10,
                    read_timeout=invocation.read_timeout(configuration.timeout_seconds),
                    retries={"total_max_attempts": 1},  # throttles are retried above, counted
                    max_pool_connections=max(10, self.limit or 10),
                )
                self._boto[key] = credentials.get_client("lambda", config)
            return self._boto[key]


def _throttled(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and invocation.is_throttle(exc.response)


def _refusal(function: str, exc: ClientError, retries: int) -> str:
    code = invocation.error_code(exc.response)
    message = exc.response.get("Error", {}).get("Message") or str(exc)
    message = (message.strip().splitlines() or [""])[0][:200]
    if invocation.is_throttle(exc.response):
        return (
            f"Lambda throttled the invocation of {function!r} {retries + 1} times "
            f"({code}: {message})"
        )
    return f"Lambda refused to invoke {function!r}: {code}: {message}"
