"""The automation form's groups of fields, generated from the API's models (no browser)."""

from __future__ import annotations

from flowyard.store import models as m
from flowyard.ui import automation_choices as choices
from flowyard.ui import automation_form as form
from flowyard.ui import views
from flowyard.ui.param_form import FormField


def _all(fields: list[FormField]) -> list[FormField]:
    return [found for field in fields for found in (field, *_all(field.children))]


def test_every_type_has_a_group_with_each_field_of_its_model():
    """Each trigger and action type has a group whose fields are its model's (less ``type``,
    which the group's select says), named where the API takes them."""
    for groups, models, prefix in (
        (form.trigger_groups(), form.TRIGGERS, "trigger"),
        (form.action_groups(), form.ACTIONS, form.ITEM),
    ):
        assert [group.kind for group in groups] == [form.type_of(model) for model in models]
        for group, model in zip(groups, models, strict=True):
            names = [name for name in model.model_fields if name != "type"]
            assert [field.path for field in group.fields] == [f"{prefix}.{n}" for n in names]


def test_the_fields_read_as_the_api_takes_them():
    """Event names are lines, resource labels ``label = pattern`` lines, templates text
    areas, a metric a group of its own fields, and ``require`` a choice of "all", "any" or
    a count."""
    event, metric, compound, _ = form.trigger_groups()
    kinds = {field.path: field.kind for field in _all(event.fields + metric.fields)}
    assert kinds["trigger.expect"] == kinds["trigger.after"] == "lines"
    assert kinds["trigger.match"] == "labels" and kinds["trigger.match_related"] == "json"
    assert kinds["trigger.metric"] == "object" and kinds["trigger.metric.name"] == "enum"
    (require,) = [field for field in compound.fields if field.path == "trigger.require"]
    assert require.value == '"all"' and [c for c, _ in require.choices][:3] == [
        '"all"',
        '"any"',
        "1",
    ]
    (notification,) = [g for g in form.action_groups() if g.kind == "send-notification"]
    notify = {field.path: field for field in notification.fields}
    assert notify[f"{form.ITEM}.body"].kind == "text"
    assert notify[f"{form.ITEM}.block"].kind == "string" and notify[f"{form.ITEM}.block"].required


def test_every_field_of_the_page_has_its_own_id():
    """Fields of the same name in different types' groups (``within``, ``deployment``…) get
    different ids, so that each label names one field."""
    groups = form.trigger_groups() + form.action_groups()
    fields = _all([f for group in groups for f in group.fields] + form.dedupe_fields())
    idents = [field.ident for field in fields]
    assert len(idents) == len(set(idents))
    assert "f-compound-trigger-within" in idents and "f-event-trigger-within" in idents


def test_reference_fields_suggest_from_the_list_of_their_kind():
    """Deployment, pool, queue and automation fields suggest from their lists; a webhook
    call's block from the webhook blocks, a notification's from every notification block."""
    fields = {
        (group.kind, field.path.rsplit(".", 1)[-1]): field.suggest
        for group in form.action_groups()
        for field in group.fields
    }
    assert fields["run-deployment", "deployment"] == "choices-deployments"
    assert fields["resume-work-pool", "work_pool"] == "choices-pools"
    assert fields["pause-work-queue", "work_queue"] == "choices-queues"
    assert fields["pause-automation", "automation"] == "choices-automations"
    assert fields["call-webhook", "block"] == "choices-webhooks"
    assert fields["send-notification", "block"] == "choices-notifications"
    assert fields["run-deployment", "parameters"] == ""


def test_a_compound_triggers_children_are_a_list_of_trigger_items():
    """A compound or sequence trigger's ``triggers`` is a list of child triggers (not a JSON
    box), at the top and inside a child trigger alike."""
    for groups in (form.trigger_groups(), form.trigger_item_groups()):
        kinds = {g.kind: {f.path.rsplit(".", 1)[-1]: f.kind for f in g.fields} for g in groups}
        assert kinds["compound"]["triggers"] == kinds["sequence"]["triggers"] == "triggers"
    assert [f.path for f in form.trigger_item_groups()[0].fields][0].startswith(form.ITEM)


def test_each_list_is_the_first_ones_by_name_and_says_when_more_exist(database):
    """Each list holds the first ``limit`` by name (``POOL/QUEUE`` for queues, ``TYPE/NAME``
    for blocks, of the kinds each list is for) and says whether more exist."""
    with database.session() as session:
        for name in ("pool-c", "pool-a", "pool-b"):
            pool = m.WorkPool(name=name, type="process")
            session.add(pool)
            session.flush()
            session.add(m.WorkQueue(pool_id=pool.id, name="default"))
        for kind, name in (("slack-webhook", "ops"), ("webhook", "hook"), ("secret", "s")):
            session.add(m.Block(type=kind, name=name, data={}))
    with database.read() as session:
        found = {c.ident: c for c in choices.read_choices(session, limit=2)}
    assert found["choices-pools"].values == ["pool-a", "pool-b"]
    assert found["choices-pools"].more is True
    assert found["choices-queues"].values == ["pool-a/default", "pool-b/default"]
    assert found["choices-notifications"].values == ["slack-webhook/ops", "webhook/hook"]
    assert found["choices-notifications"].more is False
    assert found["choices-webhooks"].values == ["webhook/hook"]
    assert found["choices-deployments"].values == [] and not found["choices-deployments"].more


def test_the_form_says_when_a_list_holds_only_the_first_ones():
    """A list cut at the limit is named in the form's note; each list is a datalist."""
    cut = choices.Choices("choices-pools", "work pools", ["a", "b"], more=True)
    whole = choices.Choices("choices-queues", "work queues", ["a/default"], more=False)
    context = form.form_context(None, [cut, whole])
    html = views.templates.get_template("automation_form.html").render(
        **context, can_change=True, caller=None, signed_in=False, csrf="", nav="automations"
    )
    assert f"(the first {choices.LIMIT} work pools by name)" in html
    assert '<datalist id="choices-queues"><option value="a/default"></option></datalist>' in html
