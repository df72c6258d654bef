"""Loading flows from entrypoints, and every way that can fail."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flowyard.entrypoints import check_entrypoint
from flowyard.errors import EntrypointError
from flowyard.sdk import Flow
from flowyard.sdk.sources import load_flow

FLOW_FILE = """
from flowyard import flow
from helper import GREETING


@flow(name="hello")
def hello() -> str:
    return GREETING


def plain() -> None:
    return None
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "etl.py").write_text(FLOW_FILE)
    (flows / "helper.py").write_text("GREETING = 'hi'\n")
    return tmp_path


class TestLoadFlow:
    def test_loads_a_file_relative_to_the_base_dir(self, project):
        """``path/to/file.py:function`` is found under base_dir; sibling imports work."""
        loaded = load_flow("flows/etl.py:hello", project)
        assert isinstance(loaded, Flow) and loaded.name == "hello"
        assert loaded() == "hi"

    def test_loads_a_module_importable_from_the_base_dir(self, tmp_path):
        """``package.module:function`` is imported with base_dir on the import path."""
        package = f"pkg_{uuid.uuid4().hex}"
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "jobs.py").write_text(
            "from flowyard import flow\n\n@flow\ndef job() -> int:\n    return 7\n"
        )
        assert load_flow(f"{package}.jobs:job", tmp_path)() == 7


class TestLoadFlowErrors:
    @pytest.mark.parametrize("entrypoint", ["flows/etl.py", "flows/etl.py:", ":hello", "a.py:x-y"])
    def test_malformed(self, project, entrypoint):
        """A string that is not ``where:function`` says what shape is expected."""
        with pytest.raises(EntrypointError, match="must look like 'path/to/file.py:function'"):
            load_flow(entrypoint, project)

    def test_missing_file(self, project):
        """A file that does not exist is named in the error."""
        with pytest.raises(EntrypointError, match="entrypoint file 'flows/nope.py' not found"):
            load_flow("flows/nope.py:hello", project)

    def test_missing_function(self, project):
        """A function the file does not define is named in the error."""
        with pytest.raises(EntrypointError, match="'goodbye' not found in 'flows/etl.py'"):
            load_flow("flows/etl.py:goodbye", project)

    def test_not_a_flow(self, project):
        """An undecorated function is refused with a hint."""
        with pytest.raises(EntrypointError, match="is a function, not a flow"):
            load_flow("flows/etl.py:plain", project)

    def test_import_error_is_chained(self, tmp_path):
        """An error while importing the file becomes one line; the original is the cause."""
        (tmp_path / "broken.py").write_text("import no_such_module_xyz\n")
        with pytest.raises(EntrypointError) as info:
            load_flow("broken.py:f", tmp_path)
        assert str(info.value) == (
            "cannot import 'broken.py': ModuleNotFoundError: No module named 'no_such_module_xyz'"
        )
        assert isinstance(info.value.__cause__, ModuleNotFoundError)

    def test_syntax_error(self, tmp_path):
        """A file that does not parse is an entrypoint error too."""
        (tmp_path / "bad.py").write_text("def (:\n")
        with pytest.raises(EntrypointError, match="cannot import 'bad.py': SyntaxError"):
            load_flow("bad.py:f", tmp_path)

    def test_missing_module(self, tmp_path):
        """A module path that cannot be imported is named in the error."""
        with pytest.raises(EntrypointError, match="cannot import 'nopkg_xyz.jobs'"):
            load_flow("nopkg_xyz.jobs:job", tmp_path)


@pytest.fixture
def outside(project: Path) -> Path:
    """A flow file next to the project folder, not inside it."""
    folder = project.parent / f"outside-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "o.py").write_text(FLOW_FILE.replace("from helper import GREETING", "GREETING = 1"))
    return folder


class TestEntrypointsStayInTheirFolder:
    """A file entrypoint is resolved in the deployment's folder and may not leave it."""

    @pytest.mark.parametrize(
        ("entrypoint", "reason"),
        [
            ("../{outside}/o.py:hello", "leads outside .*'..'"),
            ("flows/../../{outside}/o.py:hello", "leads outside .*'..'"),
            ("{absolute}/o.py:hello", "is absolute"),
            ("C:\\flows\\etl.py:hello", "is absolute"),
        ],
    )
    def test_paths_that_leave_are_refused(self, project, outside, entrypoint, reason):
        """``..`` parts and absolute paths are refused even when the file exists."""
        entrypoint = entrypoint.format(outside=outside.name, absolute=outside)
        with pytest.raises(EntrypointError, match=reason):
            load_flow(entrypoint, project)
        with pytest.raises(EntrypointError, match=reason):
            check_entrypoint(entrypoint)

    def test_a_symlink_leading_outside_is_refused(self, project, outside):
        """A link inside the folder to a file outside it is refused at load time."""
        (project / "flows" / "linked.py").symlink_to(outside / "o.py")
        (project / "elsewhere").symlink_to(outside, target_is_directory=True)
        for entrypoint in ("flows/linked.py:hello", "elsewhere/o.py:hello"):
            check_entrypoint(entrypoint)  # nothing to see without the files
            with pytest.raises(EntrypointError, match="leads outside .* through a symlink"):
                load_flow(entrypoint, project)

    def test_a_symlink_staying_inside_is_followed(self, project):
        """A link to a file of the same folder is fine."""
        (project / "etl_link.py").symlink_to(project / "flows" / "etl.py")
        assert load_flow("etl_link.py:hello", project).name == "hello"

    @pytest.mark.parametrize(
        "entrypoint", ["..flows.etl:hello", "my flows.etl:hello", "flows.py:hello:x", "a\x00.py:f"]
    )
    def test_malformed_module_names(self, entrypoint):
        """A module part that is not a dotted name is malformed, before anything is imported."""
        with pytest.raises(EntrypointError, match="must look like"):
            check_entrypoint(entrypoint)
