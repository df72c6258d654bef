"""Real Redis topologies beyond one node for tests: a Redis Cluster, a Sentinel group.

Every node is a ``redis-server`` child on loopback with its files in a folder of its own;
nothing is persisted. A cluster node also listens on its port + 10000 (the cluster bus),
so node ports are picked with both free.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from flowyard.pools.redis_server import HOST, find_redis_server
from flowyard.utilities.ports import free_port
from tests.waiting import wait_until

BUS_OFFSET = 10_000


def _redis_cli() -> str:
    beside = Path(find_redis_server()).with_name("redis-cli")
    return str(beside) if beside.is_file() else shutil.which("redis-cli") or "redis-cli"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster-bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + BUS_OFFSET < 65536 and _port_free(port + BUS_OFFSET):
            return port


class Node:
    """One ``redis-server`` child: started with extra arguments, stopped or killed."""

    def __init__(self, folder: Path, port: int, *args: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.folder = folder
        command = [find_redis_server(), *args, "--port", str(port), "--bind", HOST]
        command += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        command += ["--logfile", str(folder / "redis.log"), "--daemonize", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.client = redis.Redis(host=HOST, port=port, socket_timeout=5.0)
        wait_until(self._answers, timeout=10, message=f"redis node on {port} answers")

    def _answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """SIGKILL: the node dies with whatever it had not yet replicated."""
        self.process.kill()
        self.process.wait(10)
        self.client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.client.close()


class LocalCluster:
    """``primaries`` cluster primaries (each with ``replicas`` replicas), slots all covered."""

    def __init__(self, folder: Path, primaries: int = 3, replicas: int = 0) -> None:
        self.nodes: list[Node] = []
        try:
            for i in range((1 + replicas) * primaries):
                port = cluster_port()
                args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
                args += ["--cluster-config-file", str(folder / f"node-{i}" / "nodes.conf")]
                self.nodes.append(Node(folder / f"node-{i}", port, *args))
            create = [_redis_cli(), "--cluster", "create"]
            create += [f"{HOST}:{node.port}" for node in self.nodes]
            create += ["--cluster-replicas", str(replicas), "--cluster-yes"]
            subprocess.run(create, check=True, capture_output=True, timeout=60)
            wait_until(self.healthy, timeout=30, message="cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """The URL a Flowyard server is given to use this cluster."""
        return f"redis+cluster://{HOST}:{self.nodes[0].port}/0"

    def healthy(self) -> bool:
        """Every live node sees the cluster ok (all slots served)."""
        for node in self.nodes:
            if node.process.poll() is not None:
                continue
            try:
                info = node.client.execute_command("CLUSTER", "INFO")
            except redis.ConnectionError:
                return False
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text:
                return False
        return True

    def node_of(self, key: str) -> int:
        """The port of the primary serving ``key``'s slot."""
        client = self.nodes[0].client
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return int(primary[1])
        raise LookupError(f"no node serves slot {slot}")

    def primaries(self) -> set[int]:
        """The ports of the nodes that serve slots now."""
        slots = self.nodes[0].client.execute_command("CLUSTER", "SLOTS")
        return {int(primary[1]) for _, _, primary, *_ in slots}

    def flush(self) -> None:
        """Empty every primary (a replica follows its primary)."""
        for node in self.nodes:
            if node.port in self.primaries():
                node.client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextmanager
def running_cluster(folder: Path, primaries: int = 3, replicas: int = 0) -> Iterator[LocalCluster]:
    """A :class:`LocalCluster` for the length of a ``with`` block (a session fixture's)."""
    cluster = LocalCluster(folder, primaries, replicas)
    try:
        yield cluster
    finally:
        cluster.stop()


def pools_on_every_node(cluster: LocalCluster, prefix: str) -> list[str]:
    """Pool names whose slots (``{name}``) land on different primaries, one per primary."""
    found: dict[int, str] = {}
    for i in range(1000):
        name = f"{prefix}-{i}"
        found.setdefault(cluster.node_of(f"{{{name}}}"), name)
        if len(found) == len(cluster.primaries()):
            return list(found.values())
    raise LookupError("no pool names found for every primary")


SERVICE = "flowyard"


class LocalSentinel:
    """A primary, one replica and three Sentinels watching them as :data:`SERVICE`."""

    def __init__(self, folder: Path) -> None:
        self.nodes: list[Node] = []
        try:
            self.primary = self._start(Node(folder / "primary", free_port()))
            replica_of = ["--replicaof", HOST, str(self.primary.port)]
            self.replica = self._start(Node(folder / "replica", free_port(), *replica_of))
            for i in range(3):
                conf = folder / f"sentinel-{i}" / "sentinel.conf"
                conf.parent.mkdir(parents=True)
                conf.write_text(
                    f"sentinel monitor {SERVICE} {HOST} {self.primary.port} 2\n"
                    f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                    f"sentinel failover-timeout {SERVICE} 10000\n"
                )
                self._start(Node(conf.parent, free_port(), str(conf), "--sentinel"))
            wait_until(self._formed, timeout=30, message="the Sentinels know each other")
        except BaseException:
            self.stop()
            raise

    def _start(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    @property
    def sentinels(self) -> list[Node]:
        return self.nodes[2:]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{node.port}" for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _formed(self) -> bool:
        """Every Sentinel sees the replica and the two other Sentinels."""
        for node in self.sentinels:
            if len(node.client.execute_command("SENTINEL", "REPLICAS", SERVICE)) != 1:
                return False
            if len(node.client.execute_command("SENTINEL", "SENTINELS", SERVICE)) != 2:
                return False
        return True

    def primary_port(self) -> int:
        """The port of the primary the Sentinels name now."""
        sentinel = self.sentinels[0].client
        _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
