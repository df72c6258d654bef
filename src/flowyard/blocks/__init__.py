"""Infra blocks and base job templates: typed configuration rendered into job configurations."""

from flowyard.blocks.templates import (
    base_job_template,
    merge_variables,
    render_job_configuration,
    render_template,
)

__all__ = ["base_job_template", "merge_variables", "render_job_configuration", "render_template"]
