"""Message templates: the run context, rendering, and the sandbox user templates run in."""

from __future__ import annotations

import pytest

from flowyard.blocks.notify import DEFAULT_SUBJECT, render, render_message, run_context
from flowyard.errors import InvalidInput
from flowyard.settings import Settings
from tests.blocks.notify.runs import deployment, failed_run

API = Settings(api_url="http://api.example:4200/")


class TestRunContext:
    def test_holds_what_a_message_may_use(self):
        """Name, state, message, deployment, flow, parameters, tags and the link are there."""
        context = run_context(failed_run(), deployment(), API)
        run = context["flow_run"]
        assert (run["name"], run["state"]["name"], run["state"]["type"]) == (
            "brave-otter",
            "Failed",
            "FAILED",
        )
        assert run["state"]["message"] == "ValueError: bad row"
        assert run["parameters"] == {"day": "2026-12-06", "limit": 5}
        assert run["tags"] == ["team-data", "critical"] == context["deployment"]["tags"]
        assert context["flow"] == {"id": "flow-1", "name": "etl"}
        assert context["deployment"]["name"] == "nightly"
        assert context["url"] == run["url"] == "http://api.example:4200/api/flow_runs/run-1"

    def test_a_runs_own_tags_are_its_tags(self):
        """A run with tags of its own (its deployment's and its request's) shows those;
        the deployment's stay the deployment's."""
        run = failed_run().model_copy(update={"tags": ["adhoc", "critical", "team-data"]})
        context = run_context(run, deployment(), API)
        assert context["flow_run"]["tags"] == ["adhoc", "critical", "team-data"]
        assert context["deployment"]["tags"] == ["team-data", "critical"]

    def test_links_to_the_ui_when_it_is_configured(self):
        """With ``FLOWYARD_UI_URL`` the link is the run's page in the UI."""
        settings = Settings(ui_url="https://flowyard.example.com/")
        context = run_context(failed_run(), deployment(), settings)
        assert context["url"] == "https://flowyard.example.com/runs/flow-run/run-1"

    def test_an_ad_hoc_run_has_an_empty_deployment(self):
        """A run without a deployment renders its deployment fields empty, not 'None'."""
        context = run_context(failed_run(deployment_id=None), None, API)
        assert render("[{{ deployment.name }}|{{ flow_run.tags | length }}]", context) == "[|0]"


class TestRender:
    def test_default_message(self):
        """The default subject and body name the run, its state, message, deployment, link."""
        subject, body = render_message(run_context(failed_run(), deployment(), API))
        assert subject == "Flow run brave-otter is Failed"
        assert "Flow run brave-otter of flow etl (deployment nightly) entered Failed" in body
        assert "ValueError: bad row" in body
        assert '"limit": 5' in body and "Tags: team-data, critical" in body
        assert body.endswith("http://api.example:4200/api/flow_runs/run-1")
        assert DEFAULT_SUBJECT.startswith("Flow run")

    def test_missing_names_render_empty(self):
        """A name the context lacks (a pool event has no run) renders empty, or null in JSON."""
        assert render("run={{ flow_run.name }}.", {}) == "run=."
        assert render("{{ flow_run.name | tojson }}", {}) == "null"
        assert render('{{ {"b": 1, "a": x} | tojson }}', {}) == '{"b": 1, "a": null}'

    def test_sandbox_refuses_unsafe_templates(self):
        """A template that calls into Python internals is refused; reading them yields nothing."""
        with pytest.raises(InvalidInput, match="sandbox"):
            render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
        assert render("{{ run.__init__.__globals__ }}", {"run": failed_run()}) == ""

    def test_a_syntax_error_is_invalid_input(self):
        """A malformed template, or one that fails while rendering, says so."""
        with pytest.raises(InvalidInput, match="template error"):
            render("{{ flow_run.name ", {})
        with pytest.raises(InvalidInput, match="ZeroDivisionError"):
            render("{{ 1 / 0 }}", {})
        with pytest.raises(InvalidInput, match="range"):
            render("{{ range(10**9) | list }}", {})
