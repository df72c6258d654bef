"""Flows from a source other than this process's files: ``flow.from_source(...)``.

    flow.from_source(
        source="https://github.com/acme/flows.git", entrypoint="etl.py:nightly"
    ).deploy(name="nightly", work_pool_name="k8s")

A git source is cloned (shallow) to load the flow here, so its parameters are known and
checked; its deployment gets a ``git_clone`` pull step, so each run clones the repository
afresh and loads the entrypoint from the clone. A local folder is used as it is. As in
Prefect (``prefect.runner.storage``), ``GitRepository`` names a branch or credentials.
``load_flow`` is how every entrypoint becomes a flow: here, in the engine and in the CLI.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowyard.entrypoints import parse_entrypoint
from flowyard.errors import EntrypointError, InvalidInput
from flowyard.sources.loading import load_object

if TYPE_CHECKING:
    from flowyard import schemas as s
    from flowyard.sdk.flows import Flow


@dataclass(frozen=True)
class GitRepository:
    """A git repository a flow's code is cloned from, for each run.

    ``credentials={"access_token": Secret.load("github-token")}`` (a saved Secret block)
    or ``access_token_secret="github-token"`` for private HTTPS repositories: the
    deployment keeps the block's name, never the token.
    """

    url: str
    branch: str | None = None
    credentials: dict[str, Any] | None = None
    access_token_secret: str | None = None

    def secret_name(self) -> str | None:
        token = (self.credentials or {}).get("access_token")
        if token is None:
            return self.access_token_secret
        name = getattr(token, "saved_name", None)
        if not name:
            raise InvalidInput(
                "a git access token must be a saved Secret block (Secret.load(NAME)) or "
                "access_token_secret=NAME: a token in clear would be stored in the deployment"
            )
        return str(name)


@dataclass(frozen=True)
class FlowSource:
    """Where a deployment of a flow loaded by ``from_source`` finds its code."""

    entrypoint: str
    path: str | None = None  # a local folder; None when the code is cloned
    pull_steps: list[s.PullStep] = field(default_factory=list)


def load_flow(entrypoint: str, base_dir: Path | None = None) -> Flow[..., Any]:
    """The flow ``entrypoint`` names, imported from ``base_dir`` (EntrypointError if the
    object is not a flow, or cannot be loaded)."""
    from flowyard.sdk.flows import Flow

    obj, where, attribute = load_object(entrypoint, base_dir)
    if not isinstance(obj, Flow):
        kind = type(obj).__name__
        raise EntrypointError(f"{attribute!r} in {where!r} is a {kind}, not a flow (use @flow)")
    return obj


def load_from_source(source: str | Path | GitRepository, entrypoint: str) -> Flow[..., Any]:
    """The flow ``entrypoint`` names in ``source`` (a git URL, a ``GitRepository``, or a
    local folder), remembering where it came from for ``deploy``."""
    from flowyard import schemas as s

    parse_entrypoint(entrypoint)  # a malformed one fails before anything is cloned
    repository = _repository(source)
    if repository is None:
        folder = Path(source).resolve()  # type: ignore[arg-type]
        if not folder.is_dir():
            raise InvalidInput(f"flow source {str(source)!r} is neither a folder nor a git URL")
        flow = load_flow(entrypoint, folder)
        flow.source = FlowSource(entrypoint=entrypoint, path=str(folder))
        return flow
    step = s.GitClone(
        repository=repository.url,
        branch=repository.branch,
        access_token_secret=repository.secret_name(),
    )
    flow = load_flow(entrypoint, _clone(step))
    flow.source = FlowSource(entrypoint=entrypoint, pull_steps=[s.PullStep(git_clone=step)])
    return flow


def _repository(source: str | Path | GitRepository) -> GitRepository | None:
    if isinstance(source, GitRepository):
        return source
    text = str(source)
    if "://" in text or text.startswith("git@") or text.endswith(".git"):
        return GitRepository(url=text)
    return None


def _clone(step: s.GitClone) -> Path:
    """A shallow clone in a folder removed when this process exits."""
    from flowyard.sdk.api import required_client
    from flowyard.sources.pull_steps import clone

    client = None
    if step.access_token_secret is not None:  # the token is read from its Secret block
        client = required_client("cloning with a token kept in a Secret block needs")
    folder = Path(tempfile.mkdtemp(prefix="flowyard-source-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return clone(step, folder / "repo", client)
