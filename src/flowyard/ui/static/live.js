// Flowyard web UI: live updates and the few actions a page sends to the API.
//
// A page names its stream on one element ([data-stream]) with the event position it was
// rendered at (data-after). Messages carry server-rendered HTML: "row" (a flow run's row in
// the list; empty html: it left the filter), "swap" (parts of a page by element id, keeping
// what a person is typing there: see replaceKeeping),
// "logs" (new log lines), "reload" (a message too big to send) and "signed-out". The stream
// is closed while the tab is hidden and reopened from the last position when it shows again.
// "event": an event for the events page's list (newest first).

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const host = document.querySelector("[data-stream]");
const status = document.getElementById("live-status");
const MAX_LOG_LINES = 5000; // older lines leave the page (the log pages keep them all)
const MAX_EVENTS = 1000; // older events leave the live list (the pages keep them all)
let source = null;
let lastId = host?.dataset.after ?? "";

function say(text) {
  if (status) status.textContent = text;
}

function remember(event) {
  if (event.lastEventId) lastId = event.lastEventId;
}

function fromHtml(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

function rowKey(tr) {
  return `${tr.dataset.sort} ${tr.dataset.runId}`; // the time the list is sorted by, and id
}

function showRow({ id, html }) {
  const table = document.getElementById("runs");
  if (!table) return;
  const body = table.tBodies[0];
  const shown = body.querySelector(`tr[data-run-id="${CSS.escape(id)}"]`);
  if (!html) {
    shown?.remove();
    return;
  }
  const fresh = fromHtml(html);
  fresh.classList.add("fresh");
  if (shown) {
    shown.replaceWith(fresh);
    return;
  }
  // latest first, a new run (or one just started or ended) belongs to the first page;
  // earliest first, to the last
  const earliestFirst = table.dataset.latestFirst !== "true";
  if (!earliestFirst && table.dataset.firstPage !== "true") return;
  const key = rowKey(fresh);
  const before = [...body.rows].find((tr) => (earliestFirst ? rowKey(tr) > key : rowKey(tr) < key));
  if (before) body.insertBefore(fresh, before);
  else if (table.dataset.hasNext !== "true") body.appendChild(fresh);
  else return; // past this page's last row: it is on a later page
  document.getElementById("no-runs")?.remove();
}

// A swap keeps what a person is doing in the part it replaces: the fields they changed (a
// value other than the one the page gave) keep their values in the new HTML, and the focused
// control its focus and caret, found again by id, else by tag, name, label and the form's
// API (the n-th of those). A part whose HTML is what was last put there is left alone
// (remembered per element: a part inside another swapped part is a new element).
const swapped = new WeakMap(); // element -> the HTML last swapped into it
const CONTROLS = "input, select, textarea, button";

function controls(part) {
  const seen = new Map();
  return new Map(
    [...part.querySelectorAll(CONTROLS)].map((control) => {
      const api = control.dataset.api ?? control.closest("[data-api]")?.dataset.api ?? "";
      const label = control.getAttribute("aria-label") ?? "";
      const base = control.id ? `#${control.id}` : [control.tagName, control.name, label, api].join("|");
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      return [`${base}|${n}`, control];
    }),
  );
}

function edited(control) {
  if (control.type === "checkbox" || control.type === "radio") return control.checked !== control.defaultChecked;
  if (control.tagName === "SELECT") return [...control.options].some((o) => o.selected !== o.defaultSelected);
  return control.tagName !== "BUTTON" && control.value !== control.defaultValue;
}

function caret(control) {
  try {
    return [control.selectionStart, control.selectionEnd];
  } catch {
    return [null, null]; // a control without a caret
  }
}

function replaceKeeping(target, html) {
  const focused = document.activeElement;
  const before = [...controls(target)].filter(([, c]) => edited(c) || c === focused);
  const [start, end] = focused ? caret(focused) : [null, null];
  target.innerHTML = html;
  const after = before.length ? controls(target) : new Map();
  for (const [key, old] of before) {
    const fresh = after.get(key);
    if (!fresh || fresh.tagName !== old.tagName || fresh.type !== old.type) continue;
    if (edited(old)) {
      if (old.type === "checkbox" || old.type === "radio") fresh.checked = old.checked;
      else fresh.value = old.value;
    }
    if (old !== focused) continue;
    fresh.focus({ preventScroll: true });
    if (start != null) fresh.setSelectionRange?.(start, end); // null or undefined: no caret
  }
}

function swap(parts) {
  for (const [id, html] of Object.entries(parts)) {
    const target = document.getElementById(id);
    if (!target || swapped.get(target) === html) continue;
    swapped.set(target, html);
    replaceKeeping(target, html);
  }
}

function appendLogs({ html }) {
  const list = document.getElementById("logs");
  if (!list || host.dataset.tail !== "true") return;
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.insertAdjacentHTML("beforeend", html);
  while (list.children.length > MAX_LOG_LINES) list.firstElementChild.remove();
  document.getElementById("no-logs")?.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function showEvent({ html }) {
  const list = document.getElementById("events");
  if (!list || list.dataset.firstPage !== "true") return; // new events belong to the first page
  const fresh = fromHtml(html);
  if (list.querySelector(`li[data-event-id="${CSS.escape(fresh.dataset.eventId)}"]`)) return;
  const before = [...list.children].find((li) => li.dataset.sort <= fresh.dataset.sort);
  if (!before && list.dataset.hasNext === "true") return; // older than this page's last
  fresh.classList.add("fresh");
  list.insertBefore(fresh, before ?? null);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  document.getElementById("no-events")?.remove();
}

function on(name, handle) {
  source.addEventListener(name, (event) => {
    remember(event);
    handle(JSON.parse(event.data));
  });
}

function open() {
  if (!host || source) return;
  const url = new URL(host.dataset.stream, location.href);
  if (lastId) url.searchParams.set("last_event_id", lastId);
  source = new EventSource(url);
  on("row", showRow);
  on("swap", swap);
  on("logs", appendLogs);
  on("event", showEvent);
  source.addEventListener("reload", () => location.reload());
  source.addEventListener("signed-out", () => location.reload());
  source.onopen = () => say("Live: changes appear as they happen.");
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED) {
      say("Reconnecting…");
      return;
    }
    close();
    stopped();
  };
}

function close() {
  source?.close();
  source = null;
}

async function stopped() {
  // refused (signed out, or too many streams): a signed-out page goes to the sign-in form
  const answer = await fetch(location.href, { redirect: "manual" }).catch(() => null);
  if (answer?.type === "opaqueredirect") {
    location.reload();
    return;
  }
  say("Live updates stopped; trying again shortly.");
  setTimeout(() => document.visibilityState === "visible" && open(), 10_000);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") {
    close();
    say("Paused while the tab is hidden.");
  } else {
    open();
  }
});

async function post(path) {
  return fetch(path, { method: "POST", headers: { "X-CSRF-Token": csrf } });
}

async function patch(path, body) {
  const headers = { "X-CSRF-Token": csrf, "Content-Type": "application/json" };
  return fetch(path, { method: "PATCH", headers, body: JSON.stringify(body) });
}

async function refused(answer, button) {
  const body = await answer.json().catch(() => ({}));
  const result = document.getElementById("action-result");
  result.textContent = `Refused (${answer.status}): ${body.detail ?? answer.statusText}`;
  button.disabled = false;
}

document.addEventListener("click", async (event) => {
  const cancel = event.target.closest("[data-cancel]");
  if (cancel) {
    cancel.disabled = true;
    const answer = await post(`/api/flow_runs/${encodeURIComponent(cancel.dataset.cancel)}/cancel`);
    const result = document.getElementById("action-result");
    if (answer.ok) {
      result.textContent = "Cancellation requested.";
    } else {
      const body = await answer.json().catch(() => ({}));
      result.textContent = `Refused (${answer.status}): ${body.detail ?? answer.statusText}`;
      cancel.disabled = false;
    }
  }
  const toggle = event.target.closest("[data-automation]");
  if (toggle) {
    // Pause or Resume an automation: the API decides whether this caller may
    toggle.disabled = true;
    const path = `/api/automations/${encodeURIComponent(toggle.dataset.automation)}`;
    const answer = await patch(path, { enabled: toggle.dataset.enabled === "true" });
    if (answer.ok) {
      const done = toggle.dataset.enabled === "true" ? "Resumed." : "Paused.";
      document.getElementById("action-result").textContent = done; // the stream swaps the button
    } else {
      await refused(answer, toggle);
    }
  }
  if (event.target.id === "sign-out") {
    await post("/ui/sign-out");
    location.assign("/ui/sign-in");
  }
});

open();
