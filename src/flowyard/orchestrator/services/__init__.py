"""Background services of the API process: the dispatcher and the reconciler."""
