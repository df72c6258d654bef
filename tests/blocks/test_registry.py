"""The block-type registry survives broken plugins."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint

import pytest

from flowyard.blocks import registry
from flowyard.blocks.standard import Secret


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EntryPoint]]:
    """Entry points the registry sees instead of the installed ones."""
    found: list[EntryPoint] = []
    monkeypatch.setattr(registry, "entry_points", lambda group: found)
    registry.block_types.cache_clear()
    yield found
    registry.block_types.cache_clear()


def test_a_plugin_that_fails_to_load_is_skipped(plugins: list[EntryPoint]) -> None:
    """A missing module or a non-Block leaves the other block types usable."""
    plugins.append(EntryPoint("secret", "flowyard.blocks.standard:Secret", registry.GROUP))
    plugins.append(EntryPoint("gone", "flowyard.blocks.no_such_module:Gone", registry.GROUP))
    plugins.append(EntryPoint("odd", "flowyard.blocks.registry:GROUP", registry.GROUP))
    assert registry.block_types() == {"secret": Secret}
