"""What a wheel promises: the licence pyproject names, and the ``py.typed`` marker."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import flowyard

ROOT = Path(__file__).resolve().parent.parent


def test_the_license_file_is_the_apache_2_0_text_pyproject_names():
    """pyproject says Apache-2.0; LICENSE holds that licence's text, appendix included."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX" in text


def test_py_typed_ships_in_the_package():
    """The marker pyproject lists as package data exists, so type checkers read our hints."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in package_data["package-data"]["flowyard"]
    assert resources.files(flowyard).joinpath("py.typed").is_file()


def test_the_docs_speak_to_users_and_list_every_block_type():
    """No page speaks of "our machines" or points outside the repository, and blocks.md
    lists every block type the package registers."""
    pages = {page.name: page.read_text() for page in (ROOT / "docs").glob("*.md")}
    assert [name for name, text in pages.items() if "our machines" in text] == []
    assert [name for name, text in pages.items() if "../shared/" in text] == []
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    notify = {"slack-webhook", "ms-teams-webhook", "discord-webhook", "pagerduty"}
    notify |= {"opsgenie", "email-smtp", "webhook"}  # their own page: notifications.md
    for slug in set(project["entry-points"]["flowyard.blocks"]) - notify:
        assert f"| `{slug}` |" in pages["blocks.md"], slug
