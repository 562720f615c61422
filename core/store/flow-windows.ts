/**
 * How both stores enforce a handler's flow control (core/routing/flow-rules.ts), on what each
 * delivery was stored with (`DeliveryTarget.flow`):
 *
 * - **debounce**, when an event is accepted: in the accepting transaction, the plugin's earlier
 *   delivery of the same scope that has not started is skipped (HOOKD_FLOW_DEBOUNCED), and the new
 *   one is due `period` after its own time (`waiting = 'debounced'`). A burst runs once, with its
 *   last event.
 * - **rate limit** and **throttle**, when a delivery is first claimed (its first attempt, so
 *   retries are not counted twice): each scope has a window (table `flow_windows`) holding the
 *   times of its last `limit` starts. A rate limit skips the delivery (HOOKD_FLOW_RATE_LIMITED)
 *   when `limit` starts fall in the last `period`; a throttle gives it the first time at which a
 *   start keeps every `period` to at most `limit` starts, reserves that time in the window, and
 *   leaves it pending until then (`waiting = 'throttled'`): each waiting delivery is handled once,
 *   and the reserved times queue the backlog in order.
 * - **concurrency**, at every claim: a delivery is ready only while fewer than `limit` deliveries
 *   of its plugin and scope are running (the claim re-counts after each one it takes).
 *
 * The rules are evaluated inside the store's claim and accept transactions (SQLite's single
 * writer; PostgreSQL under advisory and row locks), so they hold across restarts and instances.
 */
import ms from "ms";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { DeliveryFlow, DeliveryTarget, FlowWaiting, RunError } from "./types.ts";

/** The longest period a throttle, rate limit or debounce may have; a window idle that long is pruned. */
export const MAX_FLOW_PERIOD_MS = 7 * 24 * 60 * 60 * 1000;

/** SQL: how many deliveries of `d`'s plugin and concurrency scope run now (index deliveries_running_by_concurrency). */
export const RUNNING_IN_SCOPE_SQL =
  "(SELECT COUNT(*) FROM deliveries c WHERE c.plugin = d.plugin AND c.concurrency_key = d.concurrency_key AND c.status = 'running')";

/**
 * The deliveries flow control holds or held, by plugin and state (/metrics): waiting for a
 * throttle's turn, a debounce's quiet period or a concurrency slot, and skipped by a rate limit
 * or a debounce. Scrape-time SQL, the same on both stores.
 */
export const FLOW_COUNTS_SQL = `
  SELECT plugin, 'waiting_' || waiting AS state, CAST(COUNT(*) AS INTEGER) AS n FROM deliveries
   WHERE status = 'pending' AND waiting IS NOT NULL GROUP BY plugin, waiting
  UNION ALL
  SELECT d.plugin, 'waiting_concurrency' AS state, CAST(COUNT(*) AS INTEGER) AS n FROM deliveries d
   WHERE d.status = 'pending' AND d.concurrency_key IS NOT NULL AND ${RUNNING_IN_SCOPE_SQL} >= d.concurrency_limit GROUP BY d.plugin
  UNION ALL
  SELECT plugin, CASE WHEN last_error LIKE '%HOOKD_FLOW_RATE_LIMITED%' THEN 'skipped_rate_limit' ELSE 'skipped_debounced' END AS state,
         CAST(COUNT(*) AS INTEGER) AS n FROM deliveries
   WHERE status = 'skipped' GROUP BY plugin, CASE WHEN last_error LIKE '%HOOKD_FLOW_RATE_LIMITED%' THEN 'skipped_rate_limit' ELSE 'skipped_debounced' END`;

/** One row of FLOW_COUNTS_SQL. */
export interface FlowCount {
  plugin: string;
  state: string;
  n: number;
}

/** What the claim-time rules need, as stored in `deliveries.flow` (cleared once they are applied). */
export interface StoredFlow {
  throttle?: { scope: string; limit: number; periodMs: number } | undefined;
  rateLimit?: { scope: string; limit: number; periodMs: number } | undefined;
}

/** A delivery's flow columns: flow (JSON), concurrency_key, concurrency_limit, debounce_key, waiting. */
export type FlowColumns = [string | null, string | null, number | null, string | null, FlowWaiting | null];

export const NO_FLOW: FlowColumns = [null, null, null, null, null];

export function flowColumns(flow: DeliveryFlow | undefined): FlowColumns {
  if (flow === undefined) return NO_FLOW;
  const stored: StoredFlow = {};
  if (flow.throttle) stored.throttle = flow.throttle;
  if (flow.rateLimit) stored.rateLimit = flow.rateLimit;
  return [
    stored.throttle || stored.rateLimit ? JSON.stringify(stored) : null,
    flow.concurrency?.scope ?? null,
    flow.concurrency?.limit ?? null,
    flow.debounce?.scope ?? null,
    flow.debounce ? "debounced" : null,
  ];
}

/** When a new delivery is due: a debounced one `period` after its event's time. */
export function dueAtOf(target: DeliveryTarget, due: number): number {
  return target.flow?.debounce ? due + target.flow.debounce.periodMs : due;
}

/** The error a debounced delivery is skipped with: the event that came after it. */
export function debouncedError(laterEventId: string): string {
  return skipError(new HookdError("HOOKD_FLOW_DEBOUNCED", [laterEventId]));
}

/** A window's row key: the rule, the plugin and the scope, unambiguous whatever the key's text. */
export function windowId(rule: "throttle" | "rateLimit", plugin: string, scope: string): string {
  return JSON.stringify([rule, plugin, scope]);
}

/** The windows a delivery's first start reads. */
export function windowIdsOf(plugin: string, flow: StoredFlow): string[] {
  const ids: string[] = [];
  if (flow.rateLimit) ids.push(windowId("rateLimit", plugin, flow.rateLimit.scope));
  if (flow.throttle) ids.push(windowId("throttle", plugin, flow.throttle.scope));
  return ids;
}

/** What the claim does with a delivery on its first attempt. */
export type FirstStart = { kind: "start" } | { kind: "wait"; until: number } | { kind: "skip"; error: string };

/**
 * Applies a delivery's rate limit, then its throttle, at `now`. `windows` holds the windows of
 * the scopes involved (a missing one is empty); the ones this changes are written back into it
 * and listed in `changed`, for the store to save in the same transaction.
 */
export function firstStart(plugin: string, flow: StoredFlow, windows: Map<string, number[]>, changed: Set<string>, now: number): FirstStart {
  if (flow.rateLimit) {
    const { scope, limit, periodMs } = flow.rateLimit;
    const id = windowId("rateLimit", plugin, scope);
    const starts = windows.get(id) ?? [];
    if (starts.length >= limit && starts[starts.length - limit]! > now - periodMs) {
      return { kind: "skip", error: skipError(new HookdError("HOOKD_FLOW_RATE_LIMITED", [String(limit), ms(periodMs)])) };
    }
    windows.set(id, keepLast([...starts, now], limit));
    changed.add(id);
  }
  if (flow.throttle) {
    const { scope, limit, periodMs } = flow.throttle;
    const id = windowId("throttle", plugin, scope);
    const starts = windows.get(id) ?? [];
    // The limit-th start before this one must lie a whole period back: then no period holds more
    // than `limit` starts. Reserved times only grow, so the backlog keeps its order.
    const at = starts.length < limit ? now : Math.max(now, starts[starts.length - limit]! + periodMs);
    windows.set(id, keepLast([...starts, at], limit));
    changed.add(id);
    if (at > now) return { kind: "wait", until: at };
  }
  return { kind: "start" };
}

/** A window's stored text back as times; a row that does not parse counts as empty. */
export function readWindow(text: string | null | undefined): number[] {
  if (!text) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((n): n is number => typeof n === "number") : [];
  } catch {
    return [];
  }
}

export function readStoredFlow(text: string | null): StoredFlow | undefined {
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as StoredFlow;
  } catch {
    return undefined;
  }
}

function keepLast(starts: number[], limit: number): number[] {
  return starts.length > limit ? starts.slice(starts.length - limit) : starts;
}

function skipError(error: HookdError): string {
  const record: RunError = { code: error.code, message: error.message };
  return JSON.stringify(record);
}
