"""``flowyard lambda …``: build what a Lambda function that runs flows needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import click

HANDLER = "flowyard.workers.aws_lambda.handler.handler"


@click.group("lambda")
def lambda_() -> None:
    """Package flows for the AWS Lambda worker."""


@lambda_.command("package")
@click.argument(
    "code_dir", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--output",
    "-o",
    default="flowyard-lambda.zip",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The zip file to write.",
)
@click.option(
    "--requirement", "-r", "requirements", multiple=True, help="Extra requirement (repeatable)."
)
@click.option(
    "--code-only", is_flag=True, help="Only the flows' code (Flowyard comes from a layer or image)."
)
@click.option(
    "--flowyard",
    "flowyard_spec",
    help="What pip installs for Flowyard (default: this version), e.g. a wheel's path.",
)
@click.option(
    "--python-version",
    default="3.11",
    show_default=True,
    help="The Lambda runtime's Python, for which wheels are chosen.",
)
@click.option(
    "--platform",
    default="manylinux2014_x86_64",
    show_default=True,
    help="The wheels' platform (manylinux2014_aarch64 for arm64 functions).",
)
def package(
    code_dir: Path,
    output: Path,
    requirements: tuple[str, ...],
    code_only: bool,
    flowyard_spec: str | None,
    python_version: str,
    platform: str,
) -> None:
    """Build the function's deployment zip: the flows in CODE_DIR, Flowyard and its deps."""
    from flowyard.workers.aws_lambda.package import build_package

    try:
        built = build_package(
            code_dir,
            output,
            requirements=list(requirements),
            code_only=code_only,
            flowyard=flowyard_spec,
            python_version=python_version,
            platform=platform,
        )
    except subprocess.CalledProcessError as exc:
        message = f"pip could not install the dependencies (exit {exc.returncode})"
        raise click.ClickException(message) from exc
    size = built.stat().st_size / 1_048_576
    click.echo(f"Wrote {built} ({size:.1f} MiB). Handler: {HANDLER}")
