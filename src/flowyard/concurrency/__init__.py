"""``flowyard.concurrency``: hold slots of named concurrency limits around any code (as
``prefect.concurrency``): ``from flowyard.concurrency.sync import concurrency``.

A name is a concurrency limit made with ``flowyard concurrency-limit create NAME N`` — the
same limits that tagged task runs take slots of, so ``with concurrency("warehouse")`` and
``@task(tags=["warehouse"])`` share one pool of slots. ``rate_limit(name)`` uses a limit
with a slot decay (``--slot-decay-per-second``) to pace calls instead.
"""

from flowyard.concurrency.sync import concurrency, rate_limit
from flowyard.errors import ConcurrencySlotAcquisitionError

__all__ = ["ConcurrencySlotAcquisitionError", "concurrency", "rate_limit"]
