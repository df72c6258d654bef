"""Where the emulated kubelet runs a pod's container: Docker (real) or a local process (cheap).

``DockerRuntime`` runs the container on the tests' private dockerd with the host's network
(so the engine reaches the API on 127.0.0.1) and an init as PID 1 (so that SIGTERM reaches
the flow, as ``docker stop`` does for the Docker worker). hostPath volumes become bind
mounts. ``ProcessRuntime`` runs the container's command as a local process (``python``
is this interpreter), for the benchmark's 200 Jobs on a 2-core machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, Protocol


class Runtime(Protocol):
    def image_exists(self, image: str) -> bool: ...

    def start(self, pod: str, container: dict[str, Any], volumes: list[dict[str, Any]]) -> Any: ...

    def output(self, handle: Any) -> Iterator[str]: ...

    def wait(self, handle: Any) -> int: ...

    def stop(self, handle: Any, grace: float) -> None: ...

    def kill(self, handle: Any) -> None:
        """SIGKILL at once, as the OOM killer or a hard eviction does."""


def command_of(container: dict[str, Any]) -> list[str]:
    return list(container.get("command") or []) + list(container.get("args") or [])


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env") or [] if "name" in e}


def lines(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode(errors="replace").rstrip("\r")
    if pending:
        yield pending.decode(errors="replace")


class DockerRuntime:
    def __init__(self, docker_client: Any) -> None:
        self.docker = docker_client

    def image_exists(self, image: str) -> bool:
        import docker.errors

        try:
            self.docker.images.get(image)
            return True
        except docker.errors.ImageNotFound:
            return False

    def start(self, pod: str, container: dict[str, Any], volumes: list[dict[str, Any]]) -> Any:
        paths = {v["name"]: v["hostPath"]["path"] for v in volumes if "hostPath" in v}
        binds = [
            f"{paths[m['name']]}:{m['mountPath']}:{'ro' if m.get('readOnly') else 'rw'}"
            for m in container.get("volumeMounts") or []
            if m.get("name") in paths
        ]
        user = (container.get("securityContext") or {}).get("runAsUser")
        created = self.docker.containers.create(
            image=container["image"],
            command=command_of(container) or None,
            environment=env_of(container),
            network_mode="host",
            init=True,
            working_dir=container.get("workingDir"),
            user=str(user) if user is not None else None,
            volumes=binds,
            labels={"flowyard-kube-emulator": "1", "pod": pod},
            detach=True,
        )
        created.start()
        return created

    def output(self, handle: Any) -> Iterator[str]:
        return lines(handle.logs(stream=True, follow=True))

    def wait(self, handle: Any) -> int:
        return int(handle.wait().get("StatusCode", -1))

    def stop(self, handle: Any, grace: float) -> None:
        try:
            handle.stop(timeout=max(1, round(grace)))
            handle.remove(force=True)
        except Exception:  # already gone
            return

    def kill(self, handle: Any) -> None:
        try:
            handle.kill()
        except Exception:  # already gone
            return


class ProcessRuntime:
    def image_exists(self, image: str) -> bool:
        return "no-such" not in image

    def start(self, pod: str, container: dict[str, Any], volumes: list[dict[str, Any]]) -> Any:
        command = command_of(container)
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        keep = ("PATH", "HOME", "PYTHONPATH", "LANG", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        return subprocess.Popen(
            command,
            env={**env, **env_of(container)},
            cwd=container.get("workingDir"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self, handle: Any) -> Iterator[str]:
        for raw in iter(handle.stdout.readline, b""):
            yield raw.decode(errors="replace").rstrip("\n")

    def wait(self, handle: Any) -> int:
        return int(handle.wait())

    def stop(self, handle: Any, grace: float) -> None:
        try:
            os.killpg(handle.pid, signal.SIGTERM)
            handle.wait(grace)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(handle.pid, signal.SIGKILL)

    def kill(self, handle: Any) -> None:
        try:
            os.killpg(handle.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
