"""The variables page in Chromium against a real server: an admin creates a variable,
changes its value in place and deletes it (each change the API's, read back through it); a
value the API refuses says why next to its field; a viewer reads values and gets no form."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from flowyard import schemas as s
from tests.ui.conftest import ADMIN, sign_in

REQUIRES_KEYS = True  # the server asks for keys: a viewer's session can be tried


def _name() -> str:
    return f"ui_{uuid.uuid4().hex[:8]}"


def test_an_admin_creates_changes_and_deletes_a_variable(server, api, page, screenshots):
    name = _name()
    sign_in(page, server, ADMIN, "/ui/variables")
    form = page.locator("#variable-form")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Value (JSON").fill('{"rows": [1, 2]}')
    form.get_by_label("Tags").fill("etl")
    with page.expect_navigation():
        form.get_by_role("button", name="Create variable").click()
    made = api.read_variable(name)
    assert made is not None and (made.value, made.tags) == ({"rows": [1, 2]}, ["etl"])
    row = page.locator(f'tr[data-variable="{name}"]')
    expect(row.get_by_label(f"Value of {name}", exact=True)).to_have_value('{"rows": [1, 2]}')
    page.screenshot(path=screenshots / "variables.png", full_page=True)

    row.get_by_label(f"Value of {name}", exact=True).fill("not json")
    row.get_by_role("button", name=f"Save the value of {name}").click()
    expect(row.locator(".field-error")).to_contain_text("Not valid JSON")
    row.get_by_label(f"Value of {name}", exact=True).fill("42")
    with page.expect_navigation():
        row.get_by_role("button", name=f"Save the value of {name}").click()
    assert api.read_variable(name).value == 42

    form.get_by_label("Name").fill(name)
    form.get_by_label("Value (JSON").fill("1")
    form.get_by_role("button", name="Create variable").click()
    expect(form.locator(".field-error")).to_contain_text("already exists")
    form.get_by_label("Name").fill("Not Valid")
    form.get_by_role("button", name="Create variable").click()
    expect(form.locator(".field-error")).to_contain_text("pattern")

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        row.get_by_role("button", name=f"Delete the variable {name}").click()
    assert api.read_variable(name) is None


def test_a_viewer_reads_variables_and_gets_no_form(server, api, browser):
    name = _name()
    api.create_variable(s.VariableCreate(name=name, value="kept"))
    key = api.create_api_key(s.ApiKeyCreate(name=f"v-{name}", role="viewer")).key
    viewer = browser.new_context()
    try:
        page = viewer.new_page()
        sign_in(page, server, key, "/ui/variables")  # type: ignore[arg-type]
        expect(page.locator(f'tr[data-variable="{name}"] .value')).to_have_text('"kept"')
        expect(page.locator("form")).to_have_count(0)
        expect(page.get_by_role("button", name=f"Delete the variable {name}")).to_have_count(0)
    finally:
        viewer.close()
