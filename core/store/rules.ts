/**
 * The rules of the store contract (types.ts) that do not depend on the database: which delivery a
 * manual retry may take, what a lease lost on its last attempt records, how far a page reaches,
 * which plugins a claim looks at and with what share, how a repeated idempotency key is told from
 * a conflicting one, and how list filters become query values. Both stores take them from here
 * and keep only their SQL, so a rule changes in one place and the stores cannot drift apart.
 */
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { AcceptOutcome, ClaimOptions, DeliveryStatus, ListEventsFilter, ListRunsFilter, NewEvent, RunError } from "./types.ts";

/** The error a delivery is dead-lettered with when its lease expired on its last attempt. */
export const LEASE_LOST_ON_LAST_ATTEMPT: RunError = {
  code: "HOOKD_RUN_ABORTED",
  message: "run aborted: its lease expired on the last attempt (the process running it stopped or hung)",
};

/** The same, as the `last_error` column stores it. */
export const LEASE_LOST_ON_LAST_ATTEMPT_JSON = JSON.stringify(LEASE_LOST_ON_LAST_ATTEMPT);

/** A list's page when none is asked for, and the most one page holds. */
export const PAGE_LIMIT = { default: 100, max: 1000 } as const;

/** The page size a list runs with: the default when none is asked, between 1 and the maximum. */
export function clampPageLimit(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? PAGE_LIMIT.default, 1), PAGE_LIMIT.max);
}

/**
 * A manual retry takes a dead delivery, or a failed one (pending again with an error, waiting for
 * its backoff); a delivery that is running, done or pending without a failure is refused.
 */
export function assertRetriable(id: number, row: { status: DeliveryStatus; last_error: string | null } | undefined): asserts row {
  if (!row) throw new HookdError("HOOKD_RUN_NOT_FOUND", [id]);
  const failed = row.status === "pending" && row.last_error !== null;
  if (row.status !== "dead" && !failed) throw new HookdError("HOOKD_RUN_NOT_RETRIABLE", [id, row.status]);
}

/**
 * SQL: delivery `d` holds no order key, or no earlier delivery of its plugin and key is pending or
 * running (per-key order; index deliveries_unfinished_by_key). Both stores' claims use it.
 */
export const ORDER_KEY_FREE_SQL = `(d.order_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM deliveries e
       WHERE e.plugin = d.plugin AND e.order_key = d.order_key AND e.id < d.id
         AND e.status IN ('pending', 'running')))`;

/** True when a claim cannot take anything: no loaded plugins, or no room. */
export function nothingToClaim(options: ClaimOptions): boolean {
  return options.plugins.length === 0 || options.limit <= 0;
}

/**
 * The groups a claim takes round-robin across, each with its bound (see ClaimOptions.shares):
 * the ones asked for, or each plugin on its own bounded by the claim's limit; groups with no
 * room are left out.
 */
export function claimShares(options: ClaimOptions): Array<{ plugins: readonly string[]; limit: number }> {
  const shares = options.shares ?? options.plugins.map((plugin) => ({ plugins: [plugin], limit: options.limit }));
  return shares.filter((share) => share.limit > 0);
}

/**
 * An event whose idempotency key is stored already: a repeat of the same body is a duplicate
 * (answered with the first id), another body under the key is a conflict.
 */
export function repeatOutcome(existing: { id: string; body_hash: string | null }, event: NewEvent): AcceptOutcome {
  return existing.body_hash === (event.bodyHash ?? null) ? { kind: "duplicate", id: existing.id } : { kind: "conflict", id: existing.id };
}

/** The refusal of an emitted event whose root has caused `maxDescendants` events already. */
export function emitBudgetSpent(root: string, maxDescendants: number, eventName: string): HookdError {
  return new HookdError("HOOKD_EVENT_EMIT_BUDGET", [root, maxDescendants, eventName]);
}

/**
 * A runs filter as query values. "failed" is not a status of its own: it is a pending delivery
 * that carries an error (waiting to be tried again).
 */
export function runsQuery(filter: ListRunsFilter) {
  return {
    status: filter.status === "failed" ? "pending" : (filter.status ?? null),
    failedOnly: filter.status === "failed",
    plugin: filter.plugin ?? null,
    event: filter.event ?? null,
    eventId: filter.eventId ?? null,
    replayId: filter.replayId ?? null,
    since: filter.since ?? null,
    until: filter.until ?? null,
    before: filter.before ?? null,
    limit: clampPageLimit(filter.limit),
  };
}

/**
 * An events filter as query values. `after` pages oldest first; `maxPayloadBytes` bounds only a
 * list for people (newest first), so an ascending page always carries whole payloads.
 */
export function eventsQuery(filter: ListEventsFilter) {
  return {
    name: filter.name ?? null,
    since: filter.since ?? null,
    until: filter.until ?? null,
    before: filter.before ?? null,
    after: filter.after ?? null,
    limit: clampPageLimit(filter.limit),
    ascending: filter.after !== undefined,
    maxPayloadBytes: filter.after === undefined ? filter.maxPayloadBytes : undefined,
  };
}
