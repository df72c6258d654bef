"""``flowyard.input``: typed input for paused and suspended flow runs, and messages
between flow runs (as ``prefect.input``)."""

from flowyard.sdk.run_input import AutomaticRunInput, RunInput, RunInputMetadata
from flowyard.sdk.run_messages import receive_input, send_input

__all__ = ["AutomaticRunInput", "RunInput", "RunInputMetadata", "receive_input", "send_input"]
