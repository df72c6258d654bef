"""An object that counts, in each process, how often it is pickled and unpickled; in an
importable module, so that an engine's worker processes (Ray's too, which do not see
``tests/sdk`` on their path) unpickle it by reference."""

from __future__ import annotations


class Counted:
    """Counts, in each process, how often it is pickled and unpickled."""

    pickled = 0
    unpickled = 0

    def __init__(self, made_by_pickle: bool = False) -> None:
        if made_by_pickle:
            Counted.unpickled += 1

    def __reduce__(self) -> tuple[type, tuple[bool]]:
        Counted.pickled += 1
        return (Counted, (True,))
