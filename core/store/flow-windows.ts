/**
 * How both stores enforce a handler's flow control (core/routing/flow-rules.ts), on what each
 * delivery was stored with (`DeliveryTarget.flow`):
 *
 * - **debounce**, when an event is accepted: in the accepting transaction, the plugin's deliveries
 *   of the same scope from earlier events that have not started are skipped
 *   (HOOKD_FLOW_DEBOUNCED), and the new one is due `period` after its own time
 *   (`waiting = 'debounced'`); if a later event's delivery is pending already (PostgreSQL, two
 *   accepts at once), the new one is the one skipped. A burst runs once, with its last event. A
 *   delayed event and a replay take no part: a debounce is about a burst as it arrives, and a
 *   delayed event (or an old one replayed) would otherwise skip the burst, or be skipped by it.
 * - **throttle**, when a delivery is first claimed (its first attempt, so retries are not counted
 *   again): the scope's turns (table `flow_windows`) give it the first time at which a start keeps
 *   every `period` to at most `limit` starts; that turn is booked and the delivery left pending
 *   until then (`waiting = 'throttled'`), so each waiting one is handled once and the backlog keeps
 *   its order. At its turn, the starts that really happened decide again (a turn taken late, say
 *   after a restart, must not crowd the next ones): too soon, it waits for the window to open.
 * - **rate limit**, at the start (after the throttle, if both): when `limit` starts of the scope
 *   fall in the last `period`, the delivery is skipped (HOOKD_FLOW_RATE_LIMITED).
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

/** `debounced`: whether this insert takes part in its debounce (an immediate event's, not a replay's). */
export function flowColumns(flow: DeliveryFlow | undefined, debounced: boolean): FlowColumns {
  if (flow === undefined) return NO_FLOW;
  const stored: StoredFlow = {};
  if (flow.throttle) stored.throttle = flow.throttle;
  if (flow.rateLimit) stored.rateLimit = flow.rateLimit;
  return [
    stored.throttle || stored.rateLimit ? JSON.stringify(stored) : null,
    flow.concurrency?.scope ?? null,
    flow.concurrency?.limit ?? null,
    debounced ? (flow.debounce?.scope ?? null) : null,
    debounced && flow.debounce ? "debounced" : null,
  ];
}

/** When a new delivery is due: a debounced one `period` after its event's time. */
export function dueAtOf(target: DeliveryTarget, due: number, debounced: boolean): number {
  return debounced && target.flow?.debounce ? due + target.flow.debounce.periodMs : due;
}

/** The error a debounced delivery is skipped with: the event that came after it. */
export function debouncedError(laterEventId: string): string {
  return skipError(new HookdError("HOOKD_FLOW_DEBOUNCED", [laterEventId]));
}

/** A window's row key: the rule, the plugin and the scope, unambiguous whatever the key's text. */
export function windowId(rule: "throttle" | "throttleStarts" | "rateLimit", plugin: string, scope: string): string {
  return JSON.stringify([rule, plugin, scope]);
}

/** The windows a delivery's first start reads. */
export function windowIdsOf(plugin: string, flow: StoredFlow): string[] {
  const ids: string[] = [];
  if (flow.rateLimit) ids.push(windowId("rateLimit", plugin, flow.rateLimit.scope));
  if (flow.throttle) ids.push(windowId("throttle", plugin, flow.throttle.scope), windowId("throttleStarts", plugin, flow.throttle.scope));
  return ids;
}

/** What the claim does with a delivery on its first attempt. */
export type FirstStart = { kind: "start" } | { kind: "wait"; until: number } | { kind: "skip"; error: string };

/**
 * Applies a delivery's throttle, then its rate limit, at `now`; `booked` when it waited for a
 * throttle turn already (`waiting = 'throttled'`). `windows` holds the windows of the scopes
 * involved (a missing one is empty); the ones this changes are written back into it and listed in
 * `changed` with their period, for the store to save (and later prune) in the same transaction.
 */
export function firstStart(plugin: string, flow: StoredFlow, booked: boolean, windows: Map<string, number[]>, changed: Map<string, number>, now: number): FirstStart {
  if (flow.throttle) {
    const { scope, limit, periodMs } = flow.throttle;
    if (!booked) {
      const id = windowId("throttle", plugin, scope);
      const turns = windows.get(id) ?? [];
      // The limit-th turn before this one must lie a whole period back: then no period holds
      // more than `limit` turns. Turns only grow, so the backlog keeps its order.
      const at = turns.length < limit ? now : Math.max(now, turns[turns.length - limit]! + periodMs);
      windows.set(id, keepLast([...turns, at], limit));
      changed.set(id, periodMs);
      if (at > now) return { kind: "wait", until: at };
    }
    const started = windows.get(windowId("throttleStarts", plugin, scope)) ?? [];
    if (started.length >= limit && started[started.length - limit]! > now - periodMs) return { kind: "wait", until: started[started.length - limit]! + periodMs };
  }
  if (flow.rateLimit) {
    const { scope, limit, periodMs } = flow.rateLimit;
    const id = windowId("rateLimit", plugin, scope);
    const starts = windows.get(id) ?? [];
    if (starts.length >= limit && starts[starts.length - limit]! > now - periodMs) {
      return { kind: "skip", error: skipError(new HookdError("HOOKD_FLOW_RATE_LIMITED", [String(limit), ms(periodMs)])) };
    }
    windows.set(id, keepLast([...starts, now], limit));
    changed.set(id, periodMs);
  }
  if (flow.throttle) {
    const id = windowId("throttleStarts", plugin, flow.throttle.scope);
    windows.set(id, keepLast([...(windows.get(id) ?? []), now], flow.throttle.limit));
    changed.set(id, flow.throttle.periodMs);
  }
  return { kind: "start" };
}

/** When a saved window counts nothing any more (its latest time a period past): the prune's mark. */
export function windowExpiresAt(times: readonly number[], periodMs: number): number {
  return (times.length === 0 ? 0 : Math.max(...times)) + periodMs;
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
