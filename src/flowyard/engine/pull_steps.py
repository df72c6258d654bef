"""Getting a deployment's code before its entrypoint is loaded: the pull steps.

Steps run in order, each from the directory the previous one left (the deployment's
``path`` at first):

- ``git_clone``: a shallow clone of the repository (at ``branch``, a branch or tag) into a
  fresh folder that is removed when the run ends. A token from a Secret block (private
  HTTP(S) repositories) reaches git only through the environment of the clone, by a
  credential helper scoped to the repository's host: never on a command line (``ps``
  shows those to every local user), in the clone's ``.git/config``, in a credential
  store, or in logs and messages;
- ``set_working_directory``: move to this directory (relative to the current one).

A failing step raises ``EntrypointError`` naming it, so the run ends Failed with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flowyard.errors import EntrypointError
from flowyard.schemas import GitClone, PullStep

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

GIT_TIMEOUT_SECONDS = 600
TOKEN_VARIABLE = "FLOWYARD_GIT_TOKEN"
# Run by git's shell; it reads the token from the environment, so no argv holds it.
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; '
    'printf "username=x-access-token\\npassword=%s\\n" "$FLOWYARD_GIT_TOKEN"; }; f'
)


@contextlib.contextmanager
def pulled_code(
    steps: list[PullStep], start: Path | None, client: FlowyardClient | None
) -> Iterator[Path | None]:
    """The directory the flow runs from once every step ran; clones are removed after."""
    directory = start
    with contextlib.ExitStack() as cleanup:
        for step in steps:
            if step.git_clone is not None:
                folder = Path(tempfile.mkdtemp(prefix="flowyard-code-"))
                cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
                directory = clone(step.git_clone, folder / "repo", client)
            elif step.set_working_directory is not None:
                directory = (directory or Path.cwd()) / step.set_working_directory.directory
        yield directory


def clone(step: GitClone, into: Path, client: FlowyardClient | None) -> Path:
    token = _token(step, client)
    command = ["git", "clone", "--quiet", "--depth", "1"]
    if step.branch:
        command += ["--branch", step.branch]
    command += ["--", step.repository, str(into)]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **credential_env(step.repository, token)}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS, env=env
        )
    except FileNotFoundError as exc:
        raise EntrypointError("pull step git_clone: git is not installed here") from exc
    except subprocess.TimeoutExpired as exc:
        raise EntrypointError(f"pull step git_clone: {step.repository} timed out") from exc
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        if token:
            reason = reason.replace(token, "***")
        raise EntrypointError(f"pull step git_clone of {step.repository}: {reason}")
    return into


def credential_env(repository: str, token: str | None) -> dict[str, str]:
    """Environment that makes git answer ``repository``'s host with ``token``, and only it.

    Configuration from the environment (``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``, git
    2.31+) comes after the user's own: an empty ``credential.helper`` drops their helpers,
    so none of them stores the token, then ours is added for this scheme and host only.
    """
    parts = urlsplit(repository)
    if token is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return {}
    origin = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    entries = [("credential.helper", ""), (f"credential.{origin}.helper", CREDENTIAL_HELPER)]
    first = int(os.environ.get("GIT_CONFIG_COUNT") or 0)
    env = {"GIT_CONFIG_COUNT": str(first + len(entries)), TOKEN_VARIABLE: token}
    for index, (key, value) in enumerate(entries, start=first):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _token(step: GitClone, client: FlowyardClient | None) -> str | None:
    if step.access_token_secret is None:
        return None
    if client is None:
        raise EntrypointError(
            f"pull step git_clone: Secret block {step.access_token_secret!r} needs an API"
        )
    block = client.read_block("secret", step.access_token_secret, include_secrets=True)
    return str(block.data["value"])
