"""The blocks tests use the end-to-end server (a real API process on loopback)."""

from tests.e2e.conftest import api, server  # noqa: F401 - fixtures
