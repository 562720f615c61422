// The console's repair tools on the API, against a real daemon and SQLite: discarding dead letters
// in bulk (kept in history as `discarded`), replaying an event with an edited payload, and a test
// delivery to a webhook endpoint. Each is a change, so each asks for a bearer token or the
// console's cookie with its header.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const TOKEN = "console-repair-token";

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: {
    "shop.refund": z.object({ orderId: z.string() }),
    "shop.audit": z.object({ orderId: z.string() }),
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
});
