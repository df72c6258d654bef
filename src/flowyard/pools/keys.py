"""Every Redis key of a work pool, built here and nowhere else.

Key schema (``P`` = pool name, ``Q`` = queue name). All keys of a pool share
the hash tag ``{P}``, so each Lua script touches one Redis Cluster slot::

    fy:{P}:config      HASH  the pool's configuration
                             paused      "1" | "0"
                             limit       pool concurrency limit (absent = unlimited)
                             version     opaque token, replaced whenever the queue set
                                         or a queue priority changes
                             q:Q:priority, q:Q:limit (absent = unlimited), q:Q:paused,
                             q:Q:fair ("1": deployments take turns in Q)
    fy:{P}:slots       ZSET  run_id -> lease expiry    runs holding a pool slot
    fy:{P}:leases      ZSET  run_id -> lease expiry    claim leases not yet ended
    fy:{P}:claims      HASH  run_id -> {"queue", "token", "worker"} (JSON)
    fy:{P}:claimed:K   STRING  JSON [[run_id, token], …]: the runs the claim request with
                             idempotency key K was given, kept as long as a lease, so
                             that a request sent again gets the same runs
    fy:{P}:rundeps     HASH  run_id -> deployment id   for waiting runs of a deployment
    fy:{P}:dslots      ZSET  "D:run_id", all scored 0  runs holding a slot of deployment D
                             (counted by prefix with ZLEXCOUNT)
    fy:{P}:dlimits     HASH  deployment id -> "N" (wait) | "N:cancel" (cancel new runs)
    fy:{P}:runprio     HASH  run_id -> priority        for waiting runs whose priority is not 0
    fy:{P}:q:Q:ready   ZSET  run_id -> scheduled time  runs waiting in queue Q; once due, a
                             run is re-scored below 0 by (priority, rank) (see claim.lua)
    fy:{P}:q:Q:ranks   HASH  the rank counters of Q's due runs (see claim.lua)
    fy:{P}:q:Q:slots   ZSET  run_id -> lease expiry    runs of Q holding a queue slot

Task-run concurrency limits by tag share one hash tag, so one script can take slots of
several tags at once::

    fy:{tags}:slots:T  ZSET  OWNER/holder -> lease expiry   task runs (and ``concurrency``
                             blocks) holding a slot of tag T; OWNER is the principal that
                             took it (see ``tag_slots.members``)
    fy:{tags}:decay:T  ZSET  slot -> time it decays    slots taken by ``rate_limit`` (they
                             are never given back: they drain at the limit's decay rate)

Background task runs (``Task.delay``) share one hash tag, so that one claim script can
take runs of several tasks at once (``K`` = task key)::

    fy:{tasks}:bg:ready:K  ZSET  run_id -> time queued     Scheduled runs of task K
    fy:{tasks}:bg:leases   ZSET  run_id -> lease expiry    claimed runs not yet ended
    fy:{tasks}:bg:claims   HASH  run_id -> {"token", "key", "worker"} (JSON)

Keys that belong to no pool, each with a hash tag of its own (a key without one would be
placed by its whole name, which is as good, but a tag says it was meant)::

    fy:{built}         STRING  set once the queues were rebuilt from the store; its
                               absence means Redis lost its data (restart, flush, a
                               failover to a replica that had not caught up)
    fy:{leader}        STRING  the API replica that runs the singleton services, with a TTL
    fy:{pools}         SET     the pools whose keys were written (added before a pool's
                               configuration is, removed after its keys are deleted): a
                               pool deleted while Redis was away is still listed, and the
                               rebuild deletes its keys

Events are fanned out on one stream with its own hash tag (``EVENTS_STREAM``)::

    fy:{events}:stream STREAM  committed events: id, event name, JSON document

Pub/sub channel (not a key): ``fy:{P}:wake`` — any message means "re-check pool P"
(a run was enqueued, a slot was freed or the configuration changed). A background run of
task ``K`` queued publishes on ``fy:{task:K}:wake`` (its "pool" is ``task:K`` for
:class:`~flowyard.pools.wakeups.Wakeups`).
"""

from __future__ import annotations

from flowyard.errors import InvalidInput

PREFIX = "fy"
WAKE_PATTERN = f"{PREFIX}:{{*}}:wake"

BUILT = f"{PREFIX}:{{built}}"
LEADER = f"{PREFIX}:{{leader}}"
POOLS = f"{PREFIX}:{{pools}}"

PAUSED = "paused"
LIMIT = "limit"
VERSION = "version"
QUEUE_ATTRS = ("priority", "limit", "paused", "fair")


def _base(pool: str) -> str:
    if not pool or "{" in pool or "}" in pool:
        raise InvalidInput(f"Pool name {pool!r} must be non-empty and contain no braces")
    return f"{PREFIX}:{{{pool}}}"


def _queue_base(pool: str, queue: str) -> str:
    if not queue:
        raise InvalidInput("Queue name must be non-empty")
    return f"{_base(pool)}:q:{queue}"


def config(pool: str) -> str:
    """The pool's configuration hash."""
    return f"{_base(pool)}:config"


def pool_slots(pool: str) -> str:
    """The ZSET of runs holding one of the pool's concurrency slots."""
    return f"{_base(pool)}:slots"


def leases(pool: str) -> str:
    """The ZSET of claim leases by expiry."""
    return f"{_base(pool)}:leases"


def claims(pool: str) -> str:
    """The hash of claim records by run id."""
    return f"{_base(pool)}:claims"


def claim_answer(pool: str, idempotency_key: str) -> str:
    """The runs a claim request with this idempotency key was given."""
    return f"{_base(pool)}:claimed:{idempotency_key}"


def run_deployments(pool: str) -> str:
    """The hash of waiting runs' deployments, for deployment concurrency limits."""
    return f"{_base(pool)}:rundeps"


def deployment_slots(pool: str) -> str:
    """The ZSET of "deployment:run" members holding a deployment's slot."""
    return f"{_base(pool)}:dslots"


def deployment_limits(pool: str) -> str:
    """The hash of deployment concurrency limits of the pool's deployments."""
    return f"{_base(pool)}:dlimits"


def run_priorities(pool: str) -> str:
    """The hash of waiting runs' priorities within their queue (absent = 0)."""
    return f"{_base(pool)}:runprio"


def ready(pool: str, queue: str) -> str:
    """The ZSET of runs waiting in a queue, scored by scheduled time."""
    return f"{_queue_base(pool, queue)}:ready"


def ranks(pool: str, queue: str) -> str:
    """The hash of rank counters that order a queue's due runs (fair turns among them)."""
    return f"{_queue_base(pool, queue)}:ranks"


def queue_slots(pool: str, queue: str) -> str:
    """The ZSET of runs holding one of the queue's concurrency slots."""
    return f"{_queue_base(pool, queue)}:slots"


def wake_channel(pool: str) -> str:
    """The pub/sub channel that wakes the pool's long-polling claimers."""
    return f"{_base(pool)}:wake"


def tag_slots(tag: str) -> str:
    """The ZSET of task runs holding a slot of the concurrency limit of ``tag``."""
    return f"{PREFIX}:{{tags}}:slots:{_tag(tag)}"


def tag_decaying_slots(tag: str) -> str:
    """The ZSET of the slots of ``tag``'s limit taken by rate limits, until they decay."""
    return f"{PREFIX}:{{tags}}:decay:{_tag(tag)}"


def _tag(tag: str) -> str:
    if not tag:
        raise InvalidInput("a concurrency-limit tag must be non-empty")
    return tag


def _task_key(task_key: str) -> str:
    if not task_key or "{" in task_key or "}" in task_key:
        raise InvalidInput(f"Task key {task_key!r} must be non-empty and contain no braces")
    return task_key


def task_ready(task_key: str) -> str:
    """The ZSET of Scheduled background runs of a task, waiting for a task worker."""
    return f"{PREFIX}:{{tasks}}:bg:ready:{_task_key(task_key)}"


TASK_LEASES = f"{PREFIX}:{{tasks}}:bg:leases"
TASK_CLAIMS = f"{PREFIX}:{{tasks}}:bg:claims"


def task_wake_name(task_key: str) -> str:
    """The name a task's wake channel goes by in :class:`~flowyard.pools.wakeups.Wakeups`."""
    return f"task:{_task_key(task_key)}"


def pool_from_wake_channel(channel: str) -> str | None:
    """The pool a wake channel belongs to, or None if it is not one."""
    head, tail = f"{PREFIX}:{{", "}:wake"
    if channel.startswith(head) and channel.endswith(tail) and len(channel) > len(head + tail):
        return channel[len(head) : -len(tail)]
    return None


def queue_field(queue: str, attr: str) -> str:
    """The config-hash field holding one attribute of a queue."""
    if attr not in QUEUE_ATTRS:
        raise ValueError(f"unknown queue attribute {attr!r}")
    return f"q:{queue}:{attr}"


def parse_queue_field(field: str) -> tuple[str, str] | None:
    """Split a config-hash field into (queue, attr), or None for a pool-level field."""
    if not field.startswith("q:"):
        return None
    queue, _, attr = field[2:].rpartition(":")
    if not queue or attr not in QUEUE_ATTRS:
        return None
    return queue, attr


EVENTS_STREAM = f"{PREFIX}:{{events}}:stream"
"""STREAM of committed events (fields ``id``, ``event``, ``doc``), capped by MAXLEN ~.

A fan-out and a wake-up for live readers, not a record: the store keeps every event, and
a reader that missed entries (Redis restarted) catches up from it by position."""
