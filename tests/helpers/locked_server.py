"""The admin key of the servers that require API keys in the orchestrator's tests
(``tests/orchestrator/conftest.py`` starts them)."""

ADMIN = "admin-secret-for-run-token-tests-0123456789"
