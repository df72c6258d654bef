"""Flowyard's own files are its user's alone: folders 0700, files 0600.

The home folder holds the SQLite database, the key that encrypts block secrets, the
managed Redis's folder, logs and results; on a shared machine none of it is for other
local users. What we create gets these modes whatever the umask; what exists with looser
ones (a home made by an older version) is tightened, since its contents are ours. The
server also runs with :data:`OWNER_ONLY_UMASK`, for the files its libraries create.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger()

OWNER_ONLY_UMASK = 0o077


def private_directory(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700, or take group/other bits off it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    _owner_only(path)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as 0600 if missing, or take group/other bits off it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    _owner_only(path)
    return path


def _owner_only(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 == 0:
        return
    try:
        os.chmod(path, mode & ~0o077)
    except PermissionError:  # not ours: say so rather than fail the start
        log.warning("not_private", path=str(path), mode=oct(mode))
