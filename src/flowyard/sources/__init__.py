"""Where a flow's code comes from: a deployment's pull steps (a git clone) and loading the
object an entrypoint names. Below both the SDK (``flow.from_source``) and the engine (a
deployed run), which each check that what was loaded is a flow."""
