"""Job variables of a docker pool (its base job template's schema), and what they become.

``container_create_kwargs`` passes further options to ``containers.create`` of the docker
SDK (as Prefect's Docker worker does), from an allow-list checked twice: by the pool's
schema (``propertyNames``), so a deployment or run naming another key is refused with a
422, and again here, for a template someone edited. Refused:

- what Flowyard sets itself: ``image``, ``command``, ``entrypoint``, ``environment``
  (the run's token and claim are in it), ``labels`` (how a later worker finds a dead
  worker's containers), ``name``, ``detach``, ``auto_remove`` / ``restart_policy`` (the
  worker reads the exit code, then removes; a restart would run the engine again);
- what has a job variable of its own, so that a pool can constrain it in one place:
  ``volumes``, ``network_mode``, ``user``, ``working_dir``, ``init``, ``mem_limit``,
  ``memswap_limit``, ``nano_cpus``, ``privileged``, ``extra_hosts``, ``devices``,
  ``device_requests``;
- ways out of the container that no variable grants: ``pid_mode`` (the host's processes,
  the worker's environment and its API key among them), ``ipc_mode``, ``uts_mode``,
  ``userns_mode``, ``cgroupns``, ``cgroup_parent``, ``cap_add``, ``security_opt``,
  ``volumes_from``, ``mounts``, ``device_cgroup_rules``, ``lxc_conf``.

A pool that must not allow ``privileged``, ``devices`` or ``volumes`` pins them in its
template (e.g. ``"privileged": {"type": "boolean", "default": false, "const": false}``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, JsonValue, field_validator

from flowyard.blocks import DockerHost, DockerRegistryCredentials

CREATE_KWARGS_ALLOWED = frozenset(
    "blkio_weight blkio_weight_device cap_drop cpu_count cpu_percent cpu_period cpu_quota "
    "cpu_rt_period cpu_rt_runtime cpu_shares cpuset_cpus cpuset_mems device_read_bps "
    "device_read_iops device_write_bps device_write_iops dns dns_opt dns_search domainname "
    "group_add healthcheck hostname init_path isolation kernel_memory links log_config "
    "mac_address mem_reservation mem_swappiness network_disabled oom_kill_disable "
    "oom_score_adj pids_limit platform publish_all_ports read_only runtime shm_size "
    "stdin_open stop_signal storage_opt sysctls tmpfs tty ulimits use_config_proxy "
    "volume_driver".split()
)
"""Options of the docker SDK's ``containers.create`` that ``container_create_kwargs`` may
set: resources, DNS, logging, runtime, limits; nothing Flowyard sets, nothing that has a
job variable, nothing that reaches outside the container."""
ALLOWED_SORTED: list[JsonValue] = [*sorted(CREATE_KWARGS_ALLOWED)]
MAX_CREATE_KWARGS = 32


class DeviceRequest(BaseModel):
    """One ``docker run --gpus``-like request: e.g. ``{"count": -1, "capabilities": [["gpu"]]}``."""

    driver: str = Field(default="", description="e.g. 'nvidia'; empty: any that matches.")
    count: int = Field(default=0, ge=-1, le=64, description="How many devices; -1: all.")
    device_ids: list[str] = Field(default_factory=list, max_length=64)
    capabilities: list[list[str]] = Field(default_factory=list, max_length=8)
    options: dict[str, str] = Field(default_factory=dict, max_length=16)


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
    network_mode: str = Field(
        default="host", description="Docker network mode (not used when 'networks' is set)."
    )
    networks: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Docker networks to connect the container to (the first at creation).",
    )
    init: bool = Field(
        default=True, description="Run an init as PID 1, so that stop signals reach the flow."
    )
    cpus: float | None = Field(default=None, gt=0, description="CPU limit, e.g. 0.5.")
    mem_limit: str | None = Field(default=None, description="Memory limit, e.g. '512m'.")
    memswap_limit: str | None = Field(
        default=None, description="Memory plus swap, e.g. '1g'; '-1': unlimited swap."
    )
    privileged: bool = Field(default=False, description="Give the container extended privileges.")
    devices: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Host devices, 'host_path[:container_path[:permissions]]'.",
    )
    device_requests: list[DeviceRequest] = Field(
        default_factory=list, max_length=8, description="Device requests, e.g. GPUs."
    )
    gpus: Annotated[int, Field(ge=1, le=64)] | Literal["all"] | None = Field(
        default=None, description="GPUs to request, as 'docker run --gpus': a count or 'all'."
    )
    extra_hosts: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra /etc/hosts entries: name → IP."
    )
    container_create_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_CREATE_KWARGS,
        description="More options of the docker SDK's containers.create (an allow-list: "
        "resources, DNS, logging, runtime, limits).",
        json_schema_extra={"propertyNames": {"enum": list(ALLOWED_SORTED)}},
    )
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

    @field_validator("container_create_kwargs")
    @classmethod
    def _allowed(cls, value: dict[str, Any]) -> dict[str, Any]:
        refused = sorted(set(value) - CREATE_KWARGS_ALLOWED)
        if refused:
            raise ValueError(
                f"container_create_kwargs may not set {refused[0]!r}: Flowyard sets it, a job "
                "variable does, or it reaches outside the container (docs/docker-worker.md)"
            )
        return value

    def device_request_options(self) -> list[dict[str, Any]]:
        """``device_requests`` and ``gpus`` as the Docker API takes them."""
        requests = [request.model_dump() for request in self.device_requests]
        if self.gpus is not None:
            count = -1 if self.gpus == "all" else self.gpus
            requests.append(DeviceRequest(count=count, capabilities=[["gpu"]]).model_dump())
        return requests
