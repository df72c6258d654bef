"""``{{ block.TYPE/NAME }}`` and ``{{ block.TYPE/NAME.field }}`` in job configurations."""

from __future__ import annotations

import pytest

from flowyard.blocks import references
from flowyard.blocks.templates import render_job_configuration
from flowyard.errors import InvalidInput

DOCS = {
    "docker-host/prod": {"base_url": "unix:///run/docker.sock", "timeout": None},
    "secret/token": {"value": "s3cret"},
}


class TestReferences:
    def test_needed_finds_references_anywhere(self):
        """References in nested dicts, lists and inside longer strings are all found."""
        value = {
            "a": "{{ block.docker-host/prod }}",
            "b": ["x", {"c": "Bearer {{block.secret/token.value}}"}],
            "d": "{{ image }}",
        }
        assert references.needed(value) == {"docker-host/prod", "secret/token"}

    def test_whole_reference_is_the_document_and_field_is_its_value(self):
        """A whole-string reference becomes the document (or field) with its type."""
        resolved = references.resolve(
            {"host": "{{ block.docker-host/prod }}", "t": "{{ block.secret/token.value }}"}, DOCS
        )
        assert resolved == {"host": DOCS["docker-host/prod"], "t": "s3cret"}

    def test_inline_reference_is_formatted_into_the_string(self):
        """A reference inside a longer string is formatted into it."""
        assert references.resolve("Bearer {{ block.secret/token.value }}!", DOCS) == (
            "Bearer s3cret!"
        )

    def test_missing_block_or_field_is_a_clear_error(self):
        """An unknown block or field names itself."""
        with pytest.raises(InvalidInput, match="'secret/other'"):
            references.resolve("{{ block.secret/other }}", DOCS)
        with pytest.raises(InvalidInput, match="no field 'nope'"):
            references.resolve("{{ block.secret/token.nope }}", DOCS)

    def test_variables_render_first_and_may_hold_references(self):
        """A job variable whose value is a reference resolves after the template renders."""
        template = {
            "job_configuration": {"docker_host": "{{ docker_host }}", "image": "{{ image }}"},
            "variables": {
                "properties": {"docker_host": {"default": None}, "image": {"default": "img"}}
            },
        }
        rendered = render_job_configuration(
            template, {"docker_host": "{{ block.docker-host/prod }}"}
        )
        assert references.resolve(rendered, DOCS) == {
            "docker_host": DOCS["docker-host/prod"],
            "image": "img",
        }
