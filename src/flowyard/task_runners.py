"""``flowyard.task_runners``: where submitted and mapped task runs execute (as
``prefect.task_runners``).

``ThreadPoolTaskRunner(max_workers=N)`` is the default; ``ConcurrentTaskRunner`` is
Prefect 2's name for the same thing.
"""

from flowyard.sdk.context import ThreadPoolTaskRunner

ConcurrentTaskRunner = ThreadPoolTaskRunner

__all__ = ["ConcurrentTaskRunner", "ThreadPoolTaskRunner"]
