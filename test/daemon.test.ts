// The real daemon on a free port: events in over HTTP, handlers run in isolates, results out.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, TestDaemon, TestProject, useDaemon } from "./helpers/daemon.ts";
import { readBody, startLocalServer, type LocalServer } from "./helpers/http.ts";
import { runProcess } from "./helpers/run.ts";
import { waitUntil } from "./helpers/wait.ts";

describe("daemon end to end", () => {
  const { daemon } = useDaemon({ fixtures: ["basic", "uses-fs"] });

  it("accepts a valid event with 202 and runs the subscribed handler with the typed payload", async () => {
    const { status, body } = await daemon.post("deal.close", { did: "12", autor: 3, summa: "1500.00", status: "won" });
    expect(status).toBe(202);
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    const line = await daemon.waitForLog((l) => l.msg === "recorder handled" && l.eventId === body.id);
    expect(line.payload).toEqual({ did: 12, autor: 3, summa: "1500.00", status: "won" });
    expect(line.types).toEqual({ did: "number", autor: "number" });
    expect(line).toMatchObject({ plugin: "recorder", event: "deal.close", runId: expect.any(String), attempt: 1 });
  });

  it("accepts PHP-style form bodies with arrays", async () => {
    const response = await daemon.fetch("/events/client.import", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "clids[]=101&clids[]=102&pids[]=7&autor=3&user=4",
    });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    const line = await daemon.waitForLog((l) => l.msg === "recorder handled" && l.eventId === id);
    expect(line.payload).toEqual({ clids: [101, 102], pids: [7], autor: 3, user: 4 });
  });

  it("runs every plugin subscribed to an event", async () => {
    const { body } = await daemon.post("deal.close", { did: 77, autor: 1, summa: "1", status: "won" });
    await daemon.waitForLog((l) => l.msg === "recorder handled" && l.eventId === body.id);
    const second = await daemon.waitForLog((l) => l.msg === "second handled" && l.eventId === body.id);
    expect(second.did).toBe(77);
  });

  it("delivers ctx.emit to another plugin through the same validation", async () => {
    const { body } = await daemon.post("test.ping", { n: 123 });
    const emitted = await daemon.waitForLog((l) => l.msg === "emitter emitted" && l.eventId === body.id);
    const seen = await daemon.waitForLog((l) => l.msg === "task seen" && l.eventId === emitted.emitted);
    // autor arrived as "5" and was coerced like an HTTP payload would be.
    expect(seen.task).toEqual({ id: 123, autor: 5 });
    const stored = await daemon.getJson(`/api/events?name=task.add`);
    expect(stored.events.find((e: { id: string }) => e.id === emitted.emitted)).toMatchObject({ source: "emit", parentId: body.id, depth: 1 });
  });

  it("refuses ctx.fetch to URLs the plugin did not declare", async () => {
    const { body } = await daemon.post("test.ping", { n: 7 });
    const refused = await daemon.waitForLogs((l) => l.msg === "fetch refused" && l.eventId === body.id, 3);
    expect(refused.map((l) => l.code)).toEqual(["HOOKD_FETCH_NOT_ALLOWED", "HOOKD_FETCH_NOT_ALLOWED", "HOOKD_FETCH_NOT_ALLOWED"]);
    expect(daemon.logs.some((l) => l.msg === "fetch was allowed")).toBe(false);
  });

  it("starts a route's action with the mapped input, leaving unmapped fields empty", async () => {
    const { status, body } = await daemon.post("user.operator_status.changed", {
      userId: "op-1",
      status: "offline",
      reason: "logout",
      changedAt: "2026-11-21T10:00:00Z",
    });
    expect(status).toBe(202);
    const ran = await daemon.waitForLog((l) => l.msg === "notify ran" && l.eventId === body.id);
    expect(ran.input).toEqual({ operator: "op-1", status: "offline", fixed: 7 });
  });

  it("starts an action by hand and rejects an unknown one with 404", async () => {
    const started = await daemon.fetch("/actions/notify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ operator: "op-2", status: "online", fixed: 1, supervisor: "boss" }),
    });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    const ran = await daemon.waitForLog((l) => l.msg === "notify ran" && l.eventId === id);
    expect(ran.input).toMatchObject({ supervisor: "boss" });

    const unknown = await daemon.fetch("/actions/nope", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).error.code).toBe("HOOKD_ACTION_UNKNOWN");
  });

  it("returns the first id for a repeated Idempotency-Key and 422 for a different body", async () => {
    const payload = { did: 500, autor: 1, summa: "5", status: "won" };
    const first = await daemon.post("deal.close", payload, { "idempotency-key": "crm-500" });
    const again = await daemon.post("deal.close", payload, { "idempotency-key": "crm-500" });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    const conflict = await daemon.post("deal.close", { ...payload, summa: "6" }, { "idempotency-key": "crm-500" });
    expect(conflict.status).toBe(422);
    expect(conflict.body.error.code).toBe("HOOKD_EVENT_IDEMPOTENCY_CONFLICT");
    const runs = await daemon.getJson(`/api/runs?eventId=${first.body.id}`);
    // recorder and second: one delivery each, not two.
    expect(runs.runs).toHaveLength(2);
  });

  it("serves every event's JSON Schema at /api/catalog", async () => {
    const catalog = await daemon.getJson("/api/catalog");
    expect(Object.keys(catalog.events)).toHaveLength(80);
    expect(catalog.events["deal.close"]).toMatchObject({ type: "object", required: expect.arrayContaining(["did", "summa"]) });
  });

  it("lists plugins with their state and subscriptions", async () => {
    const { plugins } = await daemon.getJson("/api/plugins");
    const recorder = plugins.find((p: { name: string }) => p.name === "recorder");
    expect(recorder).toMatchObject({ state: "loaded", version: 1, events: ["deal.close", "client.import"], lastError: null });
  });

  it("reports a plugin that imports a Node built-in as failed, naming the file, while the others serve", async () => {
    const { plugins } = await daemon.getJson("/api/plugins");
    const usesFs = plugins.find((p: { name: string }) => p.name === "uses-fs");
    expect(usesFs).toMatchObject({ state: "failed", version: null, events: [] });
    expect(usesFs.lastError.code).toBe("HOOKD_PLUGIN_NODE_BUILTIN");
    expect(usesFs.lastError.message).toContain("plugins/uses-fs.ts");
    expect(usesFs.lastError.location).toMatch(/^plugins\/uses-fs\.ts:1:\d+$/);
    const logged = await daemon.waitForLog((l) => l.plugin === "uses-fs" && l.code === "HOOKD_PLUGIN_NODE_BUILTIN");
    expect(logged.level).toBe(50);
    // Its deal.close subscription never registered: recorder and second are the only runs.
    const { body } = await daemon.post("deal.close", { did: 5, autor: 1, summa: "1", status: "won" });
    await daemon.waitForLog((l) => l.msg === "second handled" && l.eventId === body.id);
    const runs = await daemon.getJson(`/api/runs?eventId=${body.id}`);
    expect(runs.runs.map((r: { plugin: string }) => r.plugin).sort()).toEqual(["recorder", "second"]);
  });

  it("answers health and readiness", async () => {
    expect((await daemon.fetch("/healthz")).status).toBe(200);
    expect(await daemon.getJson("/readyz")).toEqual({ status: "ready" });
  });
});

describe("daemon restarts", () => {
  let sink: LocalServer;
  let sinkUrl = "";
  let hang = true;
  /** Requests held unanswered: each is a run in flight. */
  let hung = 0;
  const received: Array<{ did: number; eventId: string; attempt: number }> = [];

  beforeAll(async () => {
    sink = await startLocalServer(async (request, response) => {
      const body = await readBody(request);
      if (hang) return void hung++; // never answers: the run is still in flight when the daemon dies
      received.push(JSON.parse(body));
      response.end("ok");
    });
    sinkUrl = sink.origin;
  });
  afterAll(() => sink.close());

  it("keeps ctx.kv across a restart", async () => {
    const project = new TestProject({ fixtures: ["basic"] });
    try {
      const first = await new TestDaemon(project).start();
      const written = await first.post("test.ping", { n: 1 });
      await first.waitForLog((l) => l.msg === "kv written" && l.eventId === written.body.id);
      await first.stop();
      const second = await new TestDaemon(project).start();
      const read = await second.post("test.ping", { n: 2 });
      const line = await second.waitForLog((l) => l.msg === "kv read" && l.eventId === read.body.id);
      expect(line.answer).toEqual({ value: 42, at: written.body.id });
      expect(line.keys).toEqual(["answer"]);
      await second.stop();
    } finally {
      project.remove();
    }
  });

  it("runs after a crash the handlers of events it accepted but had not finished", async () => {
    const project = new TestProject({ fixtures: ["sink"] });
    try {
      const env = { SINK_URL: sinkUrl };
      const first = await new TestDaemon(project).start({ env });
      const hungBefore = hung;
      const ids: string[] = [];
      for (let did = 1; did <= 5; did++) {
        const { status, body } = await first.post("deal.close", { did, autor: 1, summa: "1", status: "won" });
        expect(status).toBe(202);
        ids.push(body.id);
      }
      // Once every run is in flight (hanging on the sink), crash the daemon.
      await waitUntil(() => hung - hungBefore >= 5, { what: () => `5 runs hanging on the sink (have ${hung - hungBefore})` });
      await first.kill();
      expect(received).toHaveLength(0);

      hang = false;
      const second = await new TestDaemon(project).start({ env });
      await second.waitForLogs((l) => l.msg === "forwarded", 5, 15_000);
      expect(new Set(received.map((r) => r.eventId))).toEqual(new Set(ids));
      // The log line comes from inside the run; its outcome commits just after it.
      let statuses: string[] = [];
      await waitUntil(
        async () => {
          statuses = (await second.getJson("/api/runs?plugin=forwarder")).runs.map((r: { status: string }) => r.status);
          return statuses.length === 5 && statuses.every((s) => s === "done");
        },
        { timeoutMs: 30_000, what: () => `5 done runs (have ${JSON.stringify(statuses)})` },
      ).catch(() => undefined); // the assertion says what is left
      expect(statuses).toEqual(["done", "done", "done", "done", "done"]);
      await second.stop();
    } finally {
      project.remove();
    }
  });
});

describe("HOOKD_EXIT_WITH_PARENT", () => {
  it("stops the daemon, draining, once the process that started it is gone", async () => {
    const project = new TestProject({ fixtures: ["basic"] });
    // A parent that starts hookd, prints its pid once it is ready, then dies without stopping it.
    // Its log goes to a file, not a pipe: a pipe whose reader died would end it by itself.
    const logFile = `${project.dir}/daemon.log`;
    const parentScript = `
      const { spawn } = require("node:child_process");
      const fs = require("node:fs");
      const log = fs.openSync(${JSON.stringify(logFile)}, "w");
      const child = spawn(process.execPath, [${JSON.stringify(BIN)}, "start", "--config", ${JSON.stringify(`${project.dir}/events.config.ts`)}],
        { env: { ...process.env, HOOKD_PORT: "0", HOOKD_EXIT_WITH_PARENT: process.env.EXIT_WITH_PARENT ?? "1", NODE_OPTIONS: "" }, stdio: ["ignore", log, log] });
      const poll = setInterval(() => {
        if (fs.readFileSync(${JSON.stringify(logFile)}, "utf8").includes("hookd ready")) { console.log("PID " + child.pid); process.exit(0); }
      }, 50);
      setTimeout(() => { clearInterval(poll); child.kill("SIGKILL"); process.exit(1); }, 30000);
    `;
    const parent = await runProcess(process.execPath, ["-e", parentScript], { timeoutMs: 45_000 });
    const pid = Number(/PID (\d+)/.exec(parent.stdout)?.[1]);
    expect(pid).toBeGreaterThan(0);
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    // Gone within the bound, or still alive when it passed (asserted below, after a SIGKILL).
    await waitUntil(() => !alive(), { timeoutMs: 15_000, intervalMs: 100 }).catch(() => undefined);
    const stillAlive = alive();
    if (stillAlive) process.kill(pid, "SIGKILL");
    const log = (await import("node:fs")).readFileSync(logFile, "utf8");
    project.remove();
    expect(stillAlive).toBe(false);
    // It stopped the graceful way, not by a signal or an error.
    expect(log).toContain("hookd stopped");
  });
});
