// The flow options a plugin declares, checked at load (a wrong rule names itself), and the scopes
// a delivery is stored with, read from its payload (bounded in size whatever the payload holds).
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { deliveryFlow, parseFlowRules } from "../../core/routing/flow-rules.ts";
import { isHookdError } from "../../sandbox/contract/errors.ts";

const catalog = { "deal.edit": z.object({ did: z.number(), client: z.object({ id: z.number() }) }), "free.form": z.any() };

function refusal(declared: Record<string, unknown>): string {
  try {
    parseFlowRules("plugins/p.ts", declared, catalog);
  } catch (error) {
    if (isHookdError(error) && error.code === "HOOKD_FLOW_INVALID") return error.message;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(declared)}`);
}

describe("flow options at load", () => {
  it("takes every rule with durations as text or milliseconds", () => {
    const rules = parseFlowRules(
      "plugins/p.ts",
      {
        "deal.edit": {
          concurrency: { key: "did", limit: 2 },
          throttle: { key: "client.id", limit: 5, period: "1m" },
          rateLimit: { limit: 100, period: 3600_000 },
          debounce: { key: "did", period: "10s" },
        },
      },
      catalog,
    );
    expect(rules.get("deal.edit")).toEqual({
      concurrency: { key: "did", limit: 2 },
      throttle: { key: "client.id", limit: 5, period: 60_000 },
      rateLimit: { limit: 100, period: 3600_000 },
      debounce: { key: "did", period: 10_000 },
    });
  });

  it("refuses a wrong rule, naming the event and the rule", () => {
    expect(refusal({ "deal.edit": { throttle: { limit: 0, period: "1s" } } })).toMatch(/on\("deal\.edit"\).*throttle\.limit/);
    expect(refusal({ "deal.edit": { throttle: { limit: 1, period: "10" } } })).toContain("throttle.period");
    expect(refusal({ "deal.edit": { debounce: { period: "8d" } } })).toContain("7 days");
    expect(refusal({ "deal.edit": { concurrency: { limit: 1.5 } } })).toContain("concurrency.limit");
    expect(refusal({ "deal.edit": { priority: 3 } })).toContain("priority");
    expect(refusal({ "deal.edit": { concurrency: { key: "deal", limit: 1 } } })).toContain('"deal"');
    expect(refusal({ "deal.edit": { concurrency: { key: "client.name", limit: 1 } } })).toContain('"name"');
    expect(refusal({ "deal.edit": { concurrency: { key: "a..b", limit: 1 } } })).toContain("concurrency.key");
    expect(refusal({ "deal.edit": "fast" })).toContain("options");
  });

  it("takes any key of an event whose schema does not list its fields", () => {
    expect(parseFlowRules("plugins/p.ts", { "free.form": { concurrency: { key: "anything.at.all", limit: 1 } } }, catalog).size).toBe(1);
  });
});

describe("a delivery's scopes", () => {
  const rules = { concurrency: { key: "did", limit: 1 }, rateLimit: { limit: 5, period: 1000 } };

  it("keys each rule by the event and the payload's value, or the event alone without a key", () => {
    expect(deliveryFlow(rules, "deal.edit", { did: 7 })).toEqual({
      concurrency: { scope: "deal.edit=7", limit: 1 },
      rateLimit: { scope: "deal.edit", limit: 5, periodMs: 1000 },
    });
    expect(deliveryFlow(rules, "deal.edit", {})!.concurrency!.scope).toBe("deal.edit=");
    expect(deliveryFlow(undefined, "deal.edit", { did: 7 })).toBeUndefined();
  });

  it("keeps a long or structured key value as its hash, so a hostile payload cannot grow an index row", () => {
    const long = deliveryFlow(rules, "deal.edit", { did: "x".repeat(12_000) })!.concurrency!.scope;
    expect(long).toMatch(/^deal\.edit=#sha256:[0-9a-f]{64}$/);
    expect(deliveryFlow(rules, "deal.edit", { did: "y".repeat(12_000) })!.concurrency!.scope).not.toBe(long);
    expect(deliveryFlow(rules, "deal.edit", { did: { a: 1 } })!.concurrency!.scope).toBe('deal.edit={"a":1}');
  });
});
