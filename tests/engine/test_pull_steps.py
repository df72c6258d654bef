"""Pull steps with real git: clone a branch, move into a folder, clear failures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.engine.pull_steps import _with_token, pulled_code
from flowyard.errors import EntrypointError


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    (repo / "flows" / "etl.py").write_text("VALUE = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    return repo


def test_clone_then_working_directory_and_cleanup(tmp_path):
    """The code is cloned fresh, the run moves into a folder of it, and the clone is removed."""
    repo = _repo(tmp_path)
    steps = [
        s.PullStep(git_clone=s.GitClone(repository=str(repo), branch="main")),
        s.PullStep(set_working_directory=s.SetWorkingDirectory(directory="flows")),
    ]
    with pulled_code(steps, tmp_path, client=None) as directory:  # type: ignore[arg-type]
        assert directory is not None and directory.name == "flows"
        assert (directory / "etl.py").read_text() == "VALUE = 1\n"
        assert repo not in directory.parents
    assert not directory.exists()


def test_a_missing_branch_fails_naming_the_step(tmp_path):
    """A branch that does not exist is an ``EntrypointError`` naming the step and repository."""
    repo = _repo(tmp_path)
    steps = [s.PullStep(git_clone=s.GitClone(repository=str(repo), branch="nope"))]
    with (
        pytest.raises(EntrypointError, match=f"pull step git_clone of {repo}: .*nope"),
        pulled_code(steps, None, client=None),  # type: ignore[arg-type]
    ):
        pass


def test_tokens_go_into_https_urls_only():
    """A token is put in an https URL's user part; other URLs are left alone."""
    assert _with_token("https://git.example.com:8443/t/f.git", "s3cr3t") == (
        "https://x-access-token:s3cr3t@git.example.com:8443/t/f.git"
    )
    assert _with_token("/srv/git/flows", "s3cr3t") == "/srv/git/flows"
    assert _with_token("https://git.example.com/f.git", None) == "https://git.example.com/f.git"


def test_a_pull_step_is_exactly_one_kind():
    """A step with two kinds (or none) is refused when the deployment is written."""
    with pytest.raises(ValueError, match="exactly one of"):
        s.PullStep(
            git_clone=s.GitClone(repository="x"),
            set_working_directory=s.SetWorkingDirectory(directory="y"),
        )
    with pytest.raises(ValueError, match="exactly one of"):
        s.PullStep()
