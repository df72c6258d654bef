"""Secret fields at rest: one Fernet token per block holding its secret fields as JSON.

The key comes from ``FLOWYARD_SECRET_KEY`` (a Fernet key), else from ``<home>/secret.key``,
generated on first use with mode 0600. Several API replicas must share one key: set it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from flowyard.errors import FlowyardError, InvalidInput
from flowyard.private_files import private_directory

KEY_FILE = "secret.key"


def load_key(secret_key: str | None, home: Path) -> bytes:
    """The configured key, else the one in ``home`` (created once, readable by its owner only)."""
    if secret_key:
        key = secret_key.encode()
        _check(key, "FLOWYARD_SECRET_KEY")
        return key
    path = private_directory(home) / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        _check(key, str(path))
        return key
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def seal(fernet: Fernet, secrets: dict[str, Any]) -> str | None:
    """Encrypt the secret fields; None when there are none."""
    if not secrets:
        return None
    return fernet.encrypt(json.dumps(secrets).encode()).decode()


def unseal(fernet: Fernet, token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        data: dict[str, Any] = json.loads(fernet.decrypt(token.encode()))
    except InvalidToken as exc:
        raise FlowyardError(
            "a block's secrets cannot be decrypted: the secret key changed since they were saved"
        ) from exc
    return data


def _check(key: bytes, where: str) -> None:
    try:
        Fernet(key)
    except ValueError as exc:
        raise InvalidInput(f"{where} is not a Fernet key (32 url-safe base64 bytes)") from exc
