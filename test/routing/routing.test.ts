/**
 * Routing over real loaded plugins: real plugin files compiled and evaluated in real isolates,
 * the plugin manager's subscriber index, and core/routing working out an event's deliveries
 * (handlers, routes with mapped input, webhooks), each with its runner's attempt budget and the
 * event's order key. Also the load-check chain: the first failing check is the load error.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { createLogger } from "../../core/base/log.ts";
import { firstFailure, knownEvents, VERSION_CHECKS, type LoadCheck } from "../../core/plugins/load-checks.ts";
import { PluginManager } from "../../core/plugins/manager.ts";
import { deliveriesFor, deliveriesOfPlugin, endpointId, webhookTargets, type EventRouting, type RouteRule, type WebhookRule } from "../../core/routing/index.ts";
import { IsolateHost } from "../../sandbox/isolate-host.ts";
import { testServices } from "../helpers/services.ts";

const SYNC = `import { on, action, plugin, z } from "hookd";
export default plugin({ retry: { maxAttempts: 2 } });
on("deal.close", async () => {});
action("notify", { input: z.object({ dealId: z.number(), note: z.string() }) }, async () => {});
`;
const AUDIT = `import { on, action } from "hookd";
on("deal.close", async () => {});
on("client.add", async () => {});
action("notify", {}, async () => {});
`;
const TYPO = `import { on } from "hookd";
on("deal.closed", async () => {});
`;

const catalog = { "deal.close": z.object({ did: z.number(), summa: z.string() }), "client.add": z.object({ clid: z.number() }) };
const delivery = { maxAttempts: 5, backoffMs: 1000, maxBackoffMs: 60_000, orderBy: { "deal.*": "did" } };

describe("routing over loaded plugins", () => {
  let dir: string;
  let host: IsolateHost;
  let manager: PluginManager;
  let routes: RouteRule[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hookd-routing-"));
    writeFileSync(path.join(dir, "audit.ts"), AUDIT);
    writeFileSync(path.join(dir, "sync.ts"), SYNC);
    writeFileSync(path.join(dir, "typo.ts"), TYPO);
    host = new IsolateHost({ environmentSecrets: false, services: testServices() });
    manager = new PluginManager({
      sandbox: host,
      dir,
      root: dir,
      limits: () => ({ timeoutMs: 5000, memoryMb: 64, maxConcurrentRuns: 4 }),
      catalog: () => catalog,
      logger: createLogger({ level: "silent" }),
      routes: () => routes,
    });
    const results = await manager.loadAll();
    expect(results.map((r) => [r.plugin, r.ok])).toEqual([["audit", true], ["sync", true], ["typo", false]]);
  }, 60_000);

  afterAll(async () => {
    manager?.stop();
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("fails a version that subscribes to an event the catalog lacks, with the check's error", () => {
    const typo = manager.list().find((p) => p.name === "typo")!;
    expect(typo.state).toBe("failed");
    expect(typo.lastError?.code).toBe("HOOKD_PLUGIN_UNKNOWN_EVENT");
    expect(typo.lastError?.message).toContain("deal.closed");
  });

  it("indexes subscribers in load order; the first plugin to declare an action owns it", () => {
    expect(manager.subscribers("deal.close")).toEqual(["audit", "sync"]);
    expect(manager.subscribers("client.add")).toEqual(["audit"]);
    expect(manager.actionOwner("notify")).toBe("audit");
    expect(manager.claimKeys()).toEqual(["audit", "sync", "action:notify"]);
  });

  it("gives an event one delivery per handler, route and webhook, with budgets and the order key", () => {
    routes = [{ on: "deal.close", run: "notify", input: { dealId: "did", note: { value: "closed" }, missing: "nowhere.here" } }];
    const url = "https://hooks.example.com/deals";
    const hooks: WebhookRule[] = [
      { on: "deal.close", url, method: "POST", format: "json", map: { deal: "did" } },
      { on: "deal.close", url, method: "GET", format: "form" },
    ];
    const routing: EventRouting = { lookup: manager, routes, delivery, webhookTargets: (name, payload) => webhookTargets(hooks, name, payload, 8) };
    const targets = deliveriesFor(routing, "deal.close", { did: 12, summa: "1500.00" });
    expect(targets).toEqual([
      { kind: "handler", plugin: "audit", target: "deal.close", maxAttempts: 5, orderKey: "deal.*=12" },
      // sync declares retry.maxAttempts 2: its budget, not the config's.
      { kind: "handler", plugin: "sync", target: "deal.close", maxAttempts: 2, orderKey: "deal.*=12" },
      // Claimed by action name; a missing source leaves its field out; audit owns "notify".
      { kind: "route", plugin: "action:notify", target: "notify", input: { dealId: 12, note: "closed" }, maxAttempts: 5, orderKey: "deal.*=12" },
      // Two webhooks to one endpoint: one claim key, told apart by their ordinal; mapped fields only when mapped.
      { kind: "webhook", plugin: `webhook:${endpointId(url)}`, target: endpointId(url), input: { url, method: "POST", format: "json", ordinal: 0, fields: { deal: 12 } }, maxAttempts: 8, orderKey: "deal.*=12" },
      { kind: "webhook", plugin: `webhook:${endpointId(url)}`, target: endpointId(url), input: { url, method: "GET", format: "form", ordinal: 1 }, maxAttempts: 8, orderKey: "deal.*=12" },
    ]);
    expect(deliveriesOfPlugin(targets, "audit", manager).map((t) => t.kind)).toEqual(["handler", "route"]);
    expect(deliveriesOfPlugin(targets, "sync", manager).map((t) => t.kind)).toEqual(["handler"]);
    // An event without an order key field gets none.
    expect(deliveriesFor({ ...routing, routes: [] }, "client.add", { clid: 3 })).toEqual([
      { kind: "handler", plugin: "audit", target: "client.add", maxAttempts: 5, orderKey: undefined },
    ]);
  });
});

describe("the load-check chain", () => {
  const fail = (code: "HOOKD_PLUGIN_LOAD" | "HOOKD_PLUGIN_AMBIGUOUS"): LoadCheck<number> => () => new HookdError(code, ["x", "y"]);

  it("runs the checks in order and stops at the first failure", () => {
    const ran: string[] = [];
    const pass: LoadCheck<number> = () => {
      ran.push("pass");
      return undefined;
    };
    const first = fail("HOOKD_PLUGIN_AMBIGUOUS");
    const never: LoadCheck<number> = () => {
      ran.push("never");
      return new HookdError("HOOKD_PLUGIN_LOAD", ["never"]);
    };
    expect(firstFailure([pass, first, never], 1)?.code).toBe("HOOKD_PLUGIN_AMBIGUOUS");
    expect(ran).toEqual(["pass"]);
    expect(firstFailure([pass, pass], 1)).toBeUndefined();
  });

  it("names each check, and checks evaluated versions against the catalog", () => {
    expect(VERSION_CHECKS.map((check) => check.name)).toEqual(["knownEvents"]);
    const manifest = { events: ["deal.close", "deal.closed"], actions: [], options: {}, loadMs: 1 };
    expect(knownEvents({ file: "plugins/x.ts", manifest, catalog })?.message).toContain("deal.closed");
    expect(knownEvents({ file: "plugins/x.ts", manifest: { ...manifest, events: ["deal.close"] }, catalog })).toBeUndefined();
  });
});
