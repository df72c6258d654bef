"""``flowyard.input``: typed input for paused and suspended flow runs (as ``prefect.input``)."""

from flowyard.sdk.run_input import AutomaticRunInput, RunInput

__all__ = ["AutomaticRunInput", "RunInput"]
