// hookd/testing: a plugin in a real isolate with the project's catalog and limits, its ctx faked
// and recorded. Plugins live in a temporary project with its own events.config.ts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { loadPlugin, type PluginHarness, type RunReport } from "hookd/testing";

const CONFIG = `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: { ...catalog, "shop.order.paid": z.object({ orderId: z.string().min(1), total: z.number().nonnegative(), currency: z.string().length(3) }) },
  sandbox: { timeoutMs: 400, memoryMb: 32 },
});
`;

const PLUGINS: Record<string, string> = {
  "orders.ts": `import { on, plugin, NonRetriableError } from "hookd";
plugin({ fetch: ["https://shop.example.com/*"], secrets: ["SHOP_TOKEN", "UNSET_SECRET"] });
on("shop.order.paid", async (order, ctx) => {
  if (order.currency === "XXX") throw new NonRetriableError("no such currency");
  if (order.orderId === "loop") for (;;) {}
  if (order.orderId === "hang") await new Promise(() => {});
  if (order.orderId === "secrets") { ctx.log.info({ token: ctx.secrets.SHOP_TOKEN ?? null, unset: ctx.secrets.UNSET_SECRET ?? null, home: ctx.secrets.HOME ?? null }, "secrets"); return; }
  const response = await ctx.fetch("https://shop.example.com/orders/" + order.orderId, { headers: { authorization: "Bearer " + ctx.secrets.SHOP_TOKEN } });
  const body = await response.json<{ customer: number }>();
  await ctx.kv.set("paid:" + order.orderId, { total: order.total, customer: body.customer });
  await ctx.emit("task.add", { id: String(body.customer), autor: "7" });
  ctx.log.info({ orderId: order.orderId, attempt: ctx.event.attempt }, "order paid");
});
`,
  "hog.ts": `import { on } from "hookd";
on("task.add", () => {
  const keep: number[][] = [];
  for (;;) keep.push(new Array(1e6).fill(1));
});
`,
  "bad-emit.ts": `import { on } from "hookd";
on("task.add", async (_task, ctx) => {
  await ctx.emit("task.add", { id: "not a number" } as never);
});
`,
  "kv-lister.ts": `import { on } from "hookd";
on("task.add", async (task, ctx) => {
  await ctx.kv.delete("gone");
  ctx.log.info({ keys: await ctx.kv.list("user:") }, "listed");
});
`,
  "throws-at-load.ts": `import { on } from "hookd";
const settings = JSON.parse("{ not json");
on("task.add", () => settings);
`,
  "syntax-error.ts": `import { on } from "hookd";
on("task.add", () => {
`,
  "unknown-event.ts": `import { on } from "hookd";
on("shop.order.refunded" as never, () => undefined);
`,
};

const paid = (orderId: string, extra: Partial<{ total: number; currency: string }> = {}) => ({ orderId, total: 12.5, currency: "EUR", ...extra });

describe("hookd/testing", () => {
  let dir: string;
  const file = (name: string) => path.join(dir, "plugins", name);
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "hookd-kit-"));
    mkdirSync(path.join(dir, "plugins"));
    writeFileSync(path.join(dir, "events.config.ts"), CONFIG);
    for (const [name, source] of Object.entries(PLUGINS)) writeFileSync(file(name), source);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe("a plugin with fetch, kv and emit", () => {
    let plugin: PluginHarness;
    beforeAll(async () => {
      plugin = await loadPlugin(file("orders.ts"), { secrets: { SHOP_TOKEN: "t0k3n" } });
    });
    afterAll(() => plugin.close());
    afterEach(() => {
      plugin.fetch.reset();
      plugin.clearRecords();
    });

    it("validates the event against the project's own catalog, found beside the plugins folder", async () => {
      expect(plugin.manifest.events).toEqual(["shop.order.paid"]);
      await expect(plugin.send("shop.order.paid", { orderId: "", total: -1, currency: "EUR" })).rejects.toMatchObject({
        code: "HOOKD_EVENT_INVALID",
        issues: [expect.objectContaining({ path: ["orderId"] }), expect.objectContaining({ path: ["total"] })],
      });
      await expect(plugin.send("task.add", { id: 1, autor: 1 })).rejects.toMatchObject({ code: "HOOKD_RUN_NO_HANDLER" });
    });

    it("records outbound calls, kv writes, emitted events (as stored: validated and coerced) and logs", async () => {
      plugin.fetch.respond("https://shop.example.com/orders/*", (call) => ({ json: { customer: call.url.endsWith("/A-1") ? 501 : 0 } }));
      const run = await plugin.send("shop.order.paid", paid("A-1"), { attempt: 3 });
      expect(run.error).toBeUndefined();
      expect(run.fetches).toEqual([
        { method: "GET", url: "https://shop.example.com/orders/A-1", headers: { authorization: "Bearer t0k3n" }, body: undefined, status: 200 },
      ]);
      expect(run.kvWrites).toEqual([{ op: "set", key: "paid:A-1", value: { total: 12.5, customer: 501 } }]);
      expect(run.emitted).toEqual([{ name: "task.add", payload: { id: 501, autor: 7 }, id: expect.any(String) }]);
      expect(run.logs).toEqual([{ level: "info", msg: "order paid", fields: { orderId: "A-1", attempt: 3 } }]);
      expect(plugin.kv.entries()).toEqual({ "paid:A-1": { total: 12.5, customer: 501 } });
    });

    it("answers with the latest matching fake, for as many times as asked, then fails like a dead host", async () => {
      plugin.fetch.respond("https://shop.example.com/*", { json: { customer: 1 } });
      plugin.fetch.respond("https://shop.example.com/orders/B-*", { json: { customer: 2 } }, { times: 1 });
      expect((await plugin.send("shop.order.paid", paid("B-1"))).emitted[0]?.payload).toEqual({ id: 2, autor: 7 });
      expect((await plugin.send("shop.order.paid", paid("B-2"))).emitted[0]?.payload).toEqual({ id: 1, autor: 7 });
      plugin.fetch.reset();
      const unanswered = await plugin.send("shop.order.paid", paid("B-3"));
      expect(unanswered.error?.code).toBe("HOOKD_FETCH_FAILED");
      expect(unanswered.error?.message).toContain("no fake response for GET https://shop.example.com/orders/B-3");
      expect(unanswered.fetches).toHaveLength(1);
    });

    it("checks every redirect hop against the declared patterns, as the daemon does", async () => {
      plugin.fetch.respond("https://shop.example.com/orders/*", { status: 302, headers: { location: "https://elsewhere.test/steal" } });
      plugin.fetch.respond("https://elsewhere.test/*", { json: { customer: 9 } });
      const run = await plugin.send("shop.order.paid", paid("C-1"));
      expect(run.error?.code).toBe("HOOKD_FETCH_NOT_ALLOWED");
      expect(run.fetches.map((c) => c.url)).toEqual(["https://shop.example.com/orders/C-1"]);
    });

    it("stops a handler that loops or never settles at the config's wall time, and rebuilds its isolate", async () => {
      const looping = await plugin.send("shop.order.paid", paid("loop"));
      expect(looping.error).toMatchObject({ code: "HOOKD_RUN_TIMEOUT", retriable: true });
      const hanging = await plugin.send("shop.order.paid", paid("hang"));
      expect(hanging.error?.code).toBe("HOOKD_RUN_TIMEOUT");
      plugin.fetch.respond("https://shop.example.com/*", { json: { customer: 3 } });
      expect((await plugin.send("shop.order.paid", paid("D-1"))).ok).toBe(true);
    });

    it("dead-letters at once on NonRetriableError", async () => {
      const run = await plugin.send("shop.order.paid", paid("E-1", { currency: "XXX" }));
      expect(run.error).toMatchObject({ code: "HOOKD_RUN_FAILED", retriable: false, message: expect.stringContaining("no such currency") });
      expect(run.error?.location).toMatch(/^plugins\/orders\.ts:4:\d+$/);
    });

    it("hands the plugin only the secrets it declared and was given, never the environment's", async () => {
      process.env.UNSET_SECRET = "from-the-shell";
      try {
        const run = await plugin.send("shop.order.paid", paid("secrets"));
        expect(run.logs[0]?.fields).toEqual({ token: "t0k3n", unset: null, home: null });
      } finally {
        delete process.env.UNSET_SECRET;
      }
    });
  });

  it("stops a handler that exhausts the isolate's heap limit, and rebuilds the isolate", async () => {
    // A wall time far above what filling 16 MB takes, so only the heap limit can stop it.
    const plugin = await loadPlugin(file("hog.ts"), { limits: { memoryMb: 16, timeoutMs: 20_000 } });
    try {
      const run = await plugin.send("task.add", { id: 1, autor: 2 });
      expect(run.ok).toBe(false);
      expect(run.error?.code).toMatch(/^HOOKD_RUN_(MEMORY|ABORTED)$/);
      expect((await plugin.send("task.add", { id: 2, autor: 2 })).error?.code).toMatch(/^HOOKD_RUN_(MEMORY|ABORTED)$/);
    } finally {
      await plugin.close();
    }
  });

  it("fails the run when an emitted event does not match the catalog", async () => {
    const plugin = await loadPlugin(file("bad-emit.ts"));
    try {
      const run = await plugin.send("task.add", { id: 1, autor: 2 });
      expect(run.error?.code).toBe("HOOKD_EVENT_INVALID");
      expect(run.emitted).toEqual([]);
    } finally {
      await plugin.close();
    }
  });

  it("seeds kv, lists keys in order by prefix and records deletes", async () => {
    const plugin = await loadPlugin(file("kv-lister.ts"), { kv: { "user:2": 1, "user:1": 1, gone: true, other: 0 } });
    try {
      const run = await plugin.send("task.add", { id: 1, autor: 2 });
      expect(run.kvWrites).toEqual([{ op: "delete", key: "gone" }]);
      expect(run.logs[0]?.fields).toEqual({ keys: ["user:1", "user:2"] });
      expect(plugin.kv.get("gone")).toBeUndefined();
    } finally {
      await plugin.close();
    }
  });

  it("reports a plugin that fails to load with its code and TypeScript location", async () => {
    await expect(loadPlugin(file("throws-at-load.ts"))).rejects.toMatchObject({ code: "HOOKD_PLUGIN_LOAD", location: "plugins/throws-at-load.ts:2:23" });
    await expect(loadPlugin(file("syntax-error.ts"))).rejects.toMatchObject({
      code: "HOOKD_PLUGIN_COMPILE",
      issues: [expect.objectContaining({ file: "plugins/syntax-error.ts", line: 3 })],
    });
    await expect(loadPlugin(file("unknown-event.ts"))).rejects.toMatchObject({ code: "HOOKD_PLUGIN_UNKNOWN_EVENT" });
  });

  it("says which node flag is missing instead of crashing the test process", async () => {
    const saved = process.execArgv;
    const savedOptions = process.env.NODE_OPTIONS;
    process.execArgv = saved.filter((flag) => flag !== "--no-node-snapshot");
    delete process.env.NODE_OPTIONS;
    try {
      await expect(loadPlugin(file("orders.ts"))).rejects.toMatchObject({ code: "HOOKD_TESTING_NODE_FLAGS" });
    } finally {
      process.execArgv = saved;
      if (savedOptions !== undefined) process.env.NODE_OPTIONS = savedOptions;
    }
  });

  it("types send() from the catalog", () => {
    // Type-level only (tsc checks this file); never called.
    const typed = (plugin: PluginHarness) => {
      expectTypeOf(plugin.send("deal.close", { did: "1", autor: 2, summa: "3.00", status: "won" })).toEqualTypeOf<Promise<RunReport>>();
      // @ts-expect-error a typo in the event name
      void plugin.send("deal.closed", {});
      // @ts-expect-error a field of the wrong type
      void plugin.send("shop.order.paid", { orderId: "1", total: "12", currency: "EUR" });
    };
    expect(typeof typed).toBe("function");
  });
});
