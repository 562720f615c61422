// The console's repair tools on the API, against a real daemon and SQLite: discarding dead letters
// in bulk (kept in history as `discarded`), replaying an event with an edited payload, and a test
// delivery to a webhook endpoint. Each is a change, so each asks for a bearer token or the
// console's cookie with its header.
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storedEventCount, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const TOKEN = "console-repair-token";
const SECRET = `whsec_${Buffer.from("a test delivery's signing key, 32+").toString("base64")}`;

const received: Array<{ url: string; method: string; headers: Record<string, string>; body: string }> = [];
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    received.push({ url: request.url ?? "", method: request.method ?? "", headers: request.headers as Record<string, string>, body: Buffer.concat(chunks).toString("utf8") });
    response.statusCode = request.url === "/down" ? 503 : 200;
    response.setHeader("content-type", "application/json");
    response.end(request.url === "/down" ? "crm offline" : '{"crm":"test seen"}');
  });
});
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: {
    "shop.refund": z.object({ orderId: z.string() }),
    "shop.audit": z.object({ orderId: z.string() }),
    "shop.order": z.object({ orderId: z.string(), qty: z.number().int().positive() }),
  },
  webhooks: [{ on: "shop.order", url: "${origin}/hook", secret: "${SECRET}" }, { on: "shop.audit", url: "${origin}/down" }],
  webhookDelivery: { retryScheduleMs: [50] },
  delivery: { backoffMs: 50, maxBackoffMs: 100, maxAttempts: 2 },
});
`;
const PLUGIN = `import { NonRetriableError, on } from "hookd";

on("shop.refund", async (refund) => {
  throw new NonRetriableError("refund " + refund.orderId + ": the desk is closed");
});

on("shop.audit", async (audit) => {
  throw new NonRetriableError("audit " + audit.orderId + " refused");
});

on("shop.order", async (order, ctx) => {
  ctx.log.info({ qty: order.qty, source: ctx.event.source.channel }, "order " + order.orderId + " reserved");
});
`;

type Run = { id: number; kind: string; status: string; eventName: string; lastError: { code: string } | null };

describe("the console's repair API", () => {
  const project = new TestProject({ config: CONFIG, files: { "shop.ts": PLUGIN } });
  const daemon = new TestDaemon(project);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const json = { "content-type": "application/json" };
  let cookie = "";

  beforeAll(async () => {
    await daemon.start({ env: { HOOKD_TOKEN: TOKEN } });
    const login = await daemon.fetch(`/?token=${TOKEN}`, { redirect: "manual" });
    cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
  }, 60_000);
  afterAll(async () => {
    await daemon.stop();
    project.remove();
  });

  const runsOf = async (eventId: string): Promise<Run[]> => ((await daemon.getJson(`/api/runs?eventId=${eventId}`, auth)) as { runs: Run[] }).runs;
  const handlerRun = async (eventId: string): Promise<Run | undefined> => (await runsOf(eventId)).find((run) => run.kind === "handler");
  const post = (pathname: string, body: unknown, headers: Record<string, string> = auth) => daemon.fetch(pathname, { method: "POST", headers: { ...json, ...headers }, body: JSON.stringify(body) });

  it("discards every matching dead letter, keeps it in history as discarded, and never runs it again", async () => {
    const refunds = await Promise.all(["R-1", "R-2"].map((orderId) => daemon.post("shop.refund", { orderId }, auth)));
    const audit = await daemon.post("shop.audit", { orderId: "A-1" }, auth);
    const all = [...refunds, audit];
    await waitUntil(async () => (await Promise.all(all.map((e) => handlerRun(e.body.id)))).every((run) => run?.status === "dead"), {
      what: async () => `all three dead: ${JSON.stringify(await Promise.all(all.map((e) => runsOf(e.body.id))))}`,
    });

    // The cookie alone is no change; a bad filter is a 400 and discards nothing.
    expect((await post("/api/dead-letters/discard", {}, { cookie })).status).toBe(401);
    const bad = await post("/api/dead-letters/discard", { since: "not a time" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("HOOKD_HTTP_BAD_REQUEST");

    const discard = await post("/api/dead-letters/discard", { event: "shop.refund", code: "HOOKD_RUN_FAILED" }, { cookie, "x-hookd-console": "1" });
    expect(discard.status).toBe(200);
    const answer = (await discard.json()) as { discarded: number; ids: number[]; more: boolean };
    const refundRuns = (await Promise.all(refunds.map((r) => handlerRun(r.body.id)))).map((run) => run!);
    expect(answer).toEqual({ discarded: 2, ids: expect.arrayContaining(refundRuns.map((run) => run.id)), more: false });

    const discarded = ((await daemon.getJson("/api/runs?status=discarded", auth)) as { runs: Run[] }).runs;
    expect(discarded.map((run) => [run.eventName, run.status, run.lastError?.code]).sort()).toEqual([
      ["shop.refund", "discarded", "HOOKD_RUN_FAILED"],
      ["shop.refund", "discarded", "HOOKD_RUN_FAILED"],
    ]);
    expect((await handlerRun(audit.body.id))!.status).toBe("dead");
    const metrics = await (await daemon.fetch("/metrics", { headers: auth })).text();
    expect(metrics).toMatch(/^hookd_deliveries\{status="discarded"\} 2$/m);

    // Finished: no bulk or single retry takes it back.
    const retryAll = (await (await post("/api/dead-letters/retry", { event: "shop.refund" })).json()) as { retried: number };
    expect(retryAll.retried).toBe(0);
    const retryOne = await post(`/api/runs/${refundRuns[0]!.id}/retry`, {});
    expect(retryOne.status).toBe(409);
    expect((await handlerRun(refunds[0]!.body.id))!.status).toBe("discarded");
  }, 60_000);

  it("replays an event with an edited payload as a new event beside the original, checked against the catalog", async () => {
    const original = await daemon.post("shop.order", { orderId: "O-9", qty: 2 }, auth);
    expect(original.status).toBe(202);
    await waitUntil(async () => (await runsOf(original.body.id)).find((run) => run.kind === "handler")?.status === "done", { what: "the original order's run done" });

    const before = await storedEventCount(daemon, auth);
    expect((await post(`/api/events/${original.body.id}/replay`, { payload: { orderId: "O-9", qty: 5 } }, { cookie })).status).toBe(401);
    const invalid = await post(`/api/events/${original.body.id}/replay`, { payload: { orderId: "O-9", qty: -1 } });
    expect(invalid.status).toBe(400);
    const refusal = (await invalid.json()) as { error: { code: string; issues?: Array<{ path: string[] }> } };
    expect(refusal.error.code).toBe("HOOKD_EVENT_INVALID");
    expect(refusal.error.issues?.map((issue) => issue.path.join("."))).toEqual(["qty"]);
    expect((await post(`/api/events/${original.body.id}/replay`, { orderId: "O-9" })).status).toBe(400);
    const unknown = await post("/api/events/no-such-event/replay", { payload: { orderId: "O-9", qty: 5 } });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("HOOKD_EVENT_NOT_FOUND");
    expect(await storedEventCount(daemon, auth)).toBe(before);

    const replay = await post(`/api/events/${original.body.id}/replay`, { payload: { orderId: "O-9", qty: 5 } }, { cookie, "x-hookd-console": "1" });
    expect(replay.status).toBe(202);
    const replayed = (await replay.json()) as { id: string; parentId: string };
    expect(replayed.parentId).toBe(original.body.id);
    expect(replayed.id).not.toBe(original.body.id);
    await waitUntil(async () => (await runsOf(replayed.id)).find((run) => run.kind === "handler")?.status === "done", { what: async () => `the replayed order's run done: ${JSON.stringify(await runsOf(replayed.id))}` });

    const detail = (await daemon.getJson(`/api/events/${replayed.id}`, auth)) as { event: { source: string; parentId: string; payload: unknown } };
    expect(detail.event).toMatchObject({ source: "replay", parentId: original.body.id, payload: { orderId: "O-9", qty: 5 } });
    const parent = (await daemon.getJson(`/api/events/${original.body.id}`, auth)) as { event: { payload: unknown }; children: Array<{ id: string; source: string }> };
    expect(parent.event.payload).toEqual({ orderId: "O-9", qty: 2 });
    expect(parent.children).toEqual([expect.objectContaining({ id: replayed.id, source: "replay" })]);
    // The handler ran with the edit.
    const run = (await runsOf(replayed.id)).find((candidate) => candidate.kind === "handler")!;
    const runDetail = (await daemon.getJson(`/api/runs/${run.id}`, auth)) as { logs: Array<{ msg?: string; message?: string; fields?: unknown }> };
    expect(JSON.stringify(runDetail.logs)).toContain('"qty":5');
  }, 60_000);

  it("sends one signed hookd.test delivery to an endpoint now and answers what came back, storing no delivery", async () => {
    // The earlier events' webhook deliveries finished first, so only the test could change a count.
    const unfinished = async () => ((await daemon.getJson("/api/runs?status=pending", auth)) as { runs: Run[] }).runs.length + ((await daemon.getJson("/api/runs?status=running", auth)) as { runs: Run[] }).runs.length;
    await waitUntil(async () => (await unfinished()) === 0, { what: async () => `${await unfinished()} runs still pending or running` });
    const { webhooks } = (await daemon.getJson("/api/webhooks", auth)) as { webhooks: Array<{ id: string; url: string; consecutiveFailures?: number }> };
    const hook = webhooks.find((w) => w.url === `${origin}/hook`)!;
    const down = webhooks.find((w) => w.url === `${origin}/down`)!;
    const runsBefore = ((await daemon.getJson("/api/runs?limit=1000", auth)) as { runs: unknown[] }).runs.length;
    received.length = 0;

    expect((await daemon.fetch(`/api/webhooks/${hook.id}/test`, { method: "POST", headers: { cookie } })).status).toBe(401);
    expect(received).toHaveLength(0);
    const unknown = await daemon.fetch("/api/webhooks/ep_0000000000000000/test", { method: "POST", headers: auth });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("HOOKD_WEBHOOK_NOT_FOUND");

    const sent = await daemon.fetch(`/api/webhooks/${hook.id}/test`, { method: "POST", headers: { cookie, "x-hookd-console": "1" } });
    expect(sent.status).toBe(200);
    const answer = (await sent.json()) as { ok: boolean; status: number; latencyMs: number; response: string };
    expect(answer).toMatchObject({ ok: true, status: 200, response: '{"crm":"test seen"}' });
    expect(answer.latencyMs).toBeGreaterThan(0);
    expect(received).toHaveLength(1);
    const message = received[0]!;
    expect(message.headers["hookd-event"]).toBe("hookd.test");
    // Signed as real deliveries are: the receiver's Standard Webhooks check accepts it.
    expect(new Webhook(SECRET).verify(message.body, message.headers)).toMatchObject({ type: "hookd.test", endpoint: hook.id });

    const failing = (await (await daemon.fetch(`/api/webhooks/${down.id}/test`, { method: "POST", headers: auth })).json()) as { ok: boolean; status: number; response: string; error: string };
    expect(failing).toMatchObject({ ok: false, status: 503, response: "crm offline", error: "answered 503" });

    const runsAfter = ((await daemon.getJson("/api/runs?limit=1000", auth)) as { runs: unknown[] }).runs.length;
    expect(runsAfter).toBe(runsBefore);
    const after = ((await daemon.getJson("/api/webhooks", auth)) as { webhooks: Array<{ id: string; consecutiveFailures?: number }> }).webhooks.find((w) => w.id === down.id)!;
    expect(after.consecutiveFailures ?? 0).toBe(down.consecutiveFailures ?? 0);
  }, 60_000);
});
