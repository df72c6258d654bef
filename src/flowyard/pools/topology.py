"""Which Redis a ``FLOWYARD_REDIS_URL`` names: one server, a Redis Cluster or a Sentinel group.

    redis://[:password@]host:port/db           one server (also rediss://, unix://)
    redis+cluster://[:password@]host:port/db   a Redis Cluster; any node is a seed, the
                                               client learns the others and follows MOVED
    redis+sentinel://[:password@]h1:p1,h2:p2/service[/db]
                                               the primary that these Sentinels know as
                                               ``service``; the client asks them again
                                               after a failover (the password is the
                                               primary's; the Sentinels need none)

``rediss+cluster://`` and ``rediss+sentinel://`` use TLS to the data nodes. A managed
primary/replica Redis (ElastiCache, Memorystore) with one endpoint that moves on
failover is a plain ``redis://`` URL: the client reconnects to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.sentinel import Sentinel as SyncSentinel

from flowyard.errors import InvalidInput

Kind = Literal["single", "cluster", "sentinel"]
SENTINEL_PORT = 26379
MAX_SENTINELS = 16


@dataclass(frozen=True)
class Where:
    """A parsed Redis URL: its kind, the URL a redis-py client takes, Sentinel details."""

    kind: Kind
    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    password: str | None = None
    username: str | None = None
    tls: bool = False


def parse(url: str) -> Where:
    """What ``url`` names; InvalidInput for a Sentinel URL without hosts or service."""
    scheme, sep, rest = url.partition("://")
    base, _, variant = scheme.partition("+")
    if not sep or variant not in ("", "cluster", "sentinel"):
        return Where("single", url)  # redis-py judges anything else it is given
    if variant == "cluster":
        return Where("cluster", f"{base}://{rest}")
    if variant == "sentinel":
        return _sentinel(url, tls=base == "rediss")
    return Where("single", url)


def _sentinel(url: str, *, tls: bool) -> Where:
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    path = [p for p in parts.path.split("/") if p]
    try:
        sentinels = tuple(_host_port(h) for h in hosts.split(",") if h)
        db = int(path[1]) if len(path) > 1 else 0
    except ValueError:
        sentinels = ()  # a port or db that is not a number: the same answer as none
    if not sentinels or not path or len(sentinels) > MAX_SENTINELS:
        raise InvalidInput(
            f"a Sentinel URL names its Sentinels (1 to {MAX_SENTINELS}, host:port with a "
            "numeric port) and service: "
            "redis+sentinel://[:password@]host:port[,host:port...]/service[/db]"
        )
    return Where(
        "sentinel",
        url,
        sentinels=sentinels,
        service=unquote(path[0]),
        db=db,
        password=unquote(parts.password) if parts.password else None,
        username=unquote(parts.username) if parts.username else None,
        tls=tls,
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, SENTINEL_PORT
    return host.strip("[]"), int(port)


def sentinel_primary(where: Where, **options: Any) -> aioredis.Redis:
    """A client of the primary the Sentinels name now, and again after each failover."""
    primary: aioredis.Redis = _primary_of(Sentinel, where, redis_class=aioredis.Redis, **options)
    return primary


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A synchronous client of one server or of a Sentinel-watched primary (RQ's);
    InvalidInput for a cluster, which RQ cannot use."""
    where = parse(url)
    if where.kind == "cluster":
        raise InvalidInput("a synchronous client of one server was asked for a Redis Cluster")
    if where.kind == "single":
        return redis.Redis.from_url(url, **options)
    primary: redis.Redis = _primary_of(SyncSentinel, where, **options)
    return primary


def _primary_of(sentinel_class: Any, where: Where, **options: Any) -> Any:
    """``where``'s primary through its Sentinels (asyncio's or the synchronous client's),
    the Sentinels asked with the same socket timeouts as the primary."""
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = sentinel_class(list(where.sentinels), sentinel_kwargs=timeouts)
    return sentinel.master_for(
        where.service,
        db=where.db,
        password=where.password,
        username=where.username,
        ssl=where.tls,
        **options,
    )
