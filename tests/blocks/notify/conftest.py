"""Loopback stand-ins for the notification services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.blocks.notify.receivers import HttpReceiver


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """An HTTP receiver on loopback that records requests and answers 200 unless told."""
    server = HttpReceiver()
    yield server
    server.close()
