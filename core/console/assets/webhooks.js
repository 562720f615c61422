// The console's webhooks view (#webhooks): every endpoint from the config with its state
// (enabled, or disabled and why), its failure count and last error, "Re-enable" for a disabled
// one, and its recent deliveries with their answer (status, latency, the start of the response,
// from each run's detail) and "Retry" for a failed or dead one. "Send test" posts one signed
// hookd.test message there now (POST /api/webhooks/{id}/test) and shows the answer; it is not
// stored as a delivery. Helpers come from console.js.

/** The last test delivery's answer per endpoint, kept across the view's re-renders. */
const lastTests = new Map();

/** Recent deliveries shown per endpoint. */
const RECENT = 10;

export async function showWebhooks(box, ui) {
  const { h, api } = ui;
  const { ok, body } = await api("/api/webhooks");
  if (!ok) return;
  if (body.webhooks.length === 0) {
    box.replaceChildren(h("p", { class: "empty" }, "No webhooks in the config (webhooks: [...] in events.config.ts)."));
    return;
  }
  const cards = await Promise.all(body.webhooks.map((endpoint) => endpointCard(endpoint, ui, () => showWebhooks(box, ui))));
  box.replaceChildren(...cards);
}

async function endpointCard(endpoint, ui, refresh) {
  const { h, api } = ui;
  const runs = (await api(`/api/runs?plugin=${encodeURIComponent(`webhook:${endpoint.id}`)}&limit=${RECENT}`)).body?.runs ?? [];
  const details = await Promise.all(runs.map((run) => api(`/api/runs/${run.id}`).then((answer) => (answer.ok ? answer.body : null))));
  const enable = h("button", { type: "button", class: "enable" }, "Re-enable");
  enable.addEventListener("click", async () => {
    enable.disabled = true;
    await api(`/api/webhooks/${encodeURIComponent(endpoint.id)}/enable`, { method: "POST" });
    await refresh();
  });
  const testResult = h("span", { class: "test-result hint" }, lastTests.get(endpoint.id) ?? "");
  const sendTest = h("button", { type: "button", class: "send-test" }, "Send test");
  sendTest.addEventListener("click", async () => {
    sendTest.disabled = true;
    testResult.textContent = "sending…";
    const { ok, body } = await api(`/api/webhooks/${encodeURIComponent(endpoint.id)}/test`, { method: "POST" });
    sendTest.disabled = false;
    const text = ok
      ? `${body.ok ? "answered" : "failed:"} ${body.status ?? body.error ?? ""} in ${ui.duration(body.latencyMs)}${body.response ? ` · ${body.response.slice(0, 200)}` : ""}`
      : `${body?.error?.code ?? "error"} ${body?.error?.message ?? ""}`;
    // The view may have been drawn again meanwhile (a delivery changed): show it on the card shown now.
    lastTests.set(endpoint.id, text);
    testResult.textContent = text;
    for (const shown of document.querySelectorAll(`.webhook-endpoint[data-endpoint="${endpoint.id}"] .test-result`)) shown.textContent = text;
  });
  return h(
    "article",
    { class: `webhook-endpoint ${endpoint.state}`, dataset: { endpoint: endpoint.id } },
    h("div", { class: "webhook-head" }, h("span", { class: "mono" }, endpoint.url), h("span", { class: `badge ${endpoint.state === "enabled" ? "loaded" : "dead"}` }, endpoint.state), endpoint.state === "disabled" ? enable : "", endpoint.configured ? [sendTest, testResult] : ""),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "events"),
      h("dd", {}, endpoint.events.length ? endpoint.events.map((event) => h("span", { class: "tag" }, event)) : "(no longer in the config)"),
      h("dt", {}, "failures in a row"),
      h("dd", {}, String(endpoint.consecutiveFailures ?? 0)),
      endpoint.lastError ? [h("dt", {}, "last error"), h("dd", { class: "mono" }, endpoint.lastError)] : "",
      endpoint.disabledReason ? [h("dt", {}, "disabled because"), h("dd", {}, endpoint.disabledReason)] : "",
    ),
    h(
      "table",
      { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "run"), h("th", {}, "event"), h("th", {}, "status"), h("th", {}, "attempts"), h("th", {}, "answer"), h("th", {}, "latency"), h("th", {}, "response"), h("th", {}, ""))),
      h(
        "tbody",
        {},
        runs.map((run, i) => {
          const sent = details[i]?.fetches.at(-1);
          const retriable = run.status === "dead" || (run.status === "pending" && run.lastError);
          const retry = retriable ? h("button", { type: "button", class: "retry" }, "Retry") : "";
          if (retry) {
            retry.addEventListener("click", async () => {
              retry.disabled = true;
              await api(`/api/runs/${run.id}/retry`, { method: "POST" });
              await refresh();
            });
          }
          return h(
            "tr",
            { dataset: { runId: run.id, status: run.status } },
            h("td", {}, h("a", { href: `#run/${run.id}`, class: "mono" }, `#${run.id}`)),
            h("td", {}, h("a", { href: `#event/${encodeURIComponent(run.eventId)}`, class: "mono" }, `${run.eventName} · ${ui.shortId(run.eventId)}`)),
            h("td", {}, h("span", { class: `badge ${run.status}` }, run.status)),
            h("td", {}, `${run.attempts}/${run.maxAttempts}`),
            h("td", { class: "answer" }, sent ? String(sent.status ?? sent.error ?? "") : ""),
            h("td", {}, sent ? ui.duration(sent.durationMs) : ""),
            h("td", {}, sent?.response ? h("pre", { class: "excerpt" }, sent.response) : ""),
            h("td", {}, retry),
          );
        }),
      ),
    ),
  );
}
