"""Patterns of triggers, as Prefect reads them: ``*`` at the end matches any rest, ``!`` at
the start negates; a resource specification maps labels to the patterns their values
must match (one of several)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def matches(pattern: str, value: str | None) -> bool:
    """Does ``value`` match ``pattern`` (a missing value never does)?"""
    if value is None:
        return False
    positive = not pattern.startswith("!")
    if not positive:
        pattern = pattern[1:]
    found = value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern
    return found == positive


def any_matches(patterns: Iterable[str], value: str | None) -> bool:
    return any(matches(pattern, value) for pattern in patterns)


def spec_matches(spec: Mapping[str, str | list[str]], labels: Mapping[str, str]) -> bool:
    """Do ``labels`` (one resource's) satisfy every label of ``spec``?"""
    for label, expected in spec.items():
        patterns = [expected] if isinstance(expected, str) else expected
        if not any_matches(patterns, labels.get(label)):
            return False
    return True


def spec_includes(
    spec: Mapping[str, str | list[str]], resources: Iterable[Mapping[str, str]]
) -> bool:
    """Does one of ``resources`` satisfy ``spec`` (an empty spec includes anything)?"""
    return not spec or any(spec_matches(spec, labels) for labels in resources)
