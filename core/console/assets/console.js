// The hookd console: plain DOM, no framework, no build. Lists come from the JSON API; the live
// parts arrive as server-sent events on /api/stream. Data is only ever put in the page as text.

import { showEvent, showRun } from "./detail.js";
import { barChart } from "./charts.js";
import { showWebhooks } from "./webhooks.js";

const MAX_EVENTS = 200;
const state = {
  plugins: [],
  events: [],
  runs: [],
  dead: [],
  catalog: null,
  schedules: [],
  scheduled: [],
  view: "plugins",
  runsEvent: "",
  catalogEvent: "",
  stats: null,
};

// ---- small helpers ----------------------------------------------------------------------------

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

/** Calls the API with the console's cookie; the header marks a console request (see core/console/auth.ts). */
async function api(path, init = {}) {
  const headers = { "x-hookd-console": "1", ...(init.body !== undefined ? { "content-type": "application/json" } : {}) };
  const response = await fetch(path, { ...init, headers, credentials: "same-origin" });
  const body = await response.json().catch(() => null);
  if (response.status === 401) showBanner("The token is missing or was changed: open this page again as /?token=<your token>.");
  return { status: response.status, ok: response.ok, body };
}

function showBanner(text) {
  const banner = $("banner");
  banner.textContent = text;
  banner.hidden = false;
}

function time(ms) {
  if (ms === null || ms === undefined) return "";
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  const clock = date.toLocaleTimeString([], { hour12: false });
  return today ? clock : `${date.toLocaleDateString()} ${clock}`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function shortId(id) {
  return String(id).slice(0, 8);
}

function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

function errorBlock(error) {
  if (!error) return "";
  return h(
    "div",
    { class: "error" },
    h("span", { class: "code" }, error.code),
    " ",
    error.message,
    error.location ? [h("br"), h("span", { class: "location" }, error.location)] : "",
  );
}

// ---- views ------------------------------------------------------------------------------------

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  const [view, rest = ""] = hash.split(/[/?](.*)/s);
  state.view = ["plugins", "events", "runs", "dead", "time", "catalog", "oktell", "actions", "webhooks", "run", "event"].includes(view) ? view : "plugins";
  state.runsEvent = state.view === "runs" && rest.startsWith("event=") ? rest.slice("event=".length) : "";
  if (state.view === "catalog") state.catalogEvent = rest;
  for (const section of document.querySelectorAll("[data-view]")) section.hidden = section.dataset.view !== state.view;
  for (const link of document.querySelectorAll("[data-view-link]")) link.classList.toggle("active", link.dataset.viewLink === state.view);
  if (state.view === "runs") void loadRuns();
  if (state.view === "catalog") void showCatalog();
  if (state.view === "time") void loadTime();
  watchOktellCommands(state.view === "oktell");
  // The detail pages (detail.js) share this file's helpers.
  const ui = { h, api, time, duration, shortId, errorBlock, runTarget, runState };
  if (state.view === "actions") void showActions(rest);
  if (state.view === "webhooks") void showWebhooks($("webhooks"), ui);
  if (state.view === "run") void showRun($("run-detail"), rest, ui);
  if (state.view === "event") void showEvent($("event-detail"), rest, ui);
}

// ---- workstation commands (the telephony bridge) ------------------------------------------------

let oktellTimer;
/** One refresh timer, only while the view is open. */
function watchOktellCommands(open) {
  clearInterval(oktellTimer);
  oktellTimer = undefined;
  if (!open) return;
  void loadOktellCommands();
  oktellTimer = setInterval(() => void loadOktellCommands(), 2000);
}

async function loadOktellCommands() {
  const { ok, body } = await api("/api/oktell/commands?limit=100");
  if (!ok) return;
  const rows = body.commands.map((command) =>
    h(
      "tr",
      { dataset: { commandId: command.id, state: command.state } },
      h("td", { class: "mono", title: command.id }, time(command.createdAt)),
      h("td", { class: "mono" }, command.user),
      h("td", { class: "mono" }, command.method),
      h("td", { class: "mono" }, command.requestedBy),
      h("td", {}, h("span", { class: `badge ${command.state}` }, command.state)),
      h("td", {}, String(command.attempts)),
      h("td", { class: "mono" }, command.error ?? (command.answer === null ? "" : JSON.stringify(command.answer))),
    ),
  );
  $("oktell-commands").replaceChildren(...rows);
  $("oktell-empty").hidden = rows.length > 0;
}

function renderPlugins() {
  const list = h("div", { class: "plugins" });
  for (const plugin of state.plugins) {
    const error = plugin.lastError;
    list.append(
      h(
        "article",
        { class: `plugin${error ? " has-error" : ""}`, dataset: { plugin: plugin.name } },
        h("header", {}, h("h3", {}, plugin.name), h("span", { class: `badge ${plugin.state}` }, plugin.state), h("span", { class: "file" }, plugin.file)),
        h(
          "dl",
          {},
          h("dt", {}, "version"),
          h("dd", {}, plugin.version === null ? "none serving" : `v${plugin.version}${plugin.loadedAt ? ` · loaded ${time(Date.parse(plugin.loadedAt))}` : ""}`),
          h("dt", {}, "handles"),
          h(
            "dd",
            {},
            plugin.events.map((event) => h("span", { class: "tag" }, `on ${event}`)),
            plugin.actions.map((action) => h("span", { class: "tag" }, `action ${action}`)),
            plugin.events.length + plugin.actions.length === 0 ? "—" : "",
          ),
          plugin.pendingRuns !== undefined && plugin.pendingRuns !== null ? [h("dt", {}, "pending runs"), h("dd", {}, plugin.pendingRuns)] : "",
        ),
        pluginChart(plugin.name),
        error
          ? h(
              "div",
              { class: "last-error" },
              h("span", { class: "error" }, h("span", { class: "code" }, error.code)),
              error.location ? [" at ", h("span", { class: "location" }, error.location)] : "",
              h("pre", {}, error.message),
              h(
                "small",
                { class: "hint" },
                `v${error.version} failed at ${time(Date.parse(error.at))}`,
                plugin.version !== null ? ` · v${plugin.version} still serves` : "",
              ),
            )
          : "",
      ),
    );
  }
  $("plugins").replaceChildren(state.plugins.length ? list : h("p", { class: "empty" }, "No plugins in the plugins folder."));
  const failing = state.plugins.filter((p) => p.lastError).length;
  $("count-plugins").textContent = failing ? `${failing} failing` : String(state.plugins.length || "");
}

/** A plugin's last hour: runs (and failures over them) per minute, p50/p99 duration. */
function pluginChart(name) {
  const stats = state.stats?.plugins.find((p) => p.plugin === name);
  if (!stats) return h("div", { class: "plugin-chart empty-chart", dataset: { chartPlugin: name } }, h("small", { class: "hint" }, "no runs in the last hour"));
  const runs = stats.runs.reduce((a, b) => a + b, 0);
  const failed = stats.failed.reduce((a, b) => a + b, 0);
  return h(
    "div",
    { class: "plugin-chart", dataset: { chartPlugin: name } },
    barChart([stats.runs, stats.failed], { label: `${name}: runs and failures per minute, last hour` }),
    h("small", { class: "hint chart-legend" }, `last hour: ${runs} runs · ${failed} failed · p50 ${duration(stats.p50)} · p99 ${duration(stats.p99)}`),
  );
}

function renderOverview() {
  const stats = state.stats;
  if (!stats) return;
  const accepted = stats.overview.accepted.reduce((a, b) => a + b, 0);
  const dead = stats.overview.dead.reduce((a, b) => a + b, 0);
  $("overview").replaceChildren(
    h("h3", {}, "Last hour"),
    barChart([stats.overview.accepted, stats.overview.dead], { width: 720, height: 64, label: "events accepted and dead letters per minute, last hour", colors: ["#2b8a3e", "#c92a2a"] }),
    h("small", { class: "hint chart-legend" }, `${accepted} events accepted · ${dead} dead letters`),
  );
}

function eventRow(event, fresh) {
  const payload = JSON.stringify(event.payload);
  return h(
    "tr",
    { class: fresh ? "fresh" : "", dataset: { eventId: event.id, eventName: event.name } },
    h("td", { class: "mono" }, time(event.receivedAt)),
    h("td", { class: "mono" }, event.name),
    h("td", {}, event.origin?.user ? `${event.source} (${event.origin.user})` : event.source),
    h("td", { class: "mono", title: event.id }, shortId(event.id)),
    h("td", {}, h("details", { class: "payload-full" }, h("summary", { class: "payload mono" }, payload), h("pre", {}, JSON.stringify(event.payload, null, 2)))),
    h("td", {}, h("a", { href: `#event/${encodeURIComponent(event.id)}`, class: "open-event" }, "open"), " · ", h("a", { href: `#runs?event=${encodeURIComponent(event.id)}` }, "runs")),
  );
}

function renderEvents() {
  $("events").replaceChildren(...state.events.map((event) => eventRow(event, false)));
  $("events-empty").hidden = state.events.length > 0;
  $("count-events").textContent = state.events.length ? String(state.events.length) : "";
}

function addEvent(event) {
  if (state.events.some((e) => e.id === event.id)) return;
  state.events.unshift(event);
  state.events.length = Math.min(state.events.length, MAX_EVENTS);
  const body = $("events");
  body.prepend(eventRow(event, true));
  while (body.children.length > MAX_EVENTS) body.lastElementChild.remove();
  $("events-empty").hidden = true;
  $("count-events").textContent = String(state.events.length);
}

function runTarget(run) {
  if (run.kind === "handler") return run.plugin;
  if (run.kind === "webhook") return `webhook ${run.target}`;
  return `${run.kind} ${run.target}`;
}

/**
 * A run's state as the badge shows it: flow control's holds and skips spelled out
 * (`waiting: throttled until 10:04:05`, `skipped: rate limit`), else the status.
 */
function runState(run) {
  if (run.status === "pending" && run.waiting === "throttled") return `waiting: throttled until ${time(run.nextAt)}`;
  if (run.status === "pending" && run.waiting === "debounced") return `waiting: debounce until ${time(run.nextAt)}`;
  if (run.status === "pending" && run.waiting === "concurrency") return "waiting: concurrency limit";
  if (run.status === "skipped") return run.lastError?.code === "HOOKD_FLOW_RATE_LIMITED" ? "skipped: rate limit" : run.lastError?.code === "HOOKD_FLOW_DEBOUNCED" ? "skipped: debounced" : "skipped";
  return run.status;
}

function renderRuns() {
  const rows = state.runs.map((run) =>
    h(
      "tr",
      { dataset: { runId: run.id, status: run.status } },
      h("td", { class: "mono" }, h("a", { href: `#run/${run.id}` }, `#${run.id}`)),
      h("td", {}, h("span", { class: "mono" }, run.eventName), h("br"), h("small", { class: "mono hint", title: run.eventId }, shortId(run.eventId))),
      h("td", { class: "mono" }, runTarget(run)),
      h("td", {}, h("span", { class: `badge ${run.status}` }, runState(run))),
      h("td", {}, `${run.attempts}/${run.maxAttempts}`),
      h("td", {}, duration(run.durationMs)),
      h("td", { class: "mono" }, time(run.finishedAt ?? run.updatedAt)),
      h("td", {}, errorBlock(run.lastError)),
    ),
  );
  $("runs").replaceChildren(...rows);
  $("runs-empty").hidden = rows.length > 0;
  $("runs-filter").textContent = state.runsEvent ? `of event ${state.runsEvent}` : "newest first, live";
}

function renderDead() {
  const rows = state.dead.filter(deadMatches).map((run) => {
    const button = h("button", { type: "button", dataset: { retry: run.id } }, "Retry");
    button.addEventListener("click", () => retryRun(run, button));
    return h(
      "tr",
      { dataset: { runId: run.id } },
      h("td", { class: "mono" }, `#${run.id}`),
      h("td", {}, h("span", { class: "mono" }, run.eventName), h("br"), h("small", { class: "mono hint", title: run.eventId }, shortId(run.eventId))),
      h("td", { class: "mono" }, runTarget(run)),
      h("td", {}, `${run.attempts}/${run.maxAttempts}`),
      h("td", { class: "mono" }, time(run.finishedAt ?? run.updatedAt)),
      h("td", {}, errorBlock(run.lastError)),
      h("td", {}, button),
    );
  });
  $("dead").replaceChildren(...rows);
  $("dead-empty").hidden = rows.length > 0;
  $("count-dead").textContent = state.dead.length ? String(state.dead.length) : "";
}

async function retryRun(run, button) {
  button.disabled = true;
  button.textContent = "Retrying…";
  const { ok, body } = await api(`/api/runs/${run.id}/retry`, { method: "POST" });
  if (!ok) {
    button.disabled = false;
    button.textContent = "Retry";
    showBanner(`Retry of run #${run.id} failed: ${body?.error?.code ?? "error"} ${body?.error?.message ?? ""}`);
    return;
  }
  button.textContent = "Queued";
  refreshRuns();
}

// ---- time: schedules and delayed events -------------------------------------------------------

function renderTime() {
  const schedules = state.schedules.map((s) =>
    h(
      "tr",
      { dataset: { scheduleId: s.id } },
      h("td", { class: "mono" }, s.source === "plugin" ? s.plugin : `emit ${s.emit}`, s.calendar ? h("small", { class: "hint" }, ` (${s.calendar})`) : ""),
      h("td", { class: "mono" }, s.cron),
      h("td", { class: "mono" }, s.tz),
      h("td", { class: "mono" }, s.nextTick ? time(Date.parse(s.nextTick)) : ""),
      h("td", { class: "mono" }, s.lastTick ? time(Date.parse(s.lastTick)) : ""),
      h("td", {}, h("span", { class: `badge ${s.state === "scheduled" ? "done" : "dead"}` }, s.state), s.lastError ? h("div", { class: "error" }, s.lastError) : ""),
    ),
  );
  $("schedules").replaceChildren(...schedules);
  $("schedules-empty").hidden = schedules.length > 0;
  const scheduled = state.scheduled.map((event) => {
    const button = h("button", { type: "button", dataset: { cancel: event.id } }, "Cancel");
    button.addEventListener("click", () => cancelEvent(event, button));
    return h(
      "tr",
      { dataset: { eventId: event.id } },
      h("td", { class: "mono" }, time(event.deliverAt)),
      h("td", { class: "mono" }, event.name),
      h("td", {}, event.source),
      h("td", { class: "mono", title: event.id }, shortId(event.id)),
      h("td", {}, button),
    );
  });
  $("scheduled").replaceChildren(...scheduled);
  $("scheduled-empty").hidden = scheduled.length > 0;
  $("count-scheduled").textContent = state.scheduled.length ? String(state.scheduled.length) : "";
}

async function loadTime() {
  const [schedules, scheduled] = await Promise.all([api("/api/schedules"), api("/api/events?scheduled=true&limit=200")]);
  if (schedules.ok) state.schedules = schedules.body.schedules;
  if (scheduled.ok) state.scheduled = scheduled.body.events;
  renderTime();
}

async function cancelEvent(event, button) {
  button.disabled = true;
  const { ok, body } = await api(`/api/events/${encodeURIComponent(event.id)}/cancel`, { method: "POST" });
  if (!ok) showBanner(`Cancel of event ${shortId(event.id)} failed: ${body?.error?.code ?? "error"} ${body?.error?.message ?? ""}`);
  void loadTime();
}

// ---- catalog and the test-event form ----------------------------------------------------------

async function showCatalog() {
  if (!state.catalog) {
    const { ok, body } = await api("/api/catalog");
    if (!ok) return;
    state.catalog = body.events;
    renderCatalogList();
  }
  for (const link of document.querySelectorAll("#catalog-list a")) link.classList.toggle("active", link.dataset.event === state.catalogEvent);
  renderCatalogDetail();
}

function renderCatalogList() {
  const filter = $("catalog-filter").value.trim().toLowerCase();
  const names = Object.keys(state.catalog ?? {})
    .filter((name) => name.includes(filter))
    .sort();
  $("catalog-list").replaceChildren(
    ...names.map((name) =>
      h("li", {}, h("a", { href: `#catalog/${encodeURIComponent(name)}`, dataset: { event: name }, class: name === state.catalogEvent ? "active" : "" }, name)),
    ),
  );
}

function renderCatalogDetail() {
  const name = state.catalogEvent;
  const schema = state.catalog?.[name];
  if (!schema) {
    $("catalog-detail").replaceChildren(h("p", { class: "empty" }, "Pick an event to see its JSON Schema and send a test event."));
    return;
  }
  const form = buildSendForm(name, schema);
  $("catalog-detail").replaceChildren(
    h("h3", {}, name),
    h(
      "div",
      { class: "columns" },
      h("div", {}, h("h4", {}, "Send a test event"), form),
      h("div", {}, h("h4", {}, "JSON Schema ", h("small", { class: "hint" }, "(what senders send: GET /api/catalog)")), h("pre", { class: "schema mono" }, JSON.stringify(schema, null, 2))),
    ),
  );
}

/** The kinds of JSON value a schema allows, through anyOf/oneOf and enums. */
function typesOf(schema) {
  const types = new Set();
  const visit = (s) => {
    if (!s || typeof s !== "object") return;
    if (Array.isArray(s.type)) s.type.forEach((t) => types.add(t));
    else if (s.type) types.add(s.type);
    if (s.enum) s.enum.forEach((v) => types.add(typeof v === "number" ? "number" : typeof v));
    (s.anyOf ?? s.oneOf ?? []).forEach(visit);
  };
  visit(schema);
  return types;
}

/** How a property is edited: a select, a checkbox-like select, a text input, or JSON. */
function fieldFor(schema) {
  const types = typesOf(schema);
  if (schema.enum) return { kind: "enum", options: schema.enum };
  if (types.has("object") || types.has("array")) return { kind: "json" };
  if (types.has("boolean")) return { kind: "boolean" };
  const first = (schema.anyOf ?? schema.oneOf ?? [schema])[0] ?? schema;
  const firstType = Array.isArray(first.type) ? first.type[0] : first.type;
  return { kind: "text", numeric: firstType === "integer" || firstType === "number", format: schema.format };
}

function exampleFor(field, required) {
  if (!required) return "";
  if (field.kind === "enum") return String(field.options[0]);
  if (field.kind === "boolean") return "false";
  if (field.kind === "json") return "";
  if (field.format === "date-time") return new Date().toISOString();
  return field.numeric ? "1" : "test";
}

/**
 * A form generated from a JSON Schema. By default it sends a test event `name`; with `target` it
 * posts elsewhere (a manual action start) and hands the accepted id to `target.accepted`.
 */
function buildSendForm(name, schema, target) {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(properties).map(([key, propertySchema]) => {
    const field = fieldFor(propertySchema);
    const id = `field-${key}`;
    let input;
    if (field.kind === "enum" || field.kind === "boolean") {
      const options = field.kind === "enum" ? field.options : [false, true];
      input = h("select", { id, name: key }, required.has(key) ? "" : h("option", { value: "" }, "—"), options.map((o) => h("option", { value: String(o) }, String(o))));
      input.value = exampleFor(field, required.has(key));
    } else if (field.kind === "json") {
      input = h("textarea", { id, name: key, placeholder: "JSON" });
    } else {
      input = h("input", { id, name: key, type: "text", inputmode: field.numeric ? "decimal" : undefined, value: exampleFor(field, required.has(key)) });
    }
    return { key, field, input, row: h("div", { class: "field" }, h("label", { for: id }, key, required.has(key) ? h("span", { class: "req" }, "*") : ""), input) };
  });

  const raw = h("textarea", { name: "raw-json", rows: 8 });
  const rawBox = h("details", { class: "raw" }, h("summary", {}, "Edit as JSON"), raw);
  rawBox.addEventListener("toggle", () => {
    if (rawBox.open) raw.value = JSON.stringify(collect(), null, 2);
  });
  const result = h("div", { class: "result", hidden: true });
  const send = h("button", { type: "submit" }, target?.label ?? "Send event");

  function collect() {
    const payload = {};
    for (const { key, field, input } of fields) {
      const text = input.value.trim();
      if (text === "") continue;
      if (field.kind === "json") payload[key] = tryJson(text);
      else if (field.kind === "boolean") payload[key] = text === "true";
      else if (field.kind === "enum") payload[key] = field.options.find((o) => String(o) === text) ?? text;
      else payload[key] = field.numeric && /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
    }
    return payload;
  }

  const form = h("form", { class: "send", dataset: { event: name } }, fields.map((f) => f.row), rawBox, h("div", { class: "actions" }, send), result);
  form.addEventListener("submit", async (submitEvent) => {
    submitEvent.preventDefault();
    let body;
    try {
      body = rawBox.open ? JSON.stringify(JSON.parse(raw.value)) : JSON.stringify(collect());
    } catch (error) {
      showResult(result, false, [`not JSON: ${error.message}`]);
      return;
    }
    send.disabled = true;
    const answer = await api(target?.path ?? `/events/${encodeURIComponent(name)}`, { method: "POST", body });
    send.disabled = false;
    if (answer.ok && target?.accepted) {
      showResult(result, true, [h("span", {}, "Started: ", h("code", { class: "event-id" }, answer.body.id))]);
      target.accepted(answer.body.id);
    } else if (answer.ok) {
      const link = h("a", { href: `#event/${encodeURIComponent(answer.body.id)}` }, "open the event");
      showResult(result, true, [h("span", {}, "Accepted: ", h("code", { class: "event-id" }, answer.body.id), " · ", link)]);
    } else {
      const error = answer.body?.error ?? { code: `HTTP ${answer.status}`, message: "" };
      const issues = (error.issues ?? []).map((issue) => h("li", {}, h("code", {}, (issue.path ?? []).join(".") || "(payload)"), ": ", issue.message));
      showResult(result, false, [h("span", { class: "code" }, error.code), " ", error.message, issues.length ? h("ul", {}, issues) : ""]);
    }
  });
  return form;
}

function tryJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function showResult(box, ok, children) {
  box.className = `result ${ok ? "ok" : "bad"}`;
  box.replaceChildren(...children);
  box.hidden = false;
}

// ---- actions started by hand, dead letters repaired in bulk -----------------------------------

async function showActions(selected) {
  const { ok, body } = await api("/api/actions");
  if (!ok) return;
  const names = Object.keys(body.actions).sort();
  $("actions-list").replaceChildren(
    ...names.map((name) => h("li", {}, h("a", { href: `#actions/${encodeURIComponent(name)}`, class: name === selected ? "active" : "", dataset: { action: name } }, name), " ", h("small", { class: "hint" }, body.actions[name].plugin))),
  );
  const action = body.actions[selected];
  if (!action) {
    $("actions-detail").replaceChildren(h("p", { class: "empty" }, names.length ? "Pick an action to start it by hand." : "No plugin declares an action."));
    return;
  }
  // Started through POST /actions/{name} (checked against the same schema); the run opens once it exists.
  const form = buildSendForm(selected, action.input, {
    path: `/actions/${encodeURIComponent(selected)}`,
    label: "Start action",
    accepted: async (eventId) => {
      for (let tries = 0; tries < 100; tries++) {
        const runs = await api(`/api/runs?eventId=${encodeURIComponent(eventId)}`);
        const run = runs.body?.runs?.[0];
        if (run) {
          location.hash = `run/${run.id}`;
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  });
  form.classList.add("start-action");
  form.dataset.action = selected;
  $("actions-detail").replaceChildren(
    h("h3", {}, selected, " ", h("small", { class: "hint" }, `in ${action.plugin}`)),
    h("div", { class: "columns" }, h("div", {}, h("h4", {}, "Start it by hand"), form), h("div", {}, h("h4", {}, "Input JSON Schema"), h("pre", { class: "schema mono" }, JSON.stringify(action.input, null, 2)))),
  );
}

/** The dead-letters view's filter, as the bulk retry and discard take it. */
function deadFilter() {
  const filter = {};
  for (const key of ["plugin", "event", "code"]) {
    const value = $(`dead-${key}`).value.trim();
    if (value) filter[key] = value;
  }
  const since = $("dead-since").value;
  if (since) filter.since = new Date(since).toISOString();
  return filter;
}

async function retryAllMatching() {
  const filter = deadFilter();
  const button = $("dead-retry-all");
  button.disabled = true;
  const { ok, body } = await api("/api/dead-letters/retry", { method: "POST", body: JSON.stringify(filter) });
  button.disabled = false;
  $("dead-bulk-result").textContent = ok ? `${body.retried} dead letter${body.retried === 1 ? "" : "s"} back in the queue${body.more ? " (more match: run it again)" : ""}.` : `${body?.error?.code ?? "error"} ${body?.error?.message ?? ""}`;
  refreshRuns();
}

/** Discards every matching dead letter after a confirm; they stay in history as `discarded`. */
async function discardAllMatching() {
  const filter = deadFilter();
  const shown = $("dead").querySelectorAll("tr[data-run-id]").length;
  if (!confirm(`Discard all dead letters matching this filter (${shown} shown)? They are kept in history as discarded and never run again.`)) return;
  const button = $("dead-discard-all");
  button.disabled = true;
  const { ok, body } = await api("/api/dead-letters/discard", { method: "POST", body: JSON.stringify(filter) });
  button.disabled = false;
  $("dead-bulk-result").textContent = ok ? `${body.discarded} dead letter${body.discarded === 1 ? "" : "s"} discarded${body.more ? " (more match: run it again)" : ""}.` : `${body?.error?.code ?? "error"} ${body?.error?.message ?? ""}`;
  refreshRuns();
}

/** The dead letters shown: those matching the filter's fields (the same ones the bulk retry takes). */
function deadMatches(run) {
  const plugin = $("dead-plugin").value.trim();
  const event = $("dead-event").value.trim();
  const code = $("dead-code").value.trim();
  const since = $("dead-since").value ? new Date($("dead-since").value).getTime() : undefined;
  return (!plugin || run.plugin === plugin) && (!event || run.eventName === event) && (!code || run.lastError?.code === code) && (since === undefined || run.createdAt >= since);
}

// ---- loading and the live stream --------------------------------------------------------------

/** The charts are read again at most this often (the plugin list itself follows every run). */
const STATS_EVERY_MS = 15_000;
let statsReadAt = 0;

async function loadPlugins() {
  const fresh = Date.now() - statsReadAt >= STATS_EVERY_MS;
  if (fresh) statsReadAt = Date.now();
  const [{ ok, body }, stats] = await Promise.all([api("/api/plugins"), fresh ? api("/api/stats?minutes=60") : Promise.resolve(null)]);
  if (!ok) return;
  state.plugins = body.plugins;
  if (stats?.ok) state.stats = stats.body;
  renderPlugins();
  renderOverview();
}

async function loadEvents() {
  const { ok, body } = await api(`/api/events?limit=${MAX_EVENTS}`);
  if (!ok) return;
  state.events = body.events;
  renderEvents();
}

async function loadRuns() {
  const query = new URLSearchParams({ limit: "100" });
  const status = $("runs-status").value;
  if (status) query.set("status", status);
  if (state.runsEvent) query.set("eventId", state.runsEvent);
  const { ok, body } = await api(`/api/runs?${query}`);
  if (!ok) return;
  state.runs = body.runs;
  renderRuns();
}

async function loadDead() {
  const { ok, body } = await api("/api/runs?status=dead&limit=200");
  if (!ok) return;
  state.dead = body.runs;
  renderDead();
}

const refreshRuns = debounce(() => {
  void loadRuns();
  void loadDead();
}, 150);
const refreshPlugins = debounce(() => void loadPlugins(), 300);
const refreshTime = debounce(() => void loadTime(), 300);

function connectStream() {
  const live = $("live");
  const stream = new EventSource("/api/stream");
  let connectedBefore = false;
  stream.addEventListener("open", () => {
    live.dataset.state = "live";
    live.textContent = "live";
    // After a reconnect, what happened meanwhile is only in the lists.
    if (connectedBefore) void loadAll();
    connectedBefore = true;
  });
  stream.addEventListener("error", () => {
    live.dataset.state = "down";
    live.textContent = "reconnecting";
  });
  stream.addEventListener("event", (message) => {
    addEvent(JSON.parse(message.data));
    refreshRuns();
    refreshTime();
  });
  stream.addEventListener("events-skipped", () => {
    void loadEvents();
    refreshRuns();
  });
  stream.addEventListener("run", () => {
    refreshRuns();
    refreshPlugins();
  });
  stream.addEventListener("plugins", () => refreshPlugins());
}

function loadAll() {
  return Promise.all([loadPlugins(), loadEvents(), loadRuns(), loadDead(), loadTime()]);
}

$("runs-status").addEventListener("change", () => void loadRuns());
for (const key of ["plugin", "event", "code", "since"]) $(`dead-${key}`).addEventListener("input", () => renderDead());
$("dead-retry-all").addEventListener("click", () => void retryAllMatching());
$("dead-discard-all").addEventListener("click", () => void discardAllMatching());
$("catalog-filter").addEventListener("input", () => renderCatalogList());
window.addEventListener("hashchange", route);
connectStream();
route();
void loadAll().then(() => document.body.setAttribute("data-loaded", ""));
