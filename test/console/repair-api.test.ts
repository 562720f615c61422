// The console's repair tools on the API, against a real daemon and SQLite: discarding dead letters
// in bulk (kept in history as `discarded`), replaying an event with an edited payload, and a test
// delivery to a webhook endpoint. Each is a change, so each asks for a bearer token or the
// console's cookie with its header.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storedEventCount, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const TOKEN = "console-repair-token";

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: {
    "shop.refund": z.object({ orderId: z.string() }),
    "shop.audit": z.object({ orderId: z.string() }),
    "shop.order": z.object({ orderId: z.string(), qty: z.number().int().positive() }),
  },
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

type Run = { id: number; status: string; eventName: string; lastError: { code: string } | null };

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
  const post = (pathname: string, body: unknown, headers: Record<string, string> = auth) => daemon.fetch(pathname, { method: "POST", headers: { ...json, ...headers }, body: JSON.stringify(body) });

  it("discards every matching dead letter, keeps it in history as discarded, and never runs it again", async () => {
    const refunds = await Promise.all(["R-1", "R-2"].map((orderId) => daemon.post("shop.refund", { orderId }, auth)));
    const audit = await daemon.post("shop.audit", { orderId: "A-1" }, auth);
    const all = [...refunds, audit];
    await waitUntil(async () => (await Promise.all(all.map((e) => runsOf(e.body.id)))).every((runs) => runs[0]?.status === "dead"), {
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
    const refundRuns = (await Promise.all(refunds.map((r) => runsOf(r.body.id)))).map((runs) => runs[0]!);
    expect(answer).toEqual({ discarded: 2, ids: expect.arrayContaining(refundRuns.map((run) => run.id)), more: false });

    const discarded = ((await daemon.getJson("/api/runs?status=discarded", auth)) as { runs: Run[] }).runs;
    expect(discarded.map((run) => [run.eventName, run.status, run.lastError?.code]).sort()).toEqual([
      ["shop.refund", "discarded", "HOOKD_RUN_FAILED"],
      ["shop.refund", "discarded", "HOOKD_RUN_FAILED"],
    ]);
    expect((await runsOf(audit.body.id))[0]!.status).toBe("dead");
    const metrics = await (await daemon.fetch("/metrics", { headers: auth })).text();
    expect(metrics).toMatch(/^hookd_deliveries\{status="discarded"\} 2$/m);

    // Finished: no bulk or single retry takes it back.
    const retryAll = (await (await post("/api/dead-letters/retry", { event: "shop.refund" })).json()) as { retried: number };
    expect(retryAll.retried).toBe(0);
    const retryOne = await post(`/api/runs/${refundRuns[0]!.id}/retry`, {});
    expect(retryOne.status).toBe(409);
    expect((await runsOf(refunds[0]!.body.id))[0]!.status).toBe("discarded");
  }, 60_000);

  it("replays an event with an edited payload as a new event beside the original, checked against the catalog", async () => {
    const original = await daemon.post("shop.order", { orderId: "O-9", qty: 2 }, auth);
    expect(original.status).toBe(202);
    await waitUntil(async () => (await runsOf(original.body.id))[0]?.status === "done", { what: "the original order's run done" });

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
    await waitUntil(async () => (await runsOf(replayed.id))[0]?.status === "done", { what: async () => `the replayed order's run done: ${JSON.stringify(await runsOf(replayed.id))}` });

    const detail = (await daemon.getJson(`/api/events/${replayed.id}`, auth)) as { event: { source: string; parentId: string; payload: unknown } };
    expect(detail.event).toMatchObject({ source: "replay", parentId: original.body.id, payload: { orderId: "O-9", qty: 5 } });
    const parent = (await daemon.getJson(`/api/events/${original.body.id}`, auth)) as { event: { payload: unknown }; children: Array<{ id: string; source: string }> };
    expect(parent.event.payload).toEqual({ orderId: "O-9", qty: 2 });
    expect(parent.children).toEqual([expect.objectContaining({ id: replayed.id, source: "replay" })]);
    // The handler ran with the edit.
    const run = (await runsOf(replayed.id))[0]!;
    const runDetail = (await daemon.getJson(`/api/runs/${run.id}`, auth)) as { logs: Array<{ msg?: string; message?: string; fields?: unknown }> };
    expect(JSON.stringify(runDetail.logs)).toContain('"qty":5');
  }, 60_000);
});
