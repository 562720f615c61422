// Traces out against a real OTLP/HTTP receiver (a server here that decodes the JSON the
// exporter posts): an event sent with a `traceparent` gives one trace, with the ingress span under
// the sender's span, a run span per attempt (plugin, attempt, outcome code), a fetch span and a
// webhook span under their runs, and the fetched server and the webhook receiver both get a
// `traceparent` of that trace. Without the OTEL_* switch the daemon exports nothing.
import { createServer, type IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

const spans: OtlpSpan[] = [];
const contentTypes: string[] = [];
const receiver = createServer(async (request, response) => {
  const body = await readBody(request);
  contentTypes.push(String(request.headers["content-type"]));
  if (request.url === "/v1/traces") {
    const decoded = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
    for (const resource of decoded.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans);
  }
  response.setHeader("content-type", "application/json");
  response.end("{}");
});
const seen: Array<{ path: string; traceparent: string | undefined }> = [];
const api = createServer((request, response) => {
  request.resume();
  seen.push({ path: request.url ?? "", traceparent: request.headers.traceparent as string | undefined });
  response.end("ok");
});
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
const otlp = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
const origin = `http://127.0.0.1:${(api.address() as { port: number }).port}`;

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: { "test.ping": z.object({ n: z.number().int() }) },
  webhooks: [{ on: "test.ping", url: "${origin}/hook" }],
  delivery: { backoffMs: 50, maxBackoffMs: 100, maxAttempts: 3 },
  sandbox: { fetchAllowHosts: ["127.0.0.1"] },
});
`;
const PLUGIN = `import { on, plugin } from "hookd";
plugin({ fetch: ["${origin}/*"] });
on("test.ping", async (ping, ctx) => {
  await ctx.fetch("${origin}/work?n=" + ping.n);
  if (ctx.event.attempt === 1) throw new Error("once");
});
`;

const attr = (span: OtlpSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value === undefined ? undefined : (Object.values(value)[0] as unknown);
};

afterAll(async () => {
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await new Promise<void>((resolve) => api.close(() => resolve()));
});

describe("OpenTelemetry export", () => {
  const project = new TestProject({ config: CONFIG, files: { "traced.ts": PLUGIN } });
  const daemon = new TestDaemon(project);

  beforeAll(async () => {
    await daemon.start({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_SERVICE_NAME: "hookd-test" }, timeoutMs: 60_000 });
  }, 90_000);
  afterAll(async () => {
    await daemon.stop();
    project.remove();
  });

  it("sends one trace per event with ingress, run, fetch and webhook spans, continuing the sender's traceparent", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const senderSpan = "00f067aa0ba902b7";
    const { status, body } = await daemon.post("test.ping", { n: 5 }, { traceparent: `00-${traceId}-${senderSpan}-01` });
    expect(status).toBe(202);
    const trace = await waitUntil(
      () => {
        const mine = spans.filter((s) => s.traceId === traceId);
        const runs = mine.filter((s) => s.name === "hookd.run" && attr(s, "hookd.run.kind") === "handler");
        return runs.length === 2 && mine.filter((s) => s.name.startsWith("hookd.fetch")).length === 2 && mine.some((s) => s.name.startsWith("hookd.webhook")) ? mine : undefined;
      },
      { what: () => `the spans of trace ${traceId}; received: ${JSON.stringify(spans.map((s) => [s.traceId, s.name]))}` },
    );
    const ingress = trace.find((s) => s.name === "hookd.ingress test.ping")!;
    expect(ingress.parentSpanId).toBe(senderSpan);
    expect(attr(ingress, "hookd.event.id")).toBe(body.id);

    const runs = trace.filter((s) => s.name === "hookd.run" && attr(s, "hookd.run.kind") === "handler").sort((a, b) => Number(attr(a, "hookd.attempt")) - Number(attr(b, "hookd.attempt")));
    for (const run of runs) {
      expect(run.parentSpanId).toBe(ingress.spanId);
      expect(attr(run, "hookd.plugin")).toBe("traced");
    }
    expect(runs.map((r) => [attr(r, "hookd.attempt"), attr(r, "hookd.outcome"), attr(r, "hookd.outcome.code")])).toEqual([
      [1, "failed", "HOOKD_RUN_FAILED"],
      [2, "done", undefined],
    ]);
    const fetches = trace.filter((s) => s.name === "hookd.fetch GET");
    expect(fetches.map((f) => f.parentSpanId).sort()).toEqual(runs.map((r) => r.spanId).sort());
    expect(attr(fetches[0]!, "http.response.status_code")).toBe(200);

    const webhookRun = trace.find((s) => s.name === "hookd.run" && attr(s, "hookd.run.kind") === "webhook")!;
    const webhook = trace.find((s) => s.name === "hookd.webhook POST")!;
    expect(webhookRun.parentSpanId).toBe(ingress.spanId);
    expect(webhook.parentSpanId).toBe(webhookRun.spanId);

    // The outbound requests carried the trace on.
    const work = seen.filter((r) => r.path.startsWith("/work"));
    expect(work).toHaveLength(2);
    for (const request of work) expect(request.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(seen.find((r) => r.path === "/hook")!.traceparent).toBe(`00-${traceId}-${webhook.spanId}-01`);
    expect(contentTypes.every((type) => type.startsWith("application/json"))).toBe(true);
  }, 90_000);

  it("starts a trace of its own for an event sent without a (valid) traceparent", async () => {
    const { body } = await daemon.post("test.ping", { n: 6 }, { traceparent: "garbage" });
    const ingress = await waitUntil(() => spans.find((s) => s.name === "hookd.ingress test.ping" && attr(s, "hookd.event.id") === body.id), { what: "the ingress span of the second event" });
    expect(ingress.parentSpanId ?? "").toBe("");
    await waitUntil(() => spans.some((s) => s.traceId === ingress.traceId && s.name === "hookd.run"), { what: "a run span in the new trace" });
  }, 90_000);
});

describe("without the OTEL switch", () => {
  const project = new TestProject({ config: CONFIG, files: { "traced.ts": PLUGIN } });
  const daemon = new TestDaemon(project);
  beforeAll(async () => {
    await daemon.start({ timeoutMs: 60_000 });
  }, 90_000);
  afterAll(async () => {
    await daemon.stop();
    project.remove();
  });

  it("sends no traceparent on fetches and webhooks", async () => {
    const before = seen.length;
    await daemon.post("test.ping", { n: 7 });
    await waitUntil(() => seen.slice(before).filter((r) => r.path.startsWith("/work?n=7")).length === 2 && seen.slice(before).some((r) => r.path === "/hook"), { what: "both fetches and the webhook of the untraced event" });
    expect(seen.slice(before).every((r) => r.traceparent === undefined)).toBe(true);
  }, 90_000);
});

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}
