"""The built-in block types.

``DockerHost`` and ``DockerRegistryCredentials`` are used by the Docker worker; the others
are configuration documents for the worker types and result storage still to come.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr

from flowyard.blocks.core import Block
from flowyard.errors import InvalidInput


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
    """A cluster to run Jobs in: a kubeconfig (and context), or the in-cluster account.

    With neither ``kubeconfig`` nor ``in_cluster``, the Kubernetes worker uses the client's
    default chain (``KUBECONFIG``, ``~/.kube/config``, then the in-cluster account), with
    ``context`` if given. The kubeconfig is a secret: it may hold tokens or client keys.
    """

    block_type_slug: ClassVar[str] = "kubernetes-cluster-config"
    kubeconfig: SecretStr | None = Field(
        default=None, description="kubeconfig file contents (YAML or JSON)"
    )
    context: str | None = Field(default=None, description="Context; default: the current one")
    in_cluster: bool = Field(
        default=False, description="Use the pod's service account (the worker runs in-cluster)"
    )


class AwsCredentials(Block):
    """Keys, region and endpoint for AWS APIs (or an S3/Lambda-compatible endpoint).

    Empty keys mean boto3's default credential chain (environment, shared files, the
    instance's or task's role); the Lambda worker and S3 results build their clients here.
    """

    block_type_slug: ClassVar[str] = "aws-credentials"
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    region_name: str | None = None
    endpoint_url: str | None = Field(
        default=None, description="e.g. a LocalStack or moto endpoint; default: AWS's own"
    )

    def client_options(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client``: only what is set (secrets in clear)."""
        secret = self.aws_secret_access_key
        session = self.aws_session_token
        options = {
            "aws_access_key_id": self.aws_access_key_id,
            "aws_secret_access_key": secret.get_secret_value() if secret else None,
            "aws_session_token": session.get_secret_value() if session else None,
            "region_name": self.region_name,
            "endpoint_url": self.endpoint_url,
        }
        return {name: value for name, value in options.items() if value}

    def get_client(self, service: str, config: Any = None) -> Any:
        """A boto3 client for ``service`` (imported lazily: boto3 is slow to import)."""
        try:
            import boto3
        except ImportError:
            raise InvalidInput("AWS blocks need boto3: pip install 'flowyard[aws]'") from None

        return boto3.client(service, config=config, **self.client_options())


class LocalFileSystem(Block):
    """A folder on the machine that runs the flow, e.g. for results."""

    block_type_slug: ClassVar[str] = "local-file-system"
    basepath: str


class S3Bucket(Block):
    """An S3 bucket (or an S3-compatible store) for results: ``result_storage=S3Bucket(...)``.

    ``credentials`` names an ``aws-credentials`` block (keys, region, endpoint); without
    it, boto3's default chain is used.
    """

    block_type_slug: ClassVar[str] = "s3-bucket"
    bucket_name: str = Field(min_length=3, max_length=63)
    bucket_folder: str = Field(default="", description="key prefix, e.g. results/etl")
    credentials: str | None = Field(default=None, description="an aws-credentials block name")

    def location(self, key: str) -> str:
        return f"s3://{self.bucket_name}/{self._key(key)}"

    def write(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` (one PUT: a reader never sees half of it)."""
        self._client().put_object(Bucket=self.bucket_name, Key=self._key(key), Body=data)
        return self.location(key)

    def read(self, key: str) -> bytes | None:
        client = self._client()
        try:
            answer = client.get_object(Bucket=self.bucket_name, Key=self._key(key))
        except client.exceptions.NoSuchKey:
            return None
        body: bytes = answer["Body"].read()
        return body

    def _key(self, key: str) -> str:
        folder = self.bucket_folder.strip("/")
        return f"{folder}/{key}" if folder else key

    def _client(self) -> Any:
        if self.credentials is None:
            return AwsCredentials().get_client("s3")
        return AwsCredentials.load(self.credentials).get_client("s3")
