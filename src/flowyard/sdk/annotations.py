"""Wrappers that change how a task input is treated: ``unmapped``, ``allow_failure``, ``quote``."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """Wraps one value; ``unwrap()`` gives it back."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.value == self.value

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))


class unmapped(BaseAnnotation[T]):  # noqa: N801 - Prefect's name
    """Passed to ``Task.map``: give this value whole to every mapped run."""


class allow_failure(BaseAnnotation[T]):  # noqa: N801 - Prefect's name
    """Run the task even if this upstream failed; the input is then the upstream's exception."""


class quote(BaseAnnotation[T]):  # noqa: N801 - Prefect's name
    """Pass this value as it is: futures and states inside it are not resolved."""


class opaque(BaseAnnotation[T]):  # noqa: N801 - Prefect's name
    """Resolve this future or state to its value, but do not look inside the value."""
