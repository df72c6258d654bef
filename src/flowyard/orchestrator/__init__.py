"""The orchestrator: HTTP API, state machine, dispatcher and reconciler."""
