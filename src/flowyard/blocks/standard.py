"""The built-in block types.

``DockerHost`` and ``DockerRegistryCredentials`` are used by the Docker worker; the others
are configuration documents for the worker types and result storage still to come.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from flowyard.blocks.core import Block


class Secret(Block):
    """One secret value, e.g. an API token a flow reads with ``Secret.load(name)``."""

    block_type_slug: ClassVar[str] = "secret"
    value: SecretStr

    def get(self) -> str:
        return self.value.get_secret_value()


class DockerHost(Block):
    """Where a Docker engine answers; empty fields mean the worker's environment."""

    block_type_slug: ClassVar[str] = "docker-host"
    base_url: str | None = Field(
        default=None, description="e.g. unix:///var/run/docker.sock or tcp://host:2376"
    )
    version: str | None = Field(default=None, description="API version; default: negotiated")
    timeout: float | None = Field(default=None, description="Seconds per API call")
    tls_verify: bool = False
    tls_ca_cert: str | None = Field(default=None, description="Path to the CA certificate")
    tls_client_cert: str | None = Field(default=None, description="Path to the client cert")
    tls_client_key: str | None = Field(default=None, description="Path to the client key")


class DockerRegistryCredentials(Block):
    """A login to a container registry, used to pull private images."""

    block_type_slug: ClassVar[str] = "docker-registry-credentials"
    registry_url: str = Field(description="e.g. ghcr.io or registry.example.com:5000")
    username: str
    password: SecretStr
    reauth: bool = True


class KubernetesClusterConfig(Block):
    """A cluster to run Jobs in: a kubeconfig (and context), or the in-cluster account."""

    block_type_slug: ClassVar[str] = "kubernetes-cluster-config"
    kubeconfig: SecretStr | None = Field(default=None, description="kubeconfig file contents")
    context: str | None = None
    in_cluster: bool = False


class AwsCredentials(Block):
    """Keys, region and endpoint for AWS APIs (or an S3/Lambda-compatible endpoint)."""

    block_type_slug: ClassVar[str] = "aws-credentials"
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    region_name: str | None = None
    endpoint_url: str | None = None


class LocalFileSystem(Block):
    """A folder on the machine that runs the flow, e.g. for results."""

    block_type_slug: ClassVar[str] = "local-file-system"
    basepath: str
