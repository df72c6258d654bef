"""Pull steps with real git: clone a branch, move into a folder, clear failures."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.engine.git_http import GitHttpServer

from flowyard import schemas as s
from flowyard.errors import EntrypointError
from flowyard.sources.pull_steps import credential_env, pulled_code, split_credentials


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


class _SecretBlocks:
    """The one client call a clone with a token makes: read the Secret block."""

    def __init__(self, token: str) -> None:
        self.token = token

    def read_block(self, kind: str, name: str, include_secrets: bool = False) -> object:
        assert (kind, name, include_secrets) == ("secret", "git-token", True)
        return SimpleNamespace(data={"value": self.token})


def _served(tmp_path: Path) -> Path:
    """A bare copy of the test repository, as ``flows.git`` under the returned root."""
    root = tmp_path / "served"
    root.mkdir()
    bare = ["git", "clone", "-q", "--bare", str(_repo(tmp_path)), str(root / "flows.git")]
    subprocess.run(bare, check=True)
    return root


def _token_step(url: str) -> list[s.PullStep]:
    clone = s.GitClone(repository=f"{url}/flows.git", access_token_secret="git-token")
    return [s.PullStep(git_clone=clone)]


def _url_step(url: str, user: str, password: str) -> list[s.PullStep]:
    """The credential written into the repository's URL, as some users do."""
    with_credential = url.replace("http://", f"http://{user}:{password}@")
    return [s.PullStep(git_clone=s.GitClone(repository=f"{with_credential}/flows.git"))]


class TestCloneWithToken:
    """A private repository over HTTP, with a token from a Secret block or in its URL."""

    @pytest.mark.parametrize("given_in", ["secret block", "url"])
    def test_the_token_is_on_no_command_line_config_or_store(self, tmp_path, monkeypatch, given_in):
        """The clone authenticates, yet no process's argv held the token while it ran, and
        neither the clone's .git/config nor the user's credential store keeps it."""
        token = f"tok-{uuid.uuid4().hex}"
        user = "x-access-token" if given_in == "secret block" else "deploy-bot"
        store = tmp_path / "stored-credentials"
        user_config = tmp_path / "gitconfig"
        user_config.write_text(f"[credential]\n\thelper = store --file {store}\n")
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(user_config))
        with GitHttpServer(_served(tmp_path), user, token) as server:
            if given_in == "secret block":
                steps, client = _token_step(server.url), _SecretBlocks(token)
            else:
                steps, client = _url_step(server.url, user, token), None
            with pulled_code(steps, None, client=client) as directory:  # type: ignore[arg-type]
                assert directory is not None
                assert (directory / "flows" / "etl.py").read_text() == "VALUE = 1\n"
                assert token not in (directory / ".git" / "config").read_text()
        assert server.refused >= 1 and server.authorized >= 1  # the credential was required
        assert any("clone" in line and "/flows.git" in line for line in server.seen)
        assert [line for line in server.seen if token in line] == []
        assert not store.exists()

    def test_without_the_right_token_the_clone_fails_without_showing_it(self, tmp_path):
        """A wrong token is refused by the server; the error names the step, not the token."""
        with GitHttpServer(_served(tmp_path), "x-access-token", "the-right-one") as server:
            steps = _token_step(server.url)
            with (
                pytest.raises(EntrypointError, match="pull step git_clone of http") as caught,
                pulled_code(steps, None, client=_SecretBlocks("wrong-token")),  # type: ignore[arg-type]
            ):
                pass
        assert "wrong-token" not in str(caught.value)
        assert server.authorized == 0 and server.refused >= 1

    def test_a_wrong_password_in_the_url_is_not_shown_either(self, tmp_path):
        """The failure names the repository without the password written into its URL."""
        with GitHttpServer(_served(tmp_path), "bot", "the-right-one") as server:
            steps = _url_step(server.url, "bot", "wrong%40one")
            with (
                pytest.raises(EntrypointError, match=f"git_clone of {server.url}/flows.git:"),
                pulled_code(steps, None, client=None),
            ):
                pass
        assert [line for line in server.seen if "wrong" in line] == []


def test_credentials_are_given_to_http_repositories_only():
    """Only http(s) URLs get the credential environment, scoped to their scheme and host."""
    env = credential_env("https://git.example.com:8443/t/f.git", "s3cr3t")
    assert env["FLOWYARD_GIT_TOKEN"] == "s3cr3t"
    last = int(env["GIT_CONFIG_COUNT"]) - 1
    assert env[f"GIT_CONFIG_KEY_{last}"] == "credential.https://git.example.com:8443.helper"
    assert all("s3cr3t" not in v for k, v in env.items() if k != "FLOWYARD_GIT_TOKEN")
    assert credential_env("/srv/git/flows", "s3cr3t") == {}
    assert credential_env("https://git.example.com/f.git", None) == {}


def test_a_password_in_a_url_is_taken_out_of_it():
    """``https://user:p%40ss@host/x.git`` → the URL without them, the user and ``p@ss``."""
    assert split_credentials("https://bot:p%40ss@git.example.com:8443/x.git") == (
        "https://git.example.com:8443/x.git",
        "bot",
        "p@ss",
    )
    assert split_credentials("https://bot@git.example.com/x.git") == (
        "https://bot@git.example.com/x.git",
        "bot",
        None,
    )
    assert split_credentials("/srv/git/flows") == ("/srv/git/flows", None, None)


def test_a_pull_step_is_exactly_one_kind():
    """A step with two kinds (or none) is refused when the deployment is written."""
    with pytest.raises(ValueError, match="exactly one of"):
        s.PullStep(
            git_clone=s.GitClone(repository="x"),
            set_working_directory=s.SetWorkingDirectory(directory="y"),
        )
    with pytest.raises(ValueError, match="exactly one of"):
        s.PullStep()
