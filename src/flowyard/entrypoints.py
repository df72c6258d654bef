"""The shape of a flow's entrypoint, checked without touching any file.

An entrypoint is ``path/to/file.py:function`` or ``package.module:function``. The path
is relative to the deployment's working directory (its ``path``, or the directory its
pull steps lead to) and must stay inside it: absolute paths, drive letters and ``..``
parts are refused here, when a deployment is written (CLI and API); the engine checks
again when it loads the file, then also refusing symlinks that lead outside.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from flowyard.errors import EntrypointError

SHAPE = "'path/to/file.py:function' or 'package.module:function'"
_DRIVE = re.compile(r"^[A-Za-z]:")


def parse_entrypoint(entrypoint: str) -> tuple[str, str]:
    """Split ``where:attribute``; raises ``EntrypointError`` when malformed."""
    where, sep, attribute = entrypoint.strip().rpartition(":")
    well_formed = (
        sep
        and where
        and where.isprintable()
        and _dotted(attribute)
        and (is_script(where) or _dotted(where))
    )
    if not well_formed:
        raise EntrypointError(f"entrypoint {entrypoint!r} must look like {SHAPE}")
    return where, attribute


def is_script(where: str) -> bool:
    """Whether ``where`` names a file (``flows/etl.py``) rather than a module."""
    return where.endswith(".py") or "/" in where or "\\" in where


def relative_script(where: str) -> PurePosixPath:
    """The file ``where`` names, as a path that cannot leave the folder it is joined to."""
    path = PurePosixPath(where.replace("\\", "/"))
    if path.is_absolute() or _DRIVE.match(where):
        raise EntrypointError(
            f"entrypoint file {where!r} is absolute; give it relative to the deployment's "
            "working directory"
        )
    if ".." in path.parts:
        raise EntrypointError(
            f"entrypoint file {where!r} leads outside the deployment's working directory "
            "('..'); deploy from a folder that contains it"
        )
    return path


def check_entrypoint(entrypoint: str) -> None:
    """Refuse a malformed entrypoint, or one whose file path leaves its working directory."""
    where, _ = parse_entrypoint(entrypoint)
    if is_script(where):
        relative_script(where)


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))
