"""``--param`` on ``deploy`` and ``deployment run``, typed as a user types it."""

from __future__ import annotations

import json
import subprocess
import textwrap

from tests.helpers.cli import flowyard

FLOW = textwrap.dedent(
    """
    from flowyard import flow


    @flow(name="greet")
    def greet(label: str, n: int = 1) -> str:
        return label * n
    """
)


def test_text_parameters_keep_what_was_typed(server, pool, tmp_path):
    """``label=123`` deploys the text "123", ``n=2`` the number 2; a run's ``label=true`` is
    the text "true"; a mistyped number is refused in JSON's spelling; a lone surrogate in a
    JSON value is one line, and nothing is created."""
    (tmp_path / "greet.py").write_text(FLOW)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return flowyard(server.url, *args, cwd=tmp_path)

    deployed = cli(
        "deploy", "greet.py:greet", "--name", "p", "--pool", pool,
        "--param", "label=123", "--param", "n=2", "--json",
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["parameters"] == {"label": "123", "n": 2}
    run = cli("deployment", "run", "greet/p", "--param", "label=true", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["parameters"]["label"] == "true"
    refused = cli("deployment", "run", "greet/p", "--param", "n=true")
    assert refused.returncode == 1
    assert "parameter 'n': true is not of type 'integer'" in refused.stderr
    helped = cli("deployment", "run", "--help")
    assert "text (str) parameter takes VALUE as typed" in " ".join(helped.stdout.split())
    lone = cli(
        "deploy",
        "greet.py:greet",
        "--name",
        "q",
        "--pool",
        pool,
        "--job-variable",
        'env={"A": "\\ud800"}',
    )
    assert lone.returncode == 1 and "Traceback" not in lone.stderr, lone.stderr
    assert "not valid Unicode (surrogates not allowed: '\\ud800'); nothing was sent" in lone.stderr
    listed = cli("deployment", "ls", "--json")
    names = {(d["flow_name"], d["name"]) for d in json.loads(listed.stdout)}
    assert ("greet", "p") in names and ("greet", "q") not in names  # q was never created
