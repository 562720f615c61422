// The console's detail pages: one run (#run/<id>) as a timeline of its attempts with what each
// did, and one event (#event/<id>) with its payload, source and everything it caused. Both read
// the detail endpoints (GET /api/runs/{id}, GET /api/events/{id}); the page helpers (element
// builder, API call, formatting) come from console.js, so both files render the same way.

/** How often an unfinished run's page reads it again, while it stays open. */
const RUN_REFRESH_MS = 500;

/** Fills `box` with run `id`'s page (again every RUN_REFRESH_MS while the run is unfinished). */
export async function showRun(box, id, ui, refresh = false) {
  const { h, api } = ui;
  if (!refresh) box.replaceChildren(h("p", { class: "hint" }, `loading run #${id}…`));
  const { ok, body } = await api(`/api/runs/${encodeURIComponent(id)}`);
  if (!ok) {
    box.replaceChildren(h("p", { class: "empty" }, `Run #${id}: ${body?.error?.code ?? "not found"} ${body?.error?.message ?? ""}`));
    return;
  }
  const { run } = body;
  if (run.status === "pending" || run.status === "running") {
    setTimeout(() => {
      if (location.hash === `#run/${id}`) void showRun(box, id, ui, true);
    }, RUN_REFRESH_MS);
  }
  const byAttempt = (list, attempt) => list.filter((item) => item.attempt === attempt);
  box.replaceChildren(
    h("h2", {}, `Run #${run.id} `, h("span", { class: `badge ${run.status}` }, ui.runState(run))),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "event"),
      h("dd", {}, h("a", { href: `#event/${encodeURIComponent(run.eventId)}`, class: "mono" }, `${run.eventName} · ${ui.shortId(run.eventId)}`)),
      h("dt", {}, "runs in"),
      h("dd", { class: "mono" }, ui.runTarget(run)),
      h("dt", {}, "attempts"),
      h("dd", {}, `${run.attempts}/${run.maxAttempts}`),
    ),
    h(
      "ol",
      { class: "timeline" },
      body.attempts.length === 0 ? h("li", { class: "empty" }, "No attempt recorded yet.") : "",
      body.attempts.map((attempt) =>
        h(
          "li",
          { class: `attempt ${attempt.status}`, dataset: { attempt: attempt.attempt } },
          h("h3", {}, `Attempt ${attempt.attempt} `, h("span", { class: `badge ${attempt.status === "done" ? "done" : "dead"}` }, attempt.status), h("small", { class: "hint" }, ` ${ui.time(attempt.startedAt)} · ${ui.duration(attempt.durationMs)}`)),
          attempt.error ? errorWithSource(h, ui, attempt.error) : "",
          activityTable(h, ui, byAttempt(body.logs, attempt.attempt), byAttempt(body.fetches, attempt.attempt), byAttempt(body.emits, attempt.attempt), byAttempt(body.kvWrites, attempt.attempt)),
          attempt.dropped ? h("p", { class: "hint" }, `${attempt.dropped} more entries were over the run's bounds and not kept.`) : "",
        ),
      ),
    ),
  );
}

function errorWithSource(h, ui, error) {
  const source = error.source;
  return h(
    "div",
    { class: "run-error" },
    ui.errorBlock(error),
    source
      ? h(
          "pre",
          { class: "source mono" },
          source.lines.map((line) => h("span", { class: line.line === source.line ? "line thrown" : "line" }, `${String(line.line).padStart(4)}  ${line.text}`)),
        )
      : "",
  );
}

function activityTable(h, ui, logs, fetches, emits, kvWrites) {
  const rows = [
    ...logs.map((log) => ({ at: log.at, kind: `log ${log.level}`, text: [log.msg ?? "", log.fields ? ` ${JSON.stringify(log.fields)}` : ""] })),
    ...fetches.map((f) => ({ at: f.at, kind: "fetch", text: [`${f.method} ${f.url} → ${f.status ?? f.error ?? "?"} · ${ui.duration(f.durationMs)}${f.bytes !== undefined ? ` · ${f.bytes} B` : ""}`, f.response ? h("pre", { class: "excerpt" }, f.response) : ""] })),
    ...emits.map((e) => ({ at: e.at, kind: "emit", text: [e.name, " ", e.eventId ? h("a", { href: `#event/${encodeURIComponent(e.eventId)}`, class: "mono" }, ui.shortId(e.eventId)) : (e.error ?? "")] })),
    ...kvWrites.map((w) => ({ at: w.at, kind: `kv ${w.op}`, text: `${w.key}${w.op === "set" ? ` (${w.bytes} B)` : ""}${w.error ? ` — ${w.error}` : ""}` })),
  ].sort((a, b) => a.at - b.at);
  if (rows.length === 0) return h("p", { class: "hint" }, "No log lines, fetches, emits or kv writes.");
  return h(
    "table",
    { class: "grid activity" },
    h("tbody", {}, rows.map((row) => h("tr", { dataset: { kind: row.kind.split(" ")[0] } }, h("td", { class: "mono" }, ui.time(row.at)), h("td", {}, h("span", { class: "tag" }, row.kind)), h("td", { class: "mono" }, row.text)))),
  );
}

/** Fills `box` with event `id`'s page. */
export async function showEvent(box, id, ui) {
  const { h, api } = ui;
  box.replaceChildren(h("p", { class: "hint" }, `loading event ${id}…`));
  const { ok, body } = await api(`/api/events/${encodeURIComponent(id)}`);
  if (!ok) {
    box.replaceChildren(h("p", { class: "empty" }, `Event ${id}: ${body?.error?.code ?? "not found"}`));
    return;
  }
  const { event, runs, webhooks, children } = body;
  const runLink = (run) => h("a", { href: `#run/${run.id}`, class: "mono" }, `#${run.id}`);
  const others = runs.filter((run) => run.kind !== "webhook");
  box.replaceChildren(
    h("h2", {}, event.name, " ", h("small", { class: "mono" }, event.id)),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "received"),
      h("dd", {}, ui.time(event.receivedAt)),
      h("dt", {}, "source"),
      h(
        "dd",
        { class: "source-of-event" },
        event.source,
        event.parent
          ? [" from event ", h("a", { href: `#event/${encodeURIComponent(event.parent.eventId)}`, class: "mono" }, ui.shortId(event.parent.eventId)), event.parent.runId ? [" by run ", runLink({ id: event.parent.runId }), ` (${event.parent.plugin})`] : ""]
          : "",
      ),
    ),
    h("details", { class: "payload-full", open: true }, h("summary", {}, "payload"), h("pre", { class: "mono" }, JSON.stringify(event.payload, null, 2))),
    editAndReplay(h, api, event),
    h("h3", {}, `Runs and route actions (${others.length})`),
    h(
      "table",
      { class: "grid", id: "event-runs" },
      h("thead", {}, h("tr", {}, h("th", {}, "run"), h("th", {}, "kind"), h("th", {}, "runs in"), h("th", {}, "status"), h("th", {}, "attempts"), h("th", {}, "duration"), h("th", {}, "error"))),
      h("tbody", {}, others.map((run) => h("tr", { dataset: { runId: run.id, kind: run.kind } }, h("td", {}, runLink(run)), h("td", {}, run.kind), h("td", { class: "mono" }, ui.runTarget(run)), h("td", {}, h("span", { class: `badge ${run.status}` }, ui.runState(run))), h("td", {}, `${run.attempts}/${run.maxAttempts}`), h("td", {}, ui.duration(run.durationMs)), h("td", {}, ui.errorBlock(run.lastError))))),
    ),
    h("h3", {}, `Webhook deliveries (${webhooks.length})`),
    h(
      "div",
      { id: "event-webhooks" },
      webhooks.map((hook) =>
        h(
          "article",
          { class: "webhook", dataset: { runId: hook.run.id } },
          h("div", { class: "webhook-head" }, runLink(hook.run), " ", h("span", { class: "mono" }, hook.endpoint), " ", h("span", { class: `badge ${hook.run.status}` }, hook.run.status)),
          h(
            "table",
            { class: "grid" },
            h("thead", {}, h("tr", {}, h("th", {}, "attempt"), h("th", {}, "sent"), h("th", {}, "answer"), h("th", {}, "latency"), h("th", {}, "response"))),
            h("tbody", {}, hook.attempts.map((a) => h("tr", {}, h("td", {}, a.attempt), h("td", { class: "mono" }, ui.time(a.startedAt)), h("td", {}, a.answer?.status ?? a.answer?.error ?? a.code ?? ""), h("td", {}, a.answer ? ui.duration(a.answer.latencyMs) : ""), h("td", {}, a.answer?.response ? h("pre", { class: "excerpt" }, a.answer.response) : "")))),
          ),
        ),
      ),
    ),
    h("h3", {}, `Emitted and replayed events (${children.length})`),
    h("ul", { id: "event-children" }, children.map((child) => h("li", {}, h("a", { href: `#event/${encodeURIComponent(child.id)}`, class: "mono" }, `${child.name} · ${ui.shortId(child.id)}`), child.runId ? [" by run ", runLink({ id: child.runId })] : ""))),
  );
}

/**
 * "Edit and replay": the payload in a textarea; submitting posts it to POST /api/events/{id}/replay
 * (checked against the catalog there) and opens the new event, or shows what was refused.
 */
function editAndReplay(h, api, event) {
  const text = h("textarea", { id: "replay-payload", class: "mono", rows: 8, spellcheck: "false" });
  text.value = JSON.stringify(event.payload, null, 2);
  const result = h("p", { id: "replay-result", class: "hint" });
  const submit = async (e) => {
    e.preventDefault();
    let payload;
    try {
      payload = JSON.parse(text.value);
    } catch (error) {
      result.textContent = `not JSON: ${error.message}`;
      return;
    }
    const { ok, body } = await api(`/api/events/${encodeURIComponent(event.id)}/replay`, { method: "POST", body: JSON.stringify({ payload }) });
    if (ok) {
      location.hash = `event/${body.id}`;
      return;
    }
    const issues = (body?.error?.issues ?? []).map((issue) => `${issue.path.join(".") || "(payload)"}: ${issue.message}`);
    result.textContent = [`${body?.error?.code ?? "error"} ${body?.error?.message ?? ""}`, ...issues].join(" · ");
  };
  return h(
    "details",
    { class: "edit-replay" },
    h("summary", {}, "Edit and replay"),
    h("form", { id: "replay-form", class: "send", onsubmit: submit }, text, h("div", {}, h("button", { type: "submit" }, "Replay as a new event"), " ", h("span", { class: "hint" }, "stored beside this one, delivered to its subscribers")), result),
  );
}
