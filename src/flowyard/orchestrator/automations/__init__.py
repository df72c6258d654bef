"""Automations on the server: triggers watch the events, firings run actions as RQ jobs.

- ``triggers``: does an event concern a trigger, and the windows (buckets) of event
  triggers, reactive and proactive, and of compound and sequence triggers;
- ``evaluator``: the led service that reads the stored events in order and evaluates them,
  exactly once, with its position committed in the same transaction as what it decided;
- ``metric_triggers``: triggers on what the server measures, evaluated on a period;
- ``firings``: recording a firing (deduplicated), its actions and its event;
- ``actions`` and ``action_queue``: what each action does, run as an RQ job with retries;
- ``templates``: the Jinja context that actions' templates render with.
"""
