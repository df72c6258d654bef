"""Block types are found through the ``flowyard.blocks`` entry-point group, built-ins included.

A third-party package registers ``my-type = my_pkg.blocks:MyBlock``; the server and every
client that saves or loads that type must have the package installed.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

import structlog

from flowyard.blocks.core import Block
from flowyard.errors import InvalidInput

GROUP = "flowyard.blocks"
log = structlog.get_logger()


@cache
def block_types() -> dict[str, type[Block]]:
    """Every installed block type by slug (loaded once per process).

    An entry point that fails to load, or is not a Block, is logged and skipped: one broken
    plugin must not make every block route fail."""
    found: dict[str, type[Block]] = {}
    for ep in entry_points(group=GROUP):
        try:
            block_type = ep.load()
        except Exception as exc:
            log.warning("block_type_not_loaded", entry_point=ep.name, error=repr(exc))
            continue
        if not (isinstance(block_type, type) and issubclass(block_type, Block)):
            log.warning("block_type_not_a_block", entry_point=ep.name, value=ep.value)
            continue
        found[block_type.block_type_slug or ep.name] = block_type
    return dict(sorted(found.items()))


def load_block_type(slug: str) -> type[Block]:
    try:
        return block_types()[slug]
    except KeyError:
        known = ", ".join(block_types()) or "none installed"
        raise InvalidInput(f"unknown block type {slug!r} (known: {known})") from None
