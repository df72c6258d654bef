// Flowyard web UI: the automation form (automation_form.html); operate.js sends it.
//
// - The trigger and each action have a select of their type ([data-kind-select]); the
//   fieldset of the chosen type (fieldset.kind[data-kind]) is shown and enabled, the others
//   hidden and disabled, so only its fields are sent.
// - Items of a list ([data-list]: actions, or a compound or sequence trigger's child
//   triggers) are added from the <template> its data-item names ("action-item",
//   "trigger-item"), whose "__list__.__i__" names get the list's name and the item's place
//   ("actions.0", "trigger.triggers.1"); after a removal the rest are renumbered, so that a
//   refusal's loc ("actions", 1, …) names the second item shown. A child trigger's own
//   compound or sequence fields hold a list of their own: lists nest.
// - The fields are filled from the automation's JSON document (#automation-document) when
//   the page opens and when "Edit with fields" leaves the JSON boxes. A document the fields
//   cannot show as it is (a label with "=" in it, a pattern with spaces around it…) stays
//   in the JSON boxes, which send it unchanged.

import { LocalError, clearErrors, collect, showError } from "./operate.js";

const form = document.getElementById("automation-form");
const byFields = document.getElementById("by-fields");
const byJson = document.getElementById("by-json");
const modeButton = document.getElementById("edit-mode");
const ITEM = "__list__.__i__";
const PARTS = ["trigger", "actions", "actions_on_trigger", "actions_on_resolve", "dedupe"];

function show(box, on) {
  box.disabled = !on;
  box.hidden = !on;
}

function choose(choice, kind) {
  // show the fields of type `kind` in a trigger or an action; false when there is no such type
  choice.querySelector("[data-kind-select]").value = kind;
  const groups = [...choice.querySelectorAll(":scope > fieldset.kind")];
  for (const group of groups) show(group, group.dataset.kind === kind);
  return groups.find((group) => group.dataset.kind === kind) ?? null;
}

function rename(root, from, to) {
  // "from.x" names become "to.x" (and "-from-" in ids "-to-")
  const [idFrom, idTo] = [`-${from.replaceAll(".", "-")}-`, `-${to.replaceAll(".", "-")}-`];
  for (const element of [root, ...root.querySelectorAll("*")]) {
    for (const attribute of ["name", "data-for", "data-list", "data-at"]) {
      const value = element.getAttribute(attribute);
      if (value === from || value?.startsWith(`${from}.`)) element.setAttribute(attribute, to + value.slice(from.length));
    }
    for (const attribute of ["id", "for"]) {
      const value = element.getAttribute(attribute);
      if (value?.includes(idFrom)) element.setAttribute(attribute, value.replace(idFrom, idTo));
    }
  }
  root.dataset.at = to;
}

function items(list) {
  return list.querySelector(":scope > .items");
}

function renumber(list) {
  [...items(list).children].forEach((item, i) => rename(item, item.dataset.at, `${list.dataset.list}.${i}`));
  const full = items(list).children.length >= Number(list.dataset.max);
  list.querySelector(":scope > p > [data-add-item]").disabled = full;
}

function depth(item) {
  // how deep an item is: 1 in a top-level list, 2 in a list inside an item…
  let found = 0;
  for (let at = item; at; at = at.parentElement?.closest(".item")) found += 1;
  return found;
}

function addItem(list, value = null) {
  // an item in `list`, of the first type (or filled from `value`, whose type is the list's
  // default when it has none); false when the list is full or the fields cannot show `value`
  if (items(list).children.length >= Number(list.dataset.max)) return false;
  const template = document.getElementById(list.dataset.item);
  const item = template.content.firstElementChild.cloneNode(true);
  rename(item, ITEM, `${list.dataset.list}.${items(list).children.length}`);
  items(list).append(item);
  renumber(list);
  const select = item.querySelector("[data-kind-select]");
  if (depth(item) >= Number(template.dataset.deepest ?? Infinity)) {
    // as deep as the API takes: no type that holds a list of its own
    for (const option of select.options) {
      option.disabled = item.querySelector(`:scope > [data-kind="${CSS.escape(option.value)}"] [data-list]`) !== null;
    }
  }
  if (value === null) return choose(item, select.options[0].value) !== null;
  if (value === undefined || typeof value !== "object" || Array.isArray(value)) return false;
  const { type = list.dataset.defaultKind, ...rest } = value;
  const group = choose(item, type);
  return group !== null && fill(group, item.dataset.at, rest);
}

const plain = (text) => typeof text === "string" && text !== "" && text === text.trim() && !text.includes("\n");

function labelLines(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const pairs = Object.entries(value).flatMap(([label, patterns]) =>
    (Array.isArray(patterns) && !patterns.length ? [[label, null]] : [patterns].flat().map((p) => [label, p])),
  );
  const fits = pairs.every(([label, pattern]) => plain(label) && !label.includes("=") && plain(pattern));
  return fits ? pairs.map(([label, pattern]) => `${label} = ${pattern}`).join("\n") : null;
}

function shown(type, value) {
  // what a field of data-type `type` holds for `value` (null: it cannot hold it)
  switch (type) {
    case "json":
      return JSON.stringify(value, null, 2);
    case "enum":
      return JSON.stringify(value);
    case "boolean":
      return typeof value === "boolean" ? String(value) : null;
    case "integer":
    case "number":
      return typeof value === "number" ? String(value) : null;
    case "lines":
      return Array.isArray(value) && value.every(plain) ? value.join("\n") : null;
    case "labels":
      return labelLines(value);
    default:
      return typeof value === "string" ? value : null;
  }
}

function set(field, value) {
  const text = shown(field.dataset.type ?? "text", value);
  if (text === null || (field.tagName === "INPUT" && text.includes("\n"))) return false;
  field.value = text;
  return field.value === text; // a select without that option holds something else
}

function fill(scope, prefix, value) {
  // the fields named `prefix.<key>…` in `scope` from `value`; false if one cannot show it
  return Object.entries(value).every(([key, item]) => {
    const name = `${prefix}.${key}`;
    const field = scope.querySelector(`[name="${CSS.escape(name)}"]`);
    if (field && item === null && field.tagName !== "SELECT") {
      field.value = ""; // left out: its default
      return true;
    }
    if (field) return set(field, item);
    const list = scope.querySelector(`[data-list="${CSS.escape(name)}"]`);
    if (list && Array.isArray(item)) return item.every((each) => addItem(list, each));
    if (item !== null && typeof item === "object" && !Array.isArray(item)) return fill(scope, name, item);
    return item === null;
  });
}

const blank = {
  trigger: byFields.querySelector(":scope > [data-choice]").cloneNode(true),
  dedupe: document.getElementById("dedupe-fields").cloneNode(true),
};

function fillFields(doc) {
  // the fields from `doc` (those it leaves out at their defaults); false if they cannot show it
  const trigger = blank.trigger.cloneNode(true);
  byFields.querySelector(":scope > [data-choice]").replaceWith(trigger);
  const { type = "event", ...rest } = doc.trigger ?? {};
  const group = choose(trigger, type);
  let fits = group !== null && fill(group, "trigger", rest);
  for (const list of byFields.querySelectorAll(":scope > [data-list]")) {
    items(list).replaceChildren();
    fits = (doc[list.dataset.list] ?? []).every((action) => addItem(list, action)) && fits;
    renumber(list);
  }
  const dedupe = blank.dedupe.cloneNode(true);
  document.getElementById("dedupe-fields").replaceWith(dedupe);
  document.getElementById("a-dedupe").checked = Boolean(doc.dedupe);
  show(dedupe, Boolean(doc.dedupe));
  return fits && (!doc.dedupe || fill(dedupe, "dedupe", doc.dedupe));
}

function fillJson(doc) {
  for (const part of PARTS) {
    const box = byJson.querySelector(`[name="${part}"]`);
    box.value = doc[part] === undefined ? "" : JSON.stringify(doc[part], null, 2);
  }
}

function useJson(on) {
  show(byJson, on);
  show(byFields, !on);
  modeButton.textContent = on ? "Edit with fields" : "Edit as JSON";
}

function switchMode() {
  const toJson = byJson.disabled;
  if (toJson) fillJson(collect(byFields));
  else if (!fillFields(collect(byJson))) {
    throw new LocalError(null, "The fields cannot show all of this automation: edit it as JSON.");
  }
  useJson(toJson);
}

document.addEventListener("click", (event) => {
  const target = event.target;
  if (target === modeButton) {
    clearErrors(form);
    try {
      switchMode();
    } catch (error) {
      if (!(error instanceof LocalError)) throw error;
      showError(form, error.field, error.message);
    }
  } else if (target.closest("[data-add-item]")) {
    const list = target.closest("[data-list]");
    addItem(list);
    items(list).lastElementChild?.querySelector("[data-kind-select]").focus();
  } else if (target.closest("[data-remove-item]")) {
    const list = target.closest("[data-list]");
    target.closest(".item").remove();
    renumber(list);
  }
});

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target.matches("[data-kind-select]")) choose(target.closest("[data-choice]"), target.value);
  if (target.matches("[data-enables]")) show(document.getElementById(target.dataset.enables), target.checked);
});

const start = JSON.parse(document.getElementById("automation-document").textContent);
if (!fillFields(start)) {
  fillJson(start);
  useJson(true);
}
