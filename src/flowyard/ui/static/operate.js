// Flowyard web UI: the operating pages' changes, sent to the JSON API with the session's
// CSRF token, so that the API decides (a viewer's change is refused there, whatever the page).
//
// - <form data-api="/api/..." data-method="PATCH|POST"> sends its named fields as JSON: a
//   field's data-type says how to read it (integer, number, boolean, json, enum (its option
//   values are JSON), limit (empty: no limit), lines (a list, one a line), labels
//   ("label = pattern" lines: an object), else text); a dotted name ("parameters.a.b")
//   nests, a number in it makes a list ("actions.0.type", numbered from 0); disabled fields (a fieldset of a
//   type not chosen) are not sent; a secret (data-type="secret") left empty sends its data-keep (the API's mask:
//   "keep the stored value"), or nothing when its [data-clear-secret] box is ticked.
//   data-then="run" (or "block", "automation") opens the created run's (block's,
//   automation's) page, data-then="/ui/…" that page; otherwise the page reloads.
// - <button data-api data-method data-body='{...}' data-then data-confirm> sends that body
//   (after the confirm question, if any).
// - <input type="checkbox" data-api data-field="fair"> sends {fair: checked}.
// A refusal's detail is shown next to the field it names ("parameter 'x'", "job variable",
// or a validation error's loc, less the type tags of a union's member: "trigger.event.within"
// is the field "trigger.within" when the form's "trigger.type" is "event")
// (.field-error[data-for]), else in the form's first .field-error, else in #action-result.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class LocalError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

const INDEX = /^\d+$/;

function put(target, path, value) {
  const keys = path.split(".");
  let at = target;
  keys.slice(0, -1).forEach((key, i) => {
    at = at[key] ??= INDEX.test(keys[i + 1]) ? [] : {};
  });
  at[keys.at(-1)] = value;
}

function readLabels(field, raw) {
  const labels = {};
  for (const [n, line] of raw.split("\n").entries()) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    const [label, pattern] = [line.slice(0, at).trim(), line.slice(at + 1).trim()];
    if (at < 0 || !label || !pattern) throw new LocalError(field.name, `Line ${n + 1}: write label = pattern.`);
    const known = labels[label];
    labels[label] = known === undefined ? pattern : [known, pattern].flat();
  }
  return labels;
}

function read(field) {
  // [present, value]: an empty optional field is left out (the server's default applies)
  const type = field.dataset.type ?? "text";
  const raw = field.value;
  if (type === "boolean") {
    if (field.type === "checkbox") return [true, field.checked];
    return raw === "" ? [false] : [true, raw === "true"];
  }
  if (type === "secret" && raw === "") {
    // a stored secret is never sent to the page: the mask asks the API to keep it, and
    // leaving an optional one out (its "Remove" box ticked) removes it
    const remove = field.form?.querySelector(`[data-clear-secret="${CSS.escape(field.name)}"]`);
    if (remove?.checked) return [false];
    if (field.dataset.keep) return [true, field.dataset.keep];
    if (field.required) throw new LocalError(field.name, "Required.");
    return [false];
  }
  if (raw === "" && type !== "limit") {
    if (field.required) throw new LocalError(field.name, "Required.");
    return [false];
  }
  if (type === "integer" || type === "number") {
    const value = Number(raw);
    if (!Number.isFinite(value) || (type === "integer" && !Number.isInteger(value))) {
      throw new LocalError(field.name, `Not ${type === "integer" ? "a whole number" : "a number"}.`);
    }
    return [true, value];
  }
  if (type === "lines") return [true, raw.split("\n").map((line) => line.trim()).filter(Boolean)];
  if (type === "labels") return [true, readLabels(field, raw)];
  if (type === "json" || type === "enum") {
    try {
      return [true, JSON.parse(raw)];
    } catch {
      throw new LocalError(field.name, "Not valid JSON.");
    }
  }
  return [true, raw];
}

export function collect(form) {
  const body = {};
  for (const field of form.elements) {
    if (!field.name || field.matches(":disabled")) continue;
    if (field.dataset.type === "limit") {
      if (field.value === "") body.clear_concurrency_limit = true;
      else put(body, field.name, Number(field.value));
      continue;
    }
    const [present, value] = read(field);
    if (present) put(body, field.name, value);
  }
  return body;
}

async function send(method, path, body) {
  const answer = await fetch(path, {
    method,
    headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: method === "DELETE" ? undefined : JSON.stringify(body),
  });
  const doc = await answer.json().catch(() => ({}));
  return { answer, doc };
}

export function clearErrors(scope) {
  for (const spot of scope.querySelectorAll(".field-error")) spot.textContent = "";
  for (const field of scope.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
}

function enabled(scope, selector) {
  return [...(scope?.querySelectorAll(selector) ?? [])].find((found) => !found.closest("fieldset:disabled"));
}

function untagged(scope, loc) {
  // a union member's tag in a loc ("trigger", "event", "within") when the form's select of
  // that type ("trigger.type") holds it: the field is "trigger.within"
  const path = [];
  let dropped = false;
  for (const part of loc) {
    const kind = enabled(scope, `[name="${CSS.escape([...path, "type"].join("."))}"]`);
    dropped = !dropped && path.length > 0 && kind?.value === String(part);
    if (!dropped) path.push(part);
  }
  return path.join(".");
}

function fieldOf(scope, detail) {
  // which field a refusal names: a validation error's loc, or its message ("parameter
  // 'x'…" for a run's parameters, "job variable 'y'…")
  const first = Array.isArray(detail) ? detail[0] : { loc: [], msg: detail };
  const loc = (first?.loc ?? []).filter((part) => part !== "body");
  if (loc.length) return untagged(scope, loc);
  const text = typeof first?.msg === "string" ? first.msg : "";
  if (/job variable '/.test(text)) return "job_variables";
  const blockField = text.match(/^block [^:]+: ([^:]+):/);
  if (blockField) return `data.${blockField[1]}`;
  const named = text.match(/parameter '([^']+)'/);
  return named ? `parameters.${named[1]}` : null;
}

function describe(answer, detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d.loc?.length ? `${d.loc.at(-1)}: ${d.msg}` : d.msg)).join("; ");
  }
  return `${answer.status} ${answer.statusText}`;
}

export function showError(scope, field, text) {
  const result = document.getElementById("action-result");
  if (!scope) {
    if (result) result.textContent = text;
    return;
  }
  let spot = null;
  for (let name = field; name && !spot; name = name.includes(".") ? name.replace(/\.[^.]*$/, "") : "") {
    spot = enabled(scope, `.field-error[data-for="${CSS.escape(name)}"]`);
    enabled(scope, `[name="${CSS.escape(name)}"]`)?.setAttribute("aria-invalid", "true");
  }
  spot ??= enabled(scope, ".field-error:not([data-for])") ?? result;
  if (spot) spot.textContent = text;
}

async function change(scope, method, path, body, then) {
  const { answer, doc } = await send(method, path, body);
  if (answer.ok) {
    const at = encodeURIComponent;
    if (then === "run" && doc.id) location.assign(`/ui/runs/${at(doc.id)}`);
    else if (then === "block" && doc.name) location.assign(`/ui/blocks/${at(doc.type)}/${at(doc.name)}`);
    else if (then === "automation" && doc.id) location.assign(`/ui/automations/${at(doc.id)}`);
    else if (then?.startsWith("/ui/")) location.assign(then);
    else location.reload();
    return;
  }
  const prefix = answer.status === 422 ? "" : `Refused (${answer.status}): `;
  showError(scope, fieldOf(scope, doc.detail), prefix + describe(answer, doc.detail));
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  clearErrors(form);
  let body;
  try {
    body = collect(form);
  } catch (error) {
    if (!(error instanceof LocalError)) throw error;
    showError(form, error.field, error.message);
    return;
  }
  const button = form.querySelector("[type=submit]");
  if (button) button.disabled = true;
  await change(form, form.dataset.method ?? "POST", form.dataset.api, body, form.dataset.then);
  if (button) button.disabled = false;
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-api]");
  if (!button) return;
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  button.disabled = true;
  const body = JSON.parse(button.dataset.body ?? "{}");
  const { method = "POST", api, then } = button.dataset;
  await change(null, method, api, body, then);
  button.disabled = false;
});

document.addEventListener("change", async (event) => {
  const box = event.target.closest("input[type=checkbox][data-api][data-field]");
  if (!box) return;
  await change(null, "PATCH", box.dataset.api, { [box.dataset.field]: box.checked });
});
