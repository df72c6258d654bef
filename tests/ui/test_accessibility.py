"""Basic accessibility of every page, checked by axe-core (the copy bundled in the
``axe-playwright-python`` wheel, pinned in the dev extra) in Chromium, over real data:
WCAG 2 A and AA rules, labels and contrast among them; and keyboard use of the runs list.

axe is injected into the page, which the pages' Content-Security-Policy (self only, no
inline script) would refuse: the browser context bypasses CSP for that, and only here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from tests.e2e.conftest import create_process_pool, deploy_flow
from tests.ui.conftest import AXE_RULES as RULES

SCRIPT = """
from flows import chatty
from flowyard.artifacts import create_markdown_artifact

create_markdown_artifact("# Report\\n\\nAll **well**.", key="a11y-report")
chatty(3)
"""


@pytest.fixture(scope="module")
def seeded(server: ServerProcess, ui_flows: Path) -> dict[str, str]:
    """A finished run with task runs, logs and an artifact; a pool with a deployment; a
    block; a tag limit: something on every page."""
    with server.client() as api:
        pool = create_process_pool(api, f"a11y-{uuid.uuid4().hex[:6]}")
        deployment = deploy_flow(api, pool, ui_flows, "chatty", name="a11y")
        api.run_deployment(deployment.id, s.DeploymentRunRequest())
        api.save_block("secret", "a11y-secret", {"value": "hidden"})
        api.set_concurrency_limit("a11y", 2)
        api.create_variable(s.VariableCreate(name="a11y_var", value={"rows": 3}))
        env = {**os.environ, "FLOWYARD_API_URL": server.url}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=ui_flows, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        (run,) = [r for r in _finished(api) if r.flow_name == "chatty"][:1]
    return {"pool": pool, "deployment": deployment.id, "run": run.id}


def _finished(api: FlowyardClient) -> list[s.FlowRun]:
    return api.list_flow_runs(state="COMPLETED")


def _paths(seeded: dict[str, str]) -> list[str]:
    return [
        "/ui/",
        "/ui/runs",
        f"/ui/runs/{seeded['run']}",
        "/ui/deployments",
        f"/ui/deployments/{seeded['deployment']}",
        "/ui/pools",
        f"/ui/pools/{seeded['pool']}",
        "/ui/concurrency-limits",
        "/ui/variables",
        "/ui/blocks",
        "/ui/blocks/secret/a11y-secret",
        "/ui/blocks/new?type=secret",
        "/ui/artifacts",
        "/ui/artifacts/a11y-report",
        "/ui/automations",
        "/ui/automations/new",
        "/ui/events",
    ]


def test_every_page_passes_axe_cores_wcag_a_and_aa_rules(server, seeded, axe_page):
    """No WCAG 2.0/2.1 A or AA violation on any page, each rendered with real data (and
    the same check does find them on a page that has some)."""
    axe_page.set_content('<html><body><input type="text"><p style="color:#bbb">dim</p></body>')
    broken = {v["id"] for v in axe_page.axe.run(axe_page, options=RULES).response["violations"]}
    assert {"label", "color-contrast"} <= broken, broken
    found: dict[str, list[str]] = {}
    for path in _paths(seeded):
        answer = axe_page.goto(server.url + path)
        assert answer is not None and answer.status == 200, path
        results = axe_page.axe.run(axe_page, options=RULES)
        violations = results.response["violations"]
        if violations:
            found[path] = [
                f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
                for v in violations
            ]
    assert not found, found


def test_the_runs_filter_and_pages_work_from_the_keyboard(server, seeded, axe_page):
    """Tab reaches the filter's fields and its button in order, Enter submits, and the
    focused element is visibly outlined."""
    page = axe_page
    page.goto(f"{server.url}/ui/runs")
    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        name = page.evaluate(
            "() => document.activeElement.name || document.activeElement.textContent.trim()"
        )
        reached.append(name)
        if name == "Filter":
            break
    assert reached.index("state") < reached.index("flow") < reached.index("Filter"), reached
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), outline
    page.keyboard.press("Enter")  # on the Filter button
    page.wait_for_url("**/ui/runs?*")
    assert "state=" in page.url
