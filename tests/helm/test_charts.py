"""Both charts: helm lint, Kubernetes schema validation of every ci/ values file, docs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helm import values_doc
from tests.helm.conftest import (
    CHARTS,
    KUBERNETES_VERSION,
    Helm,
    kubernetes_validate,
    template_args,
)

CHART_NAMES = ["flowyard-worker", "flowyard-server"]
CASES = [
    (chart.name, values.name)
    for chart in sorted(CHARTS.iterdir())
    for values in sorted((chart / "ci").glob("*.yaml"))
]


def test_every_chart_has_ci_values() -> None:
    """Each chart is exercised by at least two values files under ci/."""
    for chart in CHART_NAMES:
        assert len([c for c in CASES if c[0] == chart]) >= 2, chart


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_lint_strict(helm: Helm, chart: str, values: str) -> None:
    """``helm lint --strict`` passes with the values file."""
    done = helm.run(
        "lint", "--strict", str(CHARTS / chart), "-f", str(CHARTS / chart / "ci" / values)
    )
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_manifests_are_valid_kubernetes(helm: Helm, chart: str, values: str) -> None:
    """Every rendered manifest passes ``kubernetes-validate --strict`` at the pinned version."""
    rendered = helm.run(*template_args(chart, [values], {})).stdout
    done = subprocess.run(
        [*kubernetes_validate(), "--strict", "-k", KUBERNETES_VERSION, "--quiet", "-"],
        input=rendered,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "ERROR" not in report
    # only KEDA's and Prometheus Operator's custom resources may lack a schema; they are
    # checked against ours in test_worker_chart and test_server_chart
    unknown = [line for line in report.splitlines() if "Couldn't find schema" in line]
    assert all("keda.sh" in line or "monitoring.coreos.com" in line for line in unknown), unknown


def test_strict_validation_catches_a_bad_field(helm: Helm) -> None:
    """The validation step is not a no-op: an unknown field of a Deployment fails it."""
    rendered = helm.run(*template_args("flowyard-worker", ["minimal-values.yaml"], {})).stdout
    broken = rendered.replace("revisionHistoryLimit:", "revisionHistoryLimitt:")
    done = subprocess.run(
        [*kubernetes_validate(), "--strict", "-k", KUBERNETES_VERSION, "--quiet", "-"],
        input=broken,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "revisionHistoryLimitt" in done.stdout + done.stderr


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_readme_lists_every_value(chart: str) -> None:
    """The README's values table is the one generated from values.yaml, which documents all."""
    assert values_doc.undocumented(CHARTS / chart) == []
    assert values_doc.readme_table(CHARTS / chart) == values_doc.table(CHARTS / chart), (
        "README.md is stale: run python -m tests.helm.values_doc"
    )


def test_an_undocumented_value_is_found(tmp_path: Path) -> None:
    """A value without a ``# --`` comment is reported, a documented block's children are not."""
    (tmp_path / "values.yaml").write_text(
        "# -- documented\nresources:\n  limits:\n    cpu: 1\nimage:\n"
        "  # -- the tag\n  tag: x\n  pullPolicy: Always\n"
    )
    assert values_doc.undocumented(tmp_path) == ["image.pullPolicy"]
