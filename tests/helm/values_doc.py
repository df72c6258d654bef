"""The values table of a chart's README, generated from the ``# --`` comments of values.yaml.

A value is documented by a ``# -- text`` comment right above its key (continued on further
``#`` lines); everything under a documented key is part of that value (``resources``, for
one). ``python -m tests.helm.values_doc`` rewrites the table between the README's markers;
the tests check that it is current and that every value is documented.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHARTS = Path(__file__).resolve().parents[2] / "helm"
START, END = "<!-- values:start -->", "<!-- values:end -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")
_DOC = re.compile(r"^(?P<indent> *)# -- ?(?P<text>.*)$")
_MORE = re.compile(r"^(?P<indent> *)# ?(?P<text>.*)$")


@dataclass(frozen=True)
class Value:
    """One documented value: its dotted key, its description and its default."""

    key: str
    description: str
    default: Any


def documented(values_file: Path) -> dict[str, str]:
    """Dotted keys with a ``# --`` comment, mapped to their descriptions, in file order."""
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in values_file.read_text().splitlines():
        if doc := _DOC.match(line):
            pending = [doc["text"].strip()]
            continue
        if pending is not None and (more := _MORE.match(line)):
            pending.append(more["text"].strip())
            continue
        key = _KEY.match(line)
        if not key:
            pending = None if not line.strip() else pending
            continue
        indent = len(key["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), key["key"]])
        inside_documented = any(path.startswith(d + ".") for d in docs)
        if pending is not None and not inside_documented:
            docs[path] = " ".join(pending)
        pending = None
        stack.append((indent, key["key"]))
    return docs


def leaves(tree: Any, prefix: str = "") -> list[str]:
    """Dotted keys of every leaf of a values tree (empty maps and lists are leaves)."""
    if isinstance(tree, dict) and tree:
        return [p for k, v in tree.items() for p in leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def lookup(tree: Any, key: str) -> Any:
    for part in key.split("."):
        tree = tree[part]
    return tree


def chart_values(chart: Path) -> list[Value]:
    tree = yaml.safe_load((chart / "values.yaml").read_text())
    return [Value(k, d, lookup(tree, k)) for k, d in documented(chart / "values.yaml").items()]


def undocumented(chart: Path) -> list[str]:
    """Leaves of values.yaml that no ``# --`` comment covers."""
    docs = documented(chart / "values.yaml")
    tree = yaml.safe_load((chart / "values.yaml").read_text())
    return [
        leaf
        for leaf in leaves(tree)
        if not any(leaf == d or leaf.startswith(d + ".") for d in docs)
    ]


def _type(value: Any) -> str:
    if value is None:
        return "int or null"
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}[
        type(value)
    ]


def table(chart: Path) -> str:
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for value in chart_values(chart):
        default = json.dumps(value.default, separators=(",", ":")).replace("|", "\\|")
        description = value.description.replace("|", "\\|")
        rows.append(f"| `{value.key}` | {_type(value.default)} | `{default}` | {description} |")
    return "\n".join(rows)


def readme_table(chart: Path) -> str:
    text = (chart / "README.md").read_text()
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write_readme_table(chart: Path) -> None:
    readme = chart / "README.md"
    head, rest = readme.read_text().split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{START}\n{table(chart)}\n{END}{tail}")


if __name__ == "__main__":
    for chart_dir in sorted(CHARTS.iterdir()):
        if (chart_dir / "values.yaml").exists():
            write_readme_table(chart_dir)
            missing = undocumented(chart_dir)
            print(f"{chart_dir.name}: table written; undocumented: {missing or 'none'}")
    sys.exit(0)
