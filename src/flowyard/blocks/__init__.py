"""Infra blocks and base job templates: typed configuration rendered into job configurations."""

from flowyard.blocks.core import MASK, Block, parse_ref
from flowyard.blocks.standard import (
    AwsCredentials,
    DockerHost,
    DockerRegistryCredentials,
    KubernetesClusterConfig,
    LocalFileSystem,
    S3Bucket,
    Secret,
)
from flowyard.blocks.templates import (
    base_job_template,
    merge_variables,
    render_job_configuration,
    render_template,
)

__all__ = [
    "MASK",
    "AwsCredentials",
    "Block",
    "DockerHost",
    "DockerRegistryCredentials",
    "KubernetesClusterConfig",
    "LocalFileSystem",
    "S3Bucket",
    "Secret",
    "base_job_template",
    "merge_variables",
    "parse_ref",
    "render_job_configuration",
    "render_template",
]
