"""``flowyard.yaml``: reading and checking the file, pure (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowyard.cli.project_file import STARTER, load_project, select
from flowyard.errors import InvalidInput

GOOD = """
pull:
  - git_clone: {repository: https://git.example.com/flows.git, branch: main}
deployments:
  - name: nightly
    entrypoint: flows.py:etl
    work_pool: {name: local}
    schedules:
      - cron: "0 3 * * *"
        timezone: Europe/Berlin
      - interval: 3600
    catch_up: latest
  - name: adhoc
    entrypoint: flows.py:etl
    work_pool: {name: local, work_queue_name: urgent, job_variables: {env: {A: "1"}}}
    pull: []
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flowyard.yaml"
    path.write_text(text)
    return path


def test_a_good_file_gives_its_deployments_schedules_and_pull_steps(tmp_path):
    """Every field is read; a deployment's own ``pull`` replaces the project's."""
    project = load_project(_write(tmp_path, GOOD))
    nightly, adhoc = project.deployments
    cron, hourly = (schedule.to_create() for schedule in nightly.schedules)
    assert (cron.kind, cron.expression, cron.timezone) == ("cron", "0 3 * * *", "Europe/Berlin")
    assert (hourly.kind, hourly.expression) == ("interval", "3600")
    assert nightly.catch_up == "latest" and nightly.pull is None
    assert project.pull[0].git_clone is not None and project.pull[0].git_clone.branch == "main"
    assert adhoc.pull == [] and adhoc.work_pool.job_variables == {"env": {"A": "1"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace(
                "      - interval: 3600", "      - interval: 3600\n        cron: '* * * * *'"
            ),
            r"deployment 'nightly': schedules\[1\]: .*exactly one of cron, interval, rrule",
        ),
        (GOOD.replace("catch_up: latest", "catch_up: sometimes"), "deployment 'nightly': catch_up"),
        (GOOD.replace("    work_pool: {name: local}\n", ""), "deployment 'nightly': work_pool"),
        (GOOD.replace("    pull: []", "    pulls: []"), "deployment 'adhoc': pulls: Extra inputs"),
        (GOOD.replace("branch: main", "branch: main, depth: 3"), r"pull\[0\].git_clone.depth"),
        ("deployments: [", "not valid YAML"),
    ],
)
def test_errors_name_the_file_the_deployment_and_the_field(tmp_path, text, message):
    """A mistake is reported with the file, the deployment by name and the field."""
    path = _write(tmp_path, text)
    with pytest.raises(InvalidInput, match=message) as caught:
        load_project(path)
    assert str(caught.value).startswith(str(path))


def test_selecting_by_name_or_all(tmp_path):
    """``--name`` picks deployments, ``--all`` takes every one; an unknown name is an error."""
    project = load_project(_write(tmp_path, GOOD))
    assert [d.name for d in select(project, ("adhoc",), False)] == ["adhoc"]
    assert [d.name for d in select(project, (), True)] == ["nightly", "adhoc"]
    with pytest.raises(InvalidInput, match="no deployment 'weekly'.*nightly, adhoc"):
        select(project, ("weekly",), False)
    with pytest.raises(InvalidInput, match="--all or --name"):
        select(project, (), False)


def test_the_starter_file_is_valid(tmp_path):
    """What ``flowyard init`` writes is a valid project file as it stands."""
    path = _write(tmp_path, STARTER.format(entrypoint="flows.py:main", pool="local"))
    (entry,) = load_project(path).deployments
    assert (entry.entrypoint, entry.work_pool.name) == ("flows.py:main", "local")
    assert entry.schedules[0].cron == "0 3 * * *"
