// Run and event detail against the real daemon, on both stores: a plugin that logs, fetches a
// local server (with a credential in the query), emits and writes kv, fails its first attempt
// and succeeds on the second. GET /api/runs/{id} shows both attempts with all they did (the
// failure with its TypeScript lines); GET /api/events/{id} shows the handler run, the route's
// action, the webhook delivery with its answer, and the emitted child with the run that emitted it.
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const api = createServer((request, response) => {
  request.resume();
  response.setHeader("content-type", "application/json");
  response.end(request.url?.startsWith("/hook") ? '{"received":true,"by":"crm"}' : '{"ok":true}');
});
await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${(api.address() as { port: number }).port}`;

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: { "test.ping": z.object({ n: z.number().int() }), "test.child": z.object({ from: z.number().int() }) },
  routes: [{ on: "test.ping", run: "remember", input: { n: "n" } }],
  webhooks: [{ on: "test.ping", url: "${origin}/hook" }],
  webhookDelivery: { retryScheduleMs: [100] },
  delivery: { backoffMs: 50, maxBackoffMs: 100, maxAttempts: 3 },
  sandbox: { timeoutMs: 5000, fetchAllowHosts: ["127.0.0.1"] },
});
`;

const PLUGIN = `import { action, on, plugin, z } from "hookd";

plugin({ fetch: ["${origin}/*"] });

on("test.ping", async (ping, ctx) => {
  ctx.log.info({ n: ping.n, attempt: ctx.event.attempt }, "working on it");
  const answer = await ctx.fetch("${origin}/work?api_key=s3cret-value&n=" + ping.n, { method: "POST", body: "{}" });
  await ctx.kv.set("last", { n: ping.n, status: answer.status });
  await ctx.emit("test.child", { from: ping.n });
  if (ctx.event.attempt === 1) {
    throw new Error("first attempt fails on purpose");
  }
  ctx.log.warn("second attempt done");
});

action("remember", { input: z.object({ n: z.number() }) }, async (input, ctx) => {
  await ctx.kv.delete("forgotten");
  ctx.log.info({ n: input.n }, "remembered");
});
`;

interface RunRecord { id: number; kind: string; plugin: string; status: string; attempts: number }

const postgresDown = await postgresUnavailable();
const stores = postgresDown ? ["sqlite"] : ["sqlite", "postgres"];
if (postgresDown) describe.skip(`postgres half skipped: ${postgresDown}`, () => it("needs PostgreSQL", () => undefined));
afterAll(() => new Promise<void>((resolve) => api.close(() => resolve())));

describe.each(stores)("run and event detail (%s store)", (storeKind) => {
  const project = new TestProject({ config: CONFIG, files: { "worker.ts": PLUGIN } });
  const daemon = new TestDaemon(project);
  const schema = testSchemaName();

  beforeAll(async () => {
    const env: Record<string, string> = storeKind === "postgres" ? { HOOKD_STORE_URL: schemaUrl(schema) } : {};
    await daemon.start({ env, timeoutMs: 60_000 });
  }, 90_000);
  afterAll(async () => {
    await daemon.stop();
    project.remove();
    if (storeKind === "postgres") await dropSchema(schema);
  });

  it("keeps every attempt of a run with its logs, fetches, emits, kv writes and the error's source lines", async () => {
    const { status, body } = await daemon.post("test.ping", { n: 41 });
    expect(status).toBe(202);
    const runs = await waitUntil(
      async () => {
        const { runs } = (await daemon.getJson(`/api/runs?eventId=${body.id}`)) as { runs: RunRecord[] };
        return runs.length === 3 && runs.every((run) => run.status === "done") ? runs : undefined;
      },
      { what: async () => `all three runs of ${body.id} done: ${JSON.stringify(await daemon.getJson(`/api/runs?eventId=${body.id}`))}` },
    );
    const handler = runs.find((run) => run.kind === "handler")!;
    expect(handler.attempts).toBe(2);

    const detail = await daemon.getJson(`/api/runs/${handler.id}`);
    expect(Object.keys(detail).sort()).toEqual(["attempts", "emits", "fetches", "kvWrites", "logs", "run"]);
    expect(detail.run).toMatchObject({ id: handler.id, status: "done", plugin: "worker" });
    expect(detail.attempts).toHaveLength(2);
    const [first, second] = detail.attempts;
    expect(first).toMatchObject({ attempt: 1, status: "failed", code: "HOOKD_RUN_FAILED" });
    expect(first.error.message).toContain("first attempt fails on purpose");
    // The thrown line and the lines around it, from the TypeScript source.
    expect(first.error.source.file).toMatch(/worker\.ts$/);
    const thrown = first.error.source.lines.find((l: { line: number }) => l.line === first.error.source.line);
    expect(thrown.text).toContain('throw new Error("first attempt fails on purpose")');
    expect(first.error.source.lines.length).toBeGreaterThan(3);
    expect(second).toMatchObject({ attempt: 2, status: "done", code: null, error: null });
    expect(second.startedAt).toBeGreaterThanOrEqual(first.startedAt + first.durationMs - 1);
    for (const attempt of detail.attempts) expect(attempt.durationMs).toBeGreaterThan(0);

    expect(detail.logs.map((l: { attempt: number; msg: string }) => [l.attempt, l.msg])).toEqual([
      [1, "working on it"],
      [2, "working on it"],
      [2, "second attempt done"],
    ]);
    expect(detail.logs[0].fields).toMatchObject({ n: 41, attempt: 1 });
    expect(detail.fetches).toHaveLength(2);
    for (const fetch of detail.fetches) {
      expect(fetch).toMatchObject({ method: "POST", status: 200, bytes: 11 });
      // The credential in the query is not kept; the parameter names are.
      expect(fetch.url).toBe(`${origin}/work?api_key=…&n=…`);
      expect(JSON.stringify(fetch)).not.toContain("s3cret");
    }
    expect(detail.kvWrites.map((w: { attempt: number; op: string; key: string }) => [w.attempt, w.op, w.key])).toEqual([
      [1, "set", "last"],
      [2, "set", "last"],
    ]);
    expect(detail.emits).toHaveLength(2);
    for (const emit of detail.emits) expect(emit).toMatchObject({ name: "test.child", eventId: expect.any(String) });

    // The event's page: its three runs, the webhook's answer, the two children with their run.
    const event = await daemon.getJson(`/api/events/${body.id}`);
    expect(Object.keys(event).sort()).toEqual(["children", "event", "runs", "webhooks"]);
    expect(event.event).toMatchObject({ id: body.id, name: "test.ping", source: "http", payload: { n: 41 } });
    expect(event.runs.map((r: RunRecord) => r.kind).sort()).toEqual(["handler", "route", "webhook"]);
    expect(event.webhooks).toHaveLength(1);
    expect(event.webhooks[0].endpoint).toBe(`${origin}/hook`);
    expect(event.webhooks[0].attempts).toEqual([
      expect.objectContaining({ attempt: 1, status: "done", request: { method: "POST", url: `${origin}/hook` }, answer: expect.objectContaining({ status: 200, response: '{"received":true,"by":"crm"}' }) }),
    ]);
    expect(event.webhooks[0].attempts[0].answer.latencyMs).toBeGreaterThan(0);
    expect(event.children.map((c: { id: string }) => c.id).sort()).toEqual(detail.emits.map((e: { eventId: string }) => e.eventId).sort());
    for (const child of event.children) expect(child).toMatchObject({ name: "test.child", source: "emit", runId: handler.id });

    // A child's page names its parent event and the run that emitted it.
    const child = await daemon.getJson(`/api/events/${event.children[0].id}`);
    expect(child.event.parent).toEqual({ eventId: body.id, runId: handler.id, plugin: "worker" });

    // The route's action run: its kv delete and log line.
    const route = runs.find((run) => run.kind === "route")!;
    const routeDetail = await daemon.getJson(`/api/runs/${route.id}`);
    expect(routeDetail.kvWrites).toEqual([expect.objectContaining({ attempt: 1, op: "delete", key: "forgotten", bytes: 0 })]);
    expect(routeDetail.logs).toEqual([expect.objectContaining({ attempt: 1, msg: "remembered", fields: { n: 41 } })]);
  }, 90_000);

  it("answers 404 with a code for a run or event that does not exist", async () => {
    for (const [path, code] of [["/api/runs/999999", "HOOKD_RUN_NOT_FOUND"], ["/api/runs/abc", "HOOKD_RUN_NOT_FOUND"], ["/api/events/nope", "HOOKD_HTTP_NOT_FOUND"]] as const) {
      const response = await daemon.fetch(path);
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
    }
  });
});
