// The example plugin in a real isolate, with the limits of events.config.ts: events are
// validated against the catalog, ctx.fetch answers come from fakes, and every log line, kv
// write, emitted event and outbound call is recorded.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadPlugin, type PluginHarness } from "hookd/testing";

const CHAT_URL = "https://chat.example.com/hooks/sales";

describe("deal-alert", () => {
  let plugin: PluginHarness;
  beforeEach(async () => {
    plugin = await loadPlugin("plugins/deal-alert.ts", { secrets: { CHAT_URL } });
  });
  afterEach(() => plugin.close());

  it("tells the chat about a big deal", async () => {
    plugin.fetch.respond(CHAT_URL, { status: 200 });
    // PHP forms send ids as strings: the catalog turns them into numbers.
    const run = await plugin.send("deal.close", { did: "42", autor: "7", summa: "25000.00", status: "won" });
    expect(run.ok).toBe(true);
    expect(run.logs).toEqual([{ level: "info", msg: "big deal closed", fields: { did: 42, amount: 25000 } }]);
    expect(run.fetches).toHaveLength(1);
    expect(JSON.parse(run.fetches[0]!.body!)).toEqual({ text: "Deal 42 closed for 25000.00" });
    expect(plugin.kv.get("deal:42")).toEqual({ amount: 25000, status: "won", author: 7 });
  });

  it("keeps quiet about a small one", async () => {
    const run = await plugin.send("deal.close", { did: 43, autor: 7, summa: "99.90", status: "won" });
    expect(run.ok).toBe(true);
    expect(run.fetches).toEqual([]);
    expect(run.kvWrites).toEqual([{ op: "set", key: "deal:43", value: { amount: 99.9, status: "won", author: 7 } }]);
  });

  it("fails the run, so hookd retries it, when the chat is down", async () => {
    plugin.fetch.respond(CHAT_URL, { status: 503 });
    const run = await plugin.send("deal.close", { did: 44, autor: 7, summa: "50000", status: "won" });
    expect(run.error).toMatchObject({ code: "HOOKD_RUN_FAILED", retriable: true });
    expect(run.error?.location).toMatch(/^plugins\/deal-alert\.ts:\d+:\d+$/);
  });

  it("handles the project's own events", async () => {
    const run = await plugin.send("shop.order.paid", { orderId: "A-1", total: 12.5, currency: "EUR" });
    expect(run.logs.map((line) => line.msg)).toEqual(["order paid"]);
  });
});
