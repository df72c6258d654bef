"""The Docker worker: each flow run is a container, through the ``docker`` SDK.

The container is created, its id recorded on the run as the infrastructure id, and only
then started; its stdout and stderr become the run's logs; its exit code settles the run
as every worker does (no final state → Crashed with the code). A cancel stops it with the
grace period (SIGTERM, then SIGKILL). Every container carries ``io.flowyard.*`` labels
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
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from flowyard import schemas as s
from flowyard.blocks import DockerHost, DockerRegistryCredentials
from flowyard.errors import DockerError, FlowyardError
from flowyard.workers.base import BaseWorker, Infrastructure, OutputSink

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

LABEL = "io.flowyard"
"""Prefix of the labels on every container a Docker worker starts."""


class DockerVariables(BaseModel):
    """Job variables of a docker pool (its base job template's schema)."""

    image: str = Field(default="flowyard:latest", description="Image the flow runs in.")
    command: str | None = Field(
        default=None, description="Command; default: the Flowyard engine for the run."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra container labels.")
    volumes: list[str] = Field(
        default_factory=list, description="Bind mounts, 'host_path:container_path[:ro]'."
    )
    working_dir: str | None = Field(default=None, description="Working directory in the container.")
    user: str | None = Field(default=None, description="User to run as; default: the image's.")
    network_mode: str = Field(default="host", description="Docker network mode.")
    init: bool = Field(
        default=True, description="Run an init as PID 1, so that stop signals reach the flow."
    )
    cpus: float | None = Field(default=None, gt=0, description="CPU limit, e.g. 0.5.")
    mem_limit: str | None = Field(default=None, description="Memory limit, e.g. '512m'.")
    auto_remove: bool = Field(default=True, description="Remove the container once it ended.")
    image_pull_policy: Literal["always", "if_not_present", "never"] = Field(
        default="if_not_present", description="When to pull the image."
    )
    registry_credentials: DockerRegistryCredentials | None = Field(
        default=None, description="A docker-registry-credentials block, to pull private images."
    )
    docker_host: DockerHost | None = Field(
        default=None, description="A docker-host block; default: the worker's environment."
    )
    stream_output: bool = Field(default=True, description="Send output to the run's logs.")


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

    # -- create / start / wait / kill -------------------------------------------------------

    def create(
        self, claimed: s.ClaimedRun, configuration: DockerVariables, output: OutputSink
    ) -> ContainerInfrastructure:
        """Create the container, stopped: the base reports its id before ``start``."""
        engine = self._docker(configuration.docker_host)
        try:
            self._ensure_image(engine, configuration)
            container = engine.containers.create(**self._container_options(claimed, configuration))
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
        try:
            super().shutdown()
        finally:
            for client in self._clients.values():
                client.close()

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
            "network_mode": configuration.network_mode,
            "init": configuration.init or None,
            "working_dir": configuration.working_dir,
            "user": configuration.user,
            "mem_limit": configuration.mem_limit,
            "nano_cpus": int(configuration.cpus * 1e9) if configuration.cpus else None,
            "name": f"flowyard-{run.name}-{run.id[:8]}".replace(" ", "-"),
            "detach": True,
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
