"""``flowyard.utilities.annotations``: wrappers that change how a task input is treated
(as ``prefect.utilities.annotations``)."""

from flowyard.sdk.annotations import BaseAnnotation, allow_failure, opaque, quote, unmapped

__all__ = ["BaseAnnotation", "allow_failure", "opaque", "quote", "unmapped"]
