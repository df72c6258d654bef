"""The Docker worker: each flow run is a container, through the ``docker`` SDK.

The container is created, its id recorded on the run as the infrastructure id, and only
then started; its stdout and stderr become the run's logs; its exit code settles the run
as every worker does (no final state → Crashed with the code). A cancel stops it with the
grace period (SIGTERM, then SIGKILL), within a second of the request (``CancelWatch``),
not at the next heartbeat. Every container carries ``io.flowyard.*`` labels
(run, deployment, pool, worker), so that a later reconciler can find the containers of a
worker that died.

Job variables may refer to blocks: ``"registry_credentials": "{{ block.docker-registry-
credentials/ghcr }}"``, ``"docker_host": "{{ block.docker-host/prod }}"``; references are
resolved, secrets included, when the run is launched. Docker SDK errors are translated
here into ``DockerError`` with a message that says what failed.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from flowyard import schemas as s
from flowyard.blocks import DockerHost, DockerRegistryCredentials
from flowyard.errors import DockerError, FlowyardError
from flowyard.workers.base import CANCEL, BaseWorker, Infrastructure, OutputSink
from flowyard.workers.cancel_watch import CancelWatch
from flowyard.workers.docker_variables import DockerVariables

__all__ = ["ContainerInfrastructure", "DockerVariables", "DockerWorker"]

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

LABEL = "io.flowyard"
"""Prefix of the labels on every container a Docker worker starts."""


class ContainerInfrastructure(Infrastructure):
    """``id`` is the container id; ``base_url`` the engine it runs on (None: the default)."""

    base_url: str | None = None


class DockerWorker(BaseWorker[DockerVariables, ContainerInfrastructure]):
    type: ClassVar[str] = "docker"
    requires: ClassVar[tuple[str, str] | None] = ("docker", "docker")
    variables = DockerVariables
    supports_kill: ClassVar[bool] = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._clients: dict[str | None, DockerClient] = {}
        self._clients_lock = threading.Lock()
        self._readers: dict[str, list[threading.Thread]] = {}
        self._auto_remove: set[str] = set()
        self._created: dict[str, tuple[Container, OutputSink | None]] = {}
        """Containers created and not started yet, with where their output goes."""
        self._cancel_watch = CancelWatch(self.client, self._started_runs, self._cancelled)

    # -- create / start / wait / kill -------------------------------------------------------

    def create(
        self, claimed: s.ClaimedRun, configuration: DockerVariables, output: OutputSink
    ) -> ContainerInfrastructure:
        """Create the container, stopped: the base reports its id before ``start``."""
        engine = self._docker(configuration.docker_host)
        try:
            self._ensure_image(engine, configuration)
            container = engine.containers.create(**self._container_options(claimed, configuration))
            _connect_networks(engine, container, configuration.networks[1:])
        except FlowyardError as exc:
            output("stderr", f"flowyard docker worker: {exc}")
            raise
        except Exception as exc:
            message = f"could not create a container from {configuration.image!r}: {_reason(exc)}"
            output("stderr", f"flowyard docker worker: {message}")
            raise DockerError(message) from exc
        base_url = configuration.docker_host.base_url if configuration.docker_host else None
        if configuration.auto_remove:
            self._auto_remove.add(container.id)
        self._created[container.id] = (container, output if configuration.stream_output else None)
        return ContainerInfrastructure(id=container.id, base_url=base_url)

    def start(self, infrastructure: ContainerInfrastructure) -> None:
        container, output = self._created.pop(infrastructure.id)
        try:
            container.start()
        except Exception as exc:
            _remove(container)
            raise DockerError(f"could not start the container: {_reason(exc)}") from exc
        if output is not None:
            self._readers[container.id] = [
                _follow(container, stream, output) for stream in ("stdout", "stderr")
            ]

    def setup(self) -> None:
        """Create the pool if needed, then settle containers a dead worker left behind."""
        super().setup()
        from flowyard.workers.docker_orphans import settle_orphans

        try:
            settle_orphans(self, self._docker(None))
        except Exception as exc:  # the worker still serves; the reconciler settles runs anyway
            self.log.warning("orphan_containers_not_settled", error=_reason(exc))
        self._cancel_watch.start()

    def wait(self, infrastructure: ContainerInfrastructure) -> int:
        container = self._container(infrastructure)
        try:
            result = container.wait()
            for reader in self._readers.pop(container.id, []):
                reader.join()
            code: int = result.get("StatusCode", -1)
            return code
        except Exception as exc:
            raise DockerError(f"lost the container {container.id[:12]}: {_reason(exc)}") from exc
        finally:
            self._readers.pop(container.id, None)
            if container.id in self._auto_remove:
                self._auto_remove.discard(container.id)
                _remove(container)

    def kill(self, infrastructure: ContainerInfrastructure, grace_seconds: float) -> None:
        """``docker stop``: SIGTERM, then SIGKILL once ``grace_seconds`` have passed."""
        import docker.errors

        try:
            self._container(infrastructure).stop(timeout=max(1, round(grace_seconds)))
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise DockerError(f"could not stop the container: {_reason(exc)}") from exc

    def shutdown(self) -> None:
        self._cancel_watch.stop()
        try:
            super().shutdown()
        finally:
            for client in self._clients.values():
                client.close()

    def _started_runs(self) -> list[str]:
        """Runs whose container was started and that no one is stopping yet."""
        return [
            active.run_id
            for active in list(self._active.values())
            if active.infrastructure is not None and not active.stop_reason
        ]

    def _cancelled(self, run_id: str) -> None:
        """The cancel watch saw the run Cancelling: stop its container (in the background,
        as the heartbeat does: ``docker stop`` waits up to the grace period)."""
        active = self._active.get(run_id)
        if active is None or active.stop_reason:
            return
        self.log.info("run_cancelling", run_id=run_id, seen_by="cancel_watch")
        active.stop_reason = CANCEL
        threading.Thread(target=self._kill, args=(active, CANCEL), daemon=True).start()

    # -- pieces -----------------------------------------------------------------------------

    def _container_options(
        self, claimed: s.ClaimedRun, configuration: DockerVariables
    ) -> dict[str, Any]:
        run = claimed.run
        command = (
            shlex.split(configuration.command)
            if configuration.command
            else ["python", "-m", "flowyard.engine", run.id]
        )
        options: dict[str, Any] = {
            "image": configuration.image,
            "command": command,
            "environment": {**configuration.env, **self.engine_env(claimed)},
            "labels": {**configuration.labels, **self._labels(claimed)},
            "volumes": configuration.volumes,
            "init": configuration.init or None,
            "working_dir": configuration.working_dir,
            "user": configuration.user,
            "mem_limit": configuration.mem_limit,
            "memswap_limit": configuration.memswap_limit,
            "nano_cpus": int(configuration.cpus * 1e9) if configuration.cpus else None,
            "privileged": configuration.privileged or None,
            "devices": configuration.devices,
            "device_requests": configuration.device_request_options(),
            "extra_hosts": configuration.extra_hosts,
            "name": f"flowyard-{run.name}-{run.id[:8]}".replace(" ", "-"),
            "detach": True,
            **_network(configuration),
            **configuration.container_create_kwargs,  # an allow-list: nothing above
        }
        return {key: value for key, value in options.items() if value not in (None, [], {})}

    def _labels(self, claimed: s.ClaimedRun) -> dict[str, str]:
        labels = {
            f"{LABEL}.flow-run-id": claimed.run.id,
            f"{LABEL}.flow-run-name": claimed.run.name,
            f"{LABEL}.flow-name": claimed.run.flow_name,
            f"{LABEL}.pool": self.pool,
            f"{LABEL}.worker": self.name,
        }
        if claimed.deployment:
            labels[f"{LABEL}.deployment-id"] = claimed.deployment.id
            labels[f"{LABEL}.deployment-name"] = claimed.deployment.name
        return labels

    def _ensure_image(self, engine: DockerClient, configuration: DockerVariables) -> None:
        import docker.errors

        policy, image = configuration.image_pull_policy, configuration.image
        if policy != "always":
            try:
                engine.images.get(image)
                return
            except docker.errors.ImageNotFound:
                if policy == "never":
                    raise DockerError(
                        f"image {image!r} is not on the Docker host and the pull policy is 'never'"
                    ) from None
        repository, tag = _split_image(image)
        auth = _auth_config(configuration.registry_credentials)
        try:
            engine.images.pull(repository, tag=tag, auth_config=auth)
        except docker.errors.APIError as exc:
            raise DockerError(f"could not pull image {image!r}: {_reason(exc)}") from exc

    def _docker(self, host: DockerHost | None) -> DockerClient:
        key = host.base_url if host else None
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = _connect(host)
            return self._clients[key]

    def _container(self, infrastructure: ContainerInfrastructure) -> Container:
        engine = self._docker(DockerHost(base_url=infrastructure.base_url))
        return engine.containers.get(infrastructure.id)


def _network(configuration: DockerVariables) -> dict[str, str]:
    """The first of ``networks`` at creation (Docker takes one then), else the mode."""
    if configuration.networks:
        return {"network": configuration.networks[0]}
    return {"network_mode": configuration.network_mode}


def _connect_networks(engine: DockerClient, container: Container, names: list[str]) -> None:
    """Connect the other ``networks``; a failure removes the container, never half-made."""
    try:
        for name in names:
            engine.networks.get(name).connect(container)
    except Exception:
        _remove(container)
        raise


def _connect(host: DockerHost | None) -> DockerClient:
    import docker

    try:
        if host is None or not host.base_url:
            return docker.from_env()
        tls: Any = False
        if host.tls_verify or host.tls_client_cert:
            cert = (
                (host.tls_client_cert, host.tls_client_key)
                if host.tls_client_cert and host.tls_client_key
                else None
            )
            tls = docker.tls.TLSConfig(
                client_cert=cert, ca_cert=host.tls_ca_cert, verify=host.tls_verify
            )
        options: dict[str, Any] = {"base_url": host.base_url, "tls": tls}
        if host.version:
            options["version"] = host.version
        if host.timeout:
            options["timeout"] = host.timeout
        return docker.DockerClient(**options)
    except docker.errors.DockerException as exc:
        raise DockerError(f"cannot reach the Docker engine: {_reason(exc)}") from exc


def _auth_config(credentials: DockerRegistryCredentials | None) -> dict[str, str] | None:
    if credentials is None:
        return None
    return {
        "username": credentials.username,
        "password": credentials.password.get_secret_value(),
        "serveraddress": credentials.registry_url,
    }


def _split_image(image: str) -> tuple[str, str | None]:
    """``repo[:tag][@digest]`` → (repository, tag); a ``:`` in a registry's port is not a tag."""
    if "@" in image:
        return image, None
    name, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return image, "latest"


def _follow(container: Container, stream: str, output: OutputSink) -> threading.Thread:
    """A thread that sends one stream of the container's output to ``output``, line by line."""

    def read() -> None:
        try:
            chunks = container.logs(
                stdout=stream == "stdout", stderr=stream == "stderr", stream=True, follow=True
            )
            for line in _lines(chunks):
                output(stream, line)
        except Exception:  # the container went away: its output ends here
            return

    thread = threading.Thread(target=read, name=f"container-{stream}", daemon=True)
    thread.start()
    return thread


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode(errors="replace").rstrip("\r")
    if pending:
        yield pending.decode(errors="replace")


def _remove(container: Container) -> None:
    try:
        container.remove(force=True)
    except Exception:  # already removed, or the engine is gone: nothing left to do
        return


def _reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
