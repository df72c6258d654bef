"""A paused run waiting for input, on its page in Chromium, on a server that requires keys,
with a real worker: an admin gets a form made from the pause's input schema and resumes the
run with it (the API's refusal of a bad value is shown next to the form, and the run stays
Paused); a viewer sees the pause and the description the flow gave its input, no form."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.states import StateType
from tests.e2e.conftest import create_process_pool, deploy_flow
from tests.ui.conftest import ADMIN, AXE_RULES, sign_in
from tests.waiting import wait_until

REQUIRES_KEYS = True
FLOWS = textwrap.dedent(
    """
    from pydantic import BaseModel, Field

    from flowyard import flow, get_run_logger, pause_flow_run
    from flowyard.input import RunInput


    class Shipment(BaseModel):
        destination: str
        crates: int = Field(ge=1, description="how many crates to load")
        express: bool = False


    class Approval(RunInput):
        approved: bool
        note: str = ""


    @flow(name="shipping")
    def shipping() -> str:
        shipment = pause_flow_run(wait_for_input=Shipment, timeout=600, poll_interval=0.2)
        get_run_logger().info(
            "shipping %s crates to %s (express: %s)",
            shipment.crates, shipment.destination, shipment.express,
        )
        return shipment.destination


    @flow(name="approving")
    def approving() -> bool:
        wanted = Approval.with_initial_data(description="Ship **all** of it?", note="fine")
        answer = pause_flow_run(wait_for_input=wanted, timeout=600, poll_interval=0.2)
        get_run_logger().info("approved: %s, note: %s", answer.approved, answer.note)
        return answer.approved
    """
)


@pytest.fixture(scope="module")
def input_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("input-flows")
    (folder / "flows.py").write_text(FLOWS)
    return folder


def _paused_run(api, start_worker, folder: Path, function: str) -> str:
    pool = create_process_pool(api, f"input-{uuid.uuid4().hex[:8]}")
    dep = deploy_flow(api, pool, folder, function, name=f"{function}-{pool}")
    run_id = api.run_deployment(dep.id, s.DeploymentRunRequest()).id
    start_worker(pool)
    wait_until(
        lambda: api.read_flow_run(run_id).state.type is StateType.PAUSED,
        timeout=90,
        message="the run to pause for input",
    )
    return run_id


def _logged(api, run_id: str, text: str) -> bool:
    return any(text in log.message for log in api.read_logs(run_id))


def test_a_run_waiting_for_a_models_input_is_resumed_through_its_form(
    server, api, input_flows, axe_page, screenshots, start_worker
):
    """The form follows the model (required fields marked, descriptions, defaults) and
    passes axe's WCAG rules; a value the schema refuses shows the API's reason by the
    form and leaves the run Paused; a good one resumes it and the flow gets it typed."""
    page = axe_page
    run_id = _paused_run(api, start_worker, input_flows, "shipping")
    sign_in(page, server, ADMIN, f"/ui/runs/{run_id}")
    expect(page.locator("#run-state")).to_have_text("Paused")
    form = page.locator("#run-input-form")
    expect(page.locator("#resume-run")).to_have_count(0)  # the form resumes it instead
    expect(form.locator("label[for=f-run_input-destination]")).to_contain_text("(required)")
    expect(form).to_contain_text("how many crates to load")
    expect(page.get_by_label("express")).to_have_value("false")
    violations = page.axe.run(page, options=AXE_RULES).response["violations"]
    assert not violations, [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in violations]

    page.get_by_label("destination").fill("Rotterdam")
    page.get_by_label("crates").fill("0")
    page.get_by_role("button", name="Resume with this input").click()
    expect(form.locator(".field-error:not([data-for])")).to_contain_text(
        "0 is less than the minimum of 1"
    )
    page.screenshot(path=screenshots / "run-input-refused.png", full_page=True)
    assert api.read_flow_run(run_id).state.type is StateType.PAUSED

    page.get_by_label("crates").fill("3")
    page.get_by_label("express").select_option("true")
    with page.expect_navigation():
        page.get_by_role("button", name="Resume with this input").click()
    expect(page.locator("#run-state")).to_have_text("Completed", timeout=60_000)
    expect(page.locator("#run-input-form")).to_have_count(0)
    wait_until(
        lambda: _logged(api, run_id, "shipping 3 crates to Rotterdam (express: True)"),
        timeout=30,
        message="the flow to log the input it was given",
    )
    assert api.read_flow_run(run_id).state.type is StateType.COMPLETED


def test_a_viewer_sees_the_pause_and_its_description_but_no_form(
    server, api, input_flows, page, start_worker
):
    """A viewer's page shows the pause, the description the flow gave its input (markdown)
    and the schema, and nothing that changes anything; the description's default reaches
    the flow when the run is resumed."""
    run_id = _paused_run(api, start_worker, input_flows, "approving")
    viewer = api.create_api_key(s.ApiKeyCreate(name=f"v-{run_id[:8]}", role="viewer")).key
    sign_in(page, server, viewer, f"/ui/runs/{run_id}")
    expect(page.locator("#run-state")).to_have_text("Paused")
    expect(page.locator("#input-description strong")).to_have_text("all")
    expect(page.locator("#input-description")).to_contain_text("Ship all of it?")
    expect(page.locator("#input-schema")).to_contain_text('"approved"')
    expect(page.locator("#run-input-form")).to_have_count(0)
    expect(page.locator("[data-api]")).to_have_count(0)

    api.resume_flow_run(run_id, run_input={"approved": True})  # the admin's client
    wait_until(
        lambda: _logged(api, run_id, "approved: True, note: fine"),
        timeout=60,
        message="the default the flow gave its input to reach it",
    )
