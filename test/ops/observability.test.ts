// What an operator watches on a running daemon: /metrics, /api/status and `hookd status`,
// and the event and run history behind /api/events and /api/runs.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { pause, waitUntil } from "../helpers/wait.ts";
import { parsePrometheusText, sampleValue, sumOf, type Exposition } from "./prometheus-text.ts";

const run = promisify(execFile);

const config = (sinkUrl: string) => `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: {
    ...catalog,
    "test.ping": z.object({ n: z.number().int() }),
    "test.page": z.object({ n: z.number().int() }),
    "test.slow": z.object({}),
    "test.hook": z.object({ n: z.number().int() }),
  },
  webhooks: [{ on: "test.hook", url: ${JSON.stringify(sinkUrl)}, method: "POST" }],
  webhookDelivery: { retryScheduleMs: [20, 20] },
  delivery: { backoffMs: 20, maxBackoffMs: 20, maxAttempts: 3 },
});
`;

const PLUGINS = {
  "counter.ts": `
import { on } from "hookd";
on("deal.close", (deal, ctx) => ctx.log.info({ did: deal.did }, "counter ran"));
on("test.page", (page, ctx) => ctx.log.info({ n: page.n }, "page ran"));
`,
  // n=7 fails and is retried once, then dead; n=13 is dead at once.
  "failer.ts": `
import { on, plugin, NonRetriableError } from "hookd";
plugin({ retry: { maxAttempts: 2, backoffMs: 20, maxBackoffMs: 20 } });
on("test.ping", (ping) => {
  if (ping.n === 13) throw new NonRetriableError("thirteen is unlucky");
  if (ping.n === 7) throw new Error("seven fails");
});
`,
  // Fails once, then waits an hour for its retry: a pending run that stays in the queue.
  "patient.ts": `
import { on, plugin } from "hookd";
plugin({ retry: { maxAttempts: 5, backoffMs: 3600000, maxBackoffMs: 3600000 } });
on("test.slow", () => { throw new Error("not yet"); });
`,
};

describe("operations: metrics, status and history", () => {
  const project = new TestProject({ files: PLUGINS });
  const daemon = new TestDaemon(project);
  // The webhook endpoint: the first request fails with 500, the others succeed.
  const hooks: string[] = [];
  const sink: Server = createServer((request, response) => {
    request.resume().on("end", () => {
      hooks.push(String(request.url));
      response.writeHead(hooks.length === 1 ? 500 : 200).end();
    });
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    const { port } = sink.address() as AddressInfo;
    writeFileSync(path.join(project.dir, "events.config.ts"), config(`http://127.0.0.1:${port}/hook`));
    await daemon.start();
  });
  afterAll(async () => {
    await daemon.stop();
    await new Promise((resolve) => sink.close(resolve));
    project.remove();
  });

  const scrape = async (): Promise<Exposition> => {
    const response = await daemon.fetch("/metrics");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(await response.text());
  };

  it("serves /metrics as Prometheus text with every documented family", async () => {
    const metrics = await scrape();
    const expected: Record<string, string> = {
      hookd_events_accepted_total: "counter",
      hookd_events_rejected_total: "counter",
      hookd_runs_total: "counter",
      hookd_run_duration_seconds: "histogram",
      hookd_run_retries_total: "counter",
      hookd_deliveries: "gauge",
      hookd_queue_depth: "gauge",
      hookd_queue_oldest_pending_age_seconds: "gauge",
      hookd_dead_letters: "gauge",
      hookd_plugin_reloads_total: "counter",
      hookd_config_reloads_total: "counter",
      hookd_sandbox_restarts_total: "counter",
      hookd_isolate_heap_bytes: "gauge",
      hookd_plugins: "gauge",
      hookd_webhook_deliveries_total: "counter",
      hookd_webhook_delivery_duration_seconds: "histogram",
      hookd_process_resident_memory_bytes: "gauge",
    };
    for (const [name, type] of Object.entries(expected)) expect(metrics.families.get(name)?.type, name).toBe(type);
    expect(sampleValue(metrics, "hookd_plugins", { state: "loaded" })).toBe(3);
    expect(sampleValue(metrics, "hookd_plugin_reloads_total", { plugin: "counter", outcome: "ok" })).toBe(1);
    // Read from the sandbox process: every loaded plugin's isolate has a heap of its own.
    for (const plugin of ["counter", "failer"]) expect(sumOf(metrics, "hookd_isolate_heap_bytes", { plugin })).toBeGreaterThan(100_000);
  });

  it("counts accepted and rejected events by name and reason", async () => {
    const before = await scrape();
    for (let did = 1; did <= 3; did++) expect((await daemon.post("deal.close", { did, autor: 1, summa: "1", status: "won" })).status).toBe(202);
    expect((await daemon.post("deal.close", { did: "not a number" })).status).toBe(400);
    expect((await daemon.post("no.such.event", {})).status).toBe(404);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => sumOf(after, name, labels) - sumOf(before, name, labels);
    expect(delta("hookd_events_accepted_total", { event: "deal.close", source: "http" })).toBe(3);
    expect(delta("hookd_events_rejected_total", { event: "deal.close", reason: "invalid" })).toBe(1);
    expect(delta("hookd_events_rejected_total", { reason: "unknown" })).toBe(1);
  });

  it("counts runs by plugin, handler and outcome and observes their duration", async () => {
    const labels = { plugin: "counter", kind: "handler", handler: "deal.close", outcome: "done" };
    await daemon.post("deal.close", { did: 99, autor: 1, summa: "1", status: "won" });
    // The three of the test above and this one, all done.
    await daemon.waitForLogs((l) => l.msg === "counter ran", 4);
    const after = await untilScrape(scrape, (m) => sumOf(m, "hookd_runs_total", labels) === 4);
    expect(sumOf(after, "hookd_run_duration_seconds_count", { plugin: "counter", handler: "deal.close" })).toBe(4);
    expect(sumOf(after, "hookd_run_duration_seconds_sum", { plugin: "counter", handler: "deal.close" })).toBeGreaterThan(0);
    expect(sumOf(after, "hookd_runs_total", { plugin: "counter", outcome: "retry" })).toBe(0);
  });

  it("counts retries by backoff and by hand, and dead letters", async () => {
    const before = await scrape();
    const retries = (m: Exposition, trigger: string) => sumOf(m, "hookd_run_retries_total", { plugin: "failer", trigger });
    const dead = (m: Exposition) => sumOf(m, "hookd_runs_total", { plugin: "failer", outcome: "dead" });
    await daemon.post("test.ping", { n: 7 });
    const { body: thirteen } = await daemon.post("test.ping", { n: 13 });
    let after = await untilScrape(scrape, (m) => dead(m) - dead(before) === 2);
    expect(retries(after, "backoff") - retries(before, "backoff")).toBe(1);
    expect(sampleValue(after, "hookd_dead_letters")! - sampleValue(before, "hookd_dead_letters")!).toBe(2);

    const [deadRun] = (await daemon.getJson(`/api/runs?eventId=${thirteen.id}&plugin=failer`)).runs;
    const retried = await daemon.fetch(`/api/runs/${deadRun.id}/retry`, { method: "POST" });
    expect(retried.status).toBe(202);
    after = await untilScrape(scrape, (m) => dead(m) - dead(before) === 3);
    expect(retries(after, "manual") - retries(before, "manual")).toBe(1);
  });

  it("counts webhook deliveries by endpoint and outcome", async () => {
    await daemon.post("test.hook", { n: 1 });
    await daemon.post("test.hook", { n: 2 });
    const outcome = (m: Exposition, o: string) => sumOf(m, "hookd_webhook_deliveries_total", { outcome: o });
    const metrics = await untilScrape(scrape, (m) => outcome(m, "ok") === 2);
    expect(hooks).toHaveLength(3);
    expect(outcome(metrics, "retry")).toBe(1);
    expect(outcome(metrics, "dead")).toBe(0);
    const endpoints = new Set(metrics.samples.filter((s) => s.name === "hookd_webhook_deliveries_total").map((s) => s.labels.endpoint));
    expect([...endpoints]).toEqual([expect.stringMatching(/^ep_[0-9a-f]{16}$/)]);
    expect(sumOf(metrics, "hookd_webhook_delivery_duration_seconds_count")).toBe(3);
  });

  it("reports the queue depth and the age of the oldest pending run", async () => {
    const { body } = await daemon.post("test.slow", {});
    // The first attempt failed; its retry waits an hour: pending, with an error.
    await untilValue(async () => {
      const [waiting] = (await daemon.getJson(`/api/runs?eventId=${body.id}&status=failed`)).runs;
      return waiting;
    });
    const metrics = await untilScrape(scrape, (m) => (sampleValue(m, "hookd_queue_oldest_pending_age_seconds") ?? 0) > 0);
    expect(sampleValue(metrics, "hookd_queue_depth")).toBeGreaterThanOrEqual(1);
    expect(sampleValue(metrics, "hookd_deliveries", { status: "pending" })).toBe(sampleValue(metrics, "hookd_queue_depth"));
  });

  it("shows plugins, queue, dead letters and recent errors in /api/status and `hookd status`", async () => {
    // The runs of the tests above: failer's dead letters and patient's waiting retry.
    await untilValue(async () => ((await daemon.getJson("/api/status")).queue.dead >= 2 ? true : undefined));
    const status = await daemon.getJson("/api/status");
    expect(status).toMatchObject({ ready: true, pid: daemon.pid, sandbox: { running: true, restarts: 0 } });
    expect(status.plugins.map((p: { name: string; state: string }) => `${p.name}:${p.state}`)).toEqual(["counter:loaded", "failer:loaded", "patient:loaded"]);
    expect(status.queue.pending).toBeGreaterThanOrEqual(1);
    expect(status.recentErrors.map((e: { message: string }) => e.message)).toEqual(
      expect.arrayContaining(["thirteen is unlucky", "seven fails", "not yet"].map((text) => expect.stringContaining(text))),
    );

    const { stdout } = await run(process.execPath, [BIN, "status", "--url", daemon.url], { cwd: project.dir, timeout: 30_000 });
    expect(stdout).toContain(`at ${daemon.url}: ready`);
    expect(stdout).toMatch(/queue: \d+ pending \(oldest waits \d+s\), \d+ running, \d+ dead letters, \d+ done/);
    expect(stdout).toMatch(/^ {2}failer +loaded +v1 +test\.ping$/m);
    expect(stdout).toMatch(/run \d+ dead +failer test\.ping attempt \d+\/\d+ {2}HOOKD_RUN_FAILED: thirteen is unlucky/);
    expect(stdout).toContain("patient test.slow attempt 1/5  HOOKD_RUN_FAILED: not yet");

    const json = await run(process.execPath, [BIN, "status", "--json", "--url", daemon.url], { cwd: project.dir, timeout: 30_000 });
    expect(JSON.parse(json.stdout).queue).toEqual(expect.objectContaining({ dead: status.queue.dead }));
  });

  it("pages through /api/events newest first, by name and time", async () => {
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await daemon.post("test.page", { n })).body.id);
    const cut = await distinctMoment();
    for (let n = 3; n < 5; n++) ids.push((await daemon.post("test.page", { n })).body.id);

    const seen: string[] = [];
    let next: string | null = "/api/events?name=test.page&limit=2";
    while (next !== null) {
      const page: { events: Array<{ id: string; name: string }>; next: string | null } = await daemon.getJson(next);
      expect(page.events.length).toBeLessThanOrEqual(2);
      expect(page.events.every((e) => e.name === "test.page")).toBe(true);
      seen.push(...page.events.map((e) => e.id));
      next = page.next;
    }
    expect(seen).toEqual([...ids].reverse());

    const since = await daemon.getJson(`/api/events?name=test.page&since=${new Date(cut).toISOString()}`);
    expect(since.events.map((e: { id: string }) => e.id)).toEqual([ids[4], ids[3]]);
    const until = await daemon.getJson(`/api/events?name=test.page&until=${cut}`);
    expect(until.events.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1], ids[0]]);
    expect((await daemon.fetch("/api/events?since=yesterday-ish")).status).toBe(400);
  });

  it("pages through /api/runs by plugin, event, status and time", async () => {
    const first = (await daemon.post("test.page", { n: 10 })).body.id;
    await daemon.waitForLog((l) => l.msg === "page ran" && l.eventId === first);
    const cut = await distinctMoment();
    const second = (await daemon.post("test.page", { n: 11 })).body.id;
    await daemon.waitForLog((l) => l.msg === "page ran" && l.eventId === second);

    const seen: number[] = [];
    let next: string | null = "/api/runs?plugin=counter&event=test.page&limit=1";
    while (next !== null) {
      const page: { runs: Array<{ id: number; plugin: string; eventName: string }>; next: string | null } = await daemon.getJson(next);
      expect(page.runs.every((r) => r.plugin === "counter" && r.eventName === "test.page")).toBe(true);
      seen.push(...page.runs.map((r) => r.id));
      next = page.next;
    }
    expect(seen.length).toBe(7); // the five of the events test and these two
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);

    const later = await daemon.getJson(`/api/runs?plugin=counter&event=test.page&since=${cut}`);
    expect(later.runs.map((r: { eventId: string }) => r.eventId)).toEqual([second]);
    const earlier = await daemon.getJson(`/api/runs?plugin=counter&event=test.page&until=${cut}&limit=1`);
    expect(earlier.runs.map((r: { eventId: string }) => r.eventId)).toEqual([first]);

    const dead = await daemon.getJson("/api/runs?status=dead&plugin=failer");
    expect(dead.runs.length).toBeGreaterThanOrEqual(2);
    expect(dead.runs.every((r: { status: string }) => r.status === "dead")).toBe(true);
  });

  it("rejects malformed Prometheus text (the reader used above can fail)", () => {
    expect(() => parsePrometheusText("# TYPE a counter\na 1\n")).not.toThrow();
    expect(() => parsePrometheusText("a 1\n")).toThrow(/undeclared family/);
    expect(() => parsePrometheusText('# TYPE a counter\na{x="1} 1\n')).toThrow(/line 2/);
    expect(() => parsePrometheusText("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")).toThrow(/decrease/);
  });
});

/** A millisecond no event shares: events before it are strictly older, after it not older. */
async function distinctMoment(): Promise<number> {
  await pause(5);
  const at = Date.now();
  await pause(5);
  return at;
}

async function untilScrape(scrape: () => Promise<Exposition>, done: (m: Exposition) => boolean): Promise<Exposition> {
  return untilValue(async () => {
    const metrics = await scrape();
    return done(metrics) ? metrics : undefined;
  });
}

/** The shared waitUntil, with this file's bound and pace. */
const untilValue = <T>(read: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> => waitUntil(read, { timeoutMs, intervalMs: 50 });
