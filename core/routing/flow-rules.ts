/**
 * Flow control per handler: `on("deal.edit", { concurrency, throttle, rateLimit, debounce }, fn)`.
 *
 * A plugin declares the rules in its isolate; they arrive as JSON in its manifest and are checked
 * here at load (a bad rule is the version's load error, HOOKD_FLOW_INVALID). When an event is
 * accepted, each rule's key is read from the payload and the delivery is stored with its scopes
 * (`DeliveryFlow`): the stores enforce the rules from then on (core/store/flow-windows.ts), so
 * they hold across restarts and across instances. A delivery keeps the rules it was accepted
 * under; a reload with other rules governs the events accepted after it.
 */
import { createHash } from "node:crypto";
import ms from "ms";
import { z } from "zod";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { MAX_FLOW_PERIOD_MS } from "../store/flow-windows.ts";
import type { DeliveryFlow } from "../store/types.ts";
import { missingPathStep, readPath } from "./payload-paths.ts";

/** Starts a throttle or rate limit may count per period: each window keeps that many times. */
export const MAX_WINDOW_LIMIT = 1000;

// As the delays' durations (core/time/delay.ts): a string needs its unit, a number is milliseconds.
const duration = z.union([z.string().max(100), z.number()]).transform((value, ctx) => {
  const periodMs = typeof value === "number" ? value : /[a-z]\s*$/i.test(value.trim()) ? ms(value.trim() as ms.StringValue) : undefined;
  if (periodMs === undefined || !Number.isFinite(periodMs) || periodMs < 1 || periodMs > MAX_FLOW_PERIOD_MS) {
    ctx.addIssue({ code: "custom", message: `${JSON.stringify(value)} is not a duration from 1 ms to 7 days (500ms, 10s, 5m, 1h, 1d)` });
    return z.NEVER;
  }
  return Math.round(periodMs);
});
const key = z.string().min(1).max(200).regex(/^[^.\s]+(\.[^.\s]+)*$/, "a dotted payload path such as did or client.id").optional();
const windowRule = z.strictObject({ key, limit: z.number().int().min(1).max(MAX_WINDOW_LIMIT), period: duration });

const flowOptions = z.strictObject({
  concurrency: z.strictObject({ key, limit: z.number().int().min(1).max(10_000) }).optional(),
  throttle: windowRule.optional(),
  rateLimit: windowRule.optional(),
  debounce: z.strictObject({ key, period: duration }).optional(),
});

/** One event's rules, checked, with periods in milliseconds. */
export interface FlowRules {
  concurrency?: { key?: string | undefined; limit: number } | undefined;
  throttle?: { key?: string | undefined; limit: number; period: number } | undefined;
  rateLimit?: { key?: string | undefined; limit: number; period: number } | undefined;
  debounce?: { key?: string | undefined; period: number } | undefined;
}

/** A plugin version's rules by event name. */
export type FlowRuleSet = ReadonlyMap<string, FlowRules>;

/**
 * Checks a manifest's flow options; throws HOOKD_FLOW_INVALID naming the plugin file, the event
 * and the problem. A key must be a path the event's schema lists (when the catalog describes it).
 */
export function parseFlowRules(file: string, declared: Record<string, unknown> | undefined, catalog: Readonly<Record<string, unknown>>): FlowRuleSet {
  const rules = new Map<string, FlowRules>();
  for (const [event, options] of Object.entries(declared ?? {})) {
    const parsed = flowOptions.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new HookdError("HOOKD_FLOW_INVALID", [`${file} on("${event}")`, `${issue.path.join(".") || "options"}: ${issue.message}`]);
    }
    const found = parsed.data;
    for (const [rule, spec] of Object.entries(found) as Array<[string, { key?: string } | undefined]>) {
      const path = spec?.key;
      if (path === undefined) continue;
      const missing = Object.hasOwn(catalog, event) ? missingPathStep(catalog[event], path) : undefined;
      if (missing !== undefined) throw new HookdError("HOOKD_FLOW_INVALID", [`${file} on("${event}")`, `${rule}.key "${path}": the event's schema has no field "${missing}"`]);
    }
    if (Object.keys(found).length > 0) rules.set(event, found);
  }
  return rules;
}

/** The scopes one delivery is stored with, or undefined when its handler has no rules. */
export function deliveryFlow(rules: FlowRules | undefined, event: string, payload: unknown): DeliveryFlow | undefined {
  if (rules === undefined) return undefined;
  const scope = (path: string | undefined) => (path === undefined ? event : `${event}=${keyValue(readPath(payload, path))}`);
  const flow: DeliveryFlow = {};
  if (rules.concurrency) flow.concurrency = { scope: scope(rules.concurrency.key), limit: rules.concurrency.limit };
  if (rules.throttle) flow.throttle = { scope: scope(rules.throttle.key), limit: rules.throttle.limit, periodMs: rules.throttle.period };
  if (rules.rateLimit) flow.rateLimit = { scope: scope(rules.rateLimit.key), limit: rules.rateLimit.limit, periodMs: rules.rateLimit.period };
  if (rules.debounce) flow.debounce = { scope: scope(rules.debounce.key), periodMs: rules.debounce.period };
  return flow;
}

/** Longest key value kept as it is in a scope; a longer one is kept as its SHA-256. */
const MAX_KEY_TEXT = 64;

/**
 * A key's value as text: events without the field (or with an empty one) share the key "".
 * Scopes go into indexes and window ids, so their size is bounded whatever the payload holds:
 * a value over MAX_KEY_TEXT characters (a 12 KB string would not fit a PostgreSQL index row,
 * and would fail every claim after it) becomes `#sha256:<hex>`.
 */
function keyValue(value: unknown): string {
  if (value === undefined || value === null) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return text.length <= MAX_KEY_TEXT ? text : `#sha256:${createHash("sha256").update(text).digest("hex")}`;
}
