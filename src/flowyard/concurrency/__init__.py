"""``flowyard.concurrency``: hold slots of named concurrency limits around any code (as
``prefect.concurrency``): ``from flowyard.concurrency.sync import concurrency``.

A name is a concurrency limit made with ``flowyard concurrency-limit create NAME N`` — the
same limits that tagged task runs take slots of, so ``with concurrency("warehouse")`` and
``@task(tags=["warehouse"])`` share one pool of slots.
"""

from flowyard.concurrency.sync import ConcurrencySlotAcquisitionError, concurrency

__all__ = ["ConcurrencySlotAcquisitionError", "concurrency"]
