"""Base job templates: defaults, override order, placeholders, unknown variables."""

import pytest
from pydantic import BaseModel

from flowyard.blocks import (
    base_job_template,
    merge_variables,
    render_job_configuration,
    render_template,
)
from flowyard.errors import InvalidInput


class Vars(BaseModel):
    command: str | None = None
    env: dict[str, str] = {}
    image: str = "python:3.11"


def test_default_template_places_every_variable():
    """A worker type's default template maps each variable to its own placeholder."""
    template = base_job_template(Vars)
    assert template["job_configuration"] == {
        "command": "{{ command }}",
        "env": "{{ env }}",
        "image": "{{ image }}",
    }
    assert template["variables"]["properties"]["image"]["default"] == "python:3.11"


def test_override_order_pool_then_deployment_then_run():
    """Run variables beat deployment variables, which beat the schema defaults."""
    template = base_job_template(Vars)
    merged = merge_variables(template, {"image": "dep", "env": {"A": "1"}}, {"image": "run"})
    assert merged == {"command": None, "env": {"A": "1"}, "image": "run"}


def test_unknown_variable_is_an_error():
    """A variable the pool does not declare is refused, naming it."""
    with pytest.raises(InvalidInput, match="unknown job variable 'imgae'"):
        merge_variables(base_job_template(Vars), {"imgae": "x"})


def test_whole_placeholder_keeps_type_and_inline_formats():
    """A lone placeholder keeps the value's type; an inline one is formatted into the string."""
    rendered = render_template(
        {"env": "{{ env }}", "cmd": ["run", "--image={{ image }}"], "n": 3},
        {"env": {"A": "1"}, "image": "x"},
    )
    assert rendered == {"env": {"A": "1"}, "cmd": ["run", "--image=x"], "n": 3}


def test_render_job_configuration():
    """The job configuration is the template rendered with the merged variables."""
    config = render_job_configuration(base_job_template(Vars), {"command": "echo hi"})
    assert config == {"command": "echo hi", "env": {}, "image": "python:3.11"}


def test_mistyped_variable_is_an_error():
    """A value of the wrong type is refused at once, naming the variable and the problem."""
    with pytest.raises(InvalidInput, match=r"job variable 'env'\['A'\]: 1 is not of type 'string'"):
        merge_variables(base_job_template(Vars), {"env": {"A": 1}})


class Resources(BaseModel):
    cpu: float = 1.0


class NestedVars(BaseModel):
    command: str | None = None
    resources: Resources = Resources()


def test_optional_and_nested_variables_are_checked_against_their_schema():
    """null fits an optional variable; a nested model's $ref resolves to the pool's $defs."""
    template = base_job_template(NestedVars)
    merged = merge_variables(template, {"command": None, "resources": {"cpu": 2}})
    assert merged == {"command": None, "resources": {"cpu": 2}}
    with pytest.raises(InvalidInput, match=r"'resources'\['cpu'\]: 'many' is not of type 'number'"):
        merge_variables(template, {"resources": {"cpu": "many"}})


class HostVars(BaseModel):
    docker_host: Resources | None = None


def test_a_block_reference_stands_for_the_document_it_will_become():
    """``{{ block.TYPE/NAME }}`` is accepted where an object is expected; a plain string is not."""
    template = base_job_template(HostVars)
    merged = merge_variables(template, {"docker_host": "{{ block.docker-host/prod }}"})
    assert merged == {"docker_host": "{{ block.docker-host/prod }}"}
    with pytest.raises(InvalidInput, match="job variable 'docker_host'"):
        merge_variables(template, {"docker_host": "prod"})


class RequiredVars(BaseModel):
    function_name: str
    memory: int = 128


def test_a_required_variable_must_have_a_value_when_complete():
    """A deployment may leave a required variable to each run; a run may not."""
    template = base_job_template(RequiredVars)
    assert merge_variables(template, {"memory": 256}) == {"memory": 256}
    with pytest.raises(InvalidInput, match="job variable 'function_name' is required"):
        merge_variables(template, {"memory": 256}, {}, complete=True)
    merged = merge_variables(template, {}, {"function_name": "flows"}, complete=True)
    assert merged == {"function_name": "flows", "memory": 128}


@pytest.mark.parametrize("name", ["process", "docker", "kubernetes", "lambda"])
def test_a_variable_only_a_newer_server_knows_is_ignored_by_the_worker(name):
    """docs/upgrading.md: a newer server's pool template may carry a job variable an older
    worker type does not know; the worker renders what it knows and ignores the rest."""
    from flowyard.workers.registry import load_worker_type

    worker_type = load_worker_type(name)
    template = worker_type.default_base_job_template()
    template["variables"]["properties"]["from_a_newer_server"] = {"type": "integer"}
    template["job_configuration"]["from_a_newer_server"] = "{{ from_a_newer_server }}"
    rendered = render_job_configuration(template, {"from_a_newer_server": 7})
    assert rendered["from_a_newer_server"] == 7
    configuration = worker_type.variables.model_validate(
        {k: v for k, v in rendered.items() if v is not None}
    )
    assert not hasattr(configuration, "from_a_newer_server")
