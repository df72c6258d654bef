"""Getting a deployment's code before its entrypoint is loaded: the pull steps.

Steps run in order, each from the directory the previous one left (the deployment's
``path`` at first):

- ``git_clone``: a shallow clone of the repository (at ``branch``, a branch or tag) into a
  fresh folder that is removed when the run ends. A token from a Secret block (private
  HTTP(S) repositories), or a password written into the repository's URL, reaches git
  only through the environment of the clone, by a credential helper scoped to the
  repository's host: never on a command line (``ps`` shows those to every local user),
  in the clone's ``.git/config``, in a credential store, or in logs and messages;
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
from urllib.parse import unquote, urlsplit, urlunsplit

from flowyard.errors import EntrypointError
from flowyard.schemas import GitClone, PullStep

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

GIT_TIMEOUT_SECONDS = 600
TOKEN_USER = "x-access-token"  # what GitHub and GitLab expect beside a token
# Run by git's shell; it reads the credential from the environment, so no argv holds it.
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; printf "username=%s\\npassword=%s\\n" '
    '"$FLOWYARD_GIT_USERNAME" "$FLOWYARD_GIT_TOKEN"; }; f'
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
    repository, user, password = split_credentials(step.repository)
    token = _token(step, client) or password
    command = ["git", "clone", "--quiet", "--depth", "1"]
    if step.branch:
        command += ["--branch", step.branch]
    command += ["--", repository, str(into)]
    credentials = credential_env(repository, token, user or TOKEN_USER)
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **credentials}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS, env=env
        )
    except FileNotFoundError as exc:
        raise EntrypointError("pull step git_clone: git is not installed here") from exc
    except subprocess.TimeoutExpired as exc:
        raise EntrypointError(f"pull step git_clone: {repository} timed out") from exc
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        for secret in filter(None, (token, password)):
            reason = reason.replace(secret, "***")
        raise EntrypointError(f"pull step git_clone of {repository}: {reason}")
    return into


def split_credentials(repository: str) -> tuple[str, str | None, str | None]:
    """(URL, user, password): a password written into an http(s) URL is taken out of it."""
    parts = urlsplit(repository)
    user = unquote(parts.username) if parts.username else None
    if parts.scheme not in ("http", "https") or parts.password is None:
        return repository, user, None
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host)), user, unquote(parts.password)


def credential_env(repository: str, token: str | None, user: str = TOKEN_USER) -> dict[str, str]:
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
    env = {
        "GIT_CONFIG_COUNT": str(first + len(entries)),
        "FLOWYARD_GIT_USERNAME": user,
        "FLOWYARD_GIT_TOKEN": token,
    }
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
