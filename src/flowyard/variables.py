"""``flowyard.variables``: named JSON values flows read (as ``prefect.variables``; see
``sdk/variables.py``)."""

from flowyard.sdk.variables import Variable

__all__ = ["Variable"]
