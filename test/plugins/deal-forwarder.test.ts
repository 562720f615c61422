// plugins/deal-forwarder.ts in a real isolate, through the plugin authors' test kit.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadPlugin, type PluginHarness } from "hookd/testing";

const FORWARD_URL = "https://crm.example.com/deals";

describe("plugins/deal-forwarder.ts", () => {
  let plugin: PluginHarness;
  afterEach(() => plugin.close());

  describe("without DEAL_FORWARD_URL", () => {
    beforeEach(async () => {
      plugin = await loadPlugin("plugins/deal-forwarder.ts", { kv: { "closed-total:3": 100.5 } });
    });

    it("logs the closed deal and adds its amount to the author's running total", async () => {
      const run = await plugin.send("deal.close", { did: 12, autor: 3, summa: "1500.25", status: "won" });
      expect(run.error).toBeUndefined();
      expect(run.logs).toEqual([{ level: "info", msg: "deal closed", fields: { did: 12, summa: "1500.25", status: "won" } }]);
      expect(run.kvWrites).toEqual([{ op: "set", key: "closed-total:3", value: 1600.75 }]);
      expect(run.fetches).toEqual([]);
    });

    it("takes ids as a PHP form sends them (strings) and keeps totals per author", async () => {
      await plugin.send("deal.close", { did: "13", autor: "4", summa: "10", status: "won" });
      await plugin.send("deal.close", { did: "14", autor: "4", summa: "0.10", status: "won" });
      expect(plugin.kv.get("closed-total:4")).toBe(10.1);
      expect(plugin.kv.get("closed-total:3")).toBe(100.5);
    });

    it("is refused a payload the catalog rejects, before any run", async () => {
      // @ts-expect-error summa is required by the catalog
      await expect(plugin.send("deal.close", { did: 1, autor: 2, status: "won" })).rejects.toMatchObject({
        code: "HOOKD_EVENT_INVALID",
        issues: [expect.objectContaining({ path: ["summa"] })],
      });
      expect(plugin.kv.writes).toEqual([]);
    });
  });

  describe("with DEAL_FORWARD_URL", () => {
    beforeEach(async () => {
      plugin = await loadPlugin("plugins/deal-forwarder.ts", { secrets: { DEAL_FORWARD_URL: FORWARD_URL } });
    });

    it("forwards the deal as JSON with the event id", async () => {
      plugin.fetch.respond(FORWARD_URL, { status: 201, json: { ok: true } });
      const run = await plugin.send("deal.close", { did: 21, autor: 5, summa: 99, status: "won" }, { id: "evt-21" });
      expect(run.ok).toBe(true);
      expect(run.fetches).toHaveLength(1);
      const [call] = run.fetches;
      expect(call).toMatchObject({ method: "POST", url: FORWARD_URL, status: 201, headers: { "content-type": "application/json" } });
      expect(JSON.parse(call!.body!)).toEqual({ deal: 21, amount: "99", status: "won", eventId: "evt-21" });
    });

    it("fails the run on a non-2xx answer, so delivery retries it, pointing at the throw", async () => {
      plugin.fetch.respond(FORWARD_URL, { status: 503, body: "down for maintenance" });
      const run = await plugin.send("deal.close", { did: 22, autor: 5, summa: "1", status: "won" });
      expect(run.ok).toBe(false);
      expect(run.error).toMatchObject({ code: "HOOKD_RUN_FAILED", retriable: true });
      expect(run.error!.message).toContain("forwarding deal 22 failed with HTTP 503");
      expect(run.error!.location).toMatch(/^plugins\/deal-forwarder\.ts:\d+:\d+$/);
      // The running total was kept before the forward failed: a retry adds it again, which the
      // plugin accepts as at-least-once delivery.
      expect(run.kvWrites).toHaveLength(1);
    });

    it("fails with HOOKD_FETCH_FAILED when the target does not answer", async () => {
      const run = await plugin.send("deal.close", { did: 23, autor: 5, summa: "1", status: "won" });
      expect(run.error?.code).toBe("HOOKD_FETCH_FAILED");
      expect(run.fetches).toMatchObject([{ url: FORWARD_URL, status: undefined }]);
    });
  });

  it("cannot reach a URL outside its declared fetch patterns", async () => {
    plugin = await loadPlugin("plugins/deal-forwarder.ts", { secrets: { DEAL_FORWARD_URL: "https://attacker.test/collect" } });
    plugin.fetch.respond("https://attacker.test/*", { status: 200 });
    const run = await plugin.send("deal.close", { did: 24, autor: 5, summa: "1", status: "won" });
    expect(run.error?.code).toBe("HOOKD_FETCH_NOT_ALLOWED");
    expect(run.fetches).toEqual([]);
  });
});
