/**
 * The PostgreSQL store's leases, as SQL: claiming ready deliveries (FOR UPDATE SKIP LOCKED, so
 * instances never wait for each other's rows nor claim one twice), finishing a run under its
 * lease token, renewing and releasing leases, and the next due time. The store (postgres.ts)
 * calls these on its bookkeeping pool and wakes the other instances after what they change; the
 * rules (which shares a claim takes, what a lost last attempt records) are rules.ts.
 */
import { runAttemptValues } from "./run-attempts.ts";
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { finishValues, toClaimedDelivery, type ClaimRow } from "./rows.ts";
import { claimShares, LEASE_LOST_ON_LAST_ATTEMPT_JSON } from "./rules.ts";
import type { ClaimedDelivery, ClaimOptions, DeliveryResult } from "./types.ts";

type Queryable = pg.Pool | pg.PoolClient;

export async function claimDeliveries(on: Queryable, options: ClaimOptions): Promise<ClaimedDelivery[]> {
  const keys = claimShares(options).flatMap((share, group) => share.plugins.map((plugin) => ({ plugin, group, limit: share.limit })));
  if (keys.length === 0) return [];
  // The attempt is counted at claim, before the run (see sqlite-writes.ts). Only the earliest
  // unfinished delivery of a plugin+key is ever ready, and SKIP LOCKED hands it to one claimer.
  // Round-robin across the shares (see ClaimOptions.shares): each plugin's oldest ready rows
  // through its own index seek (LATERAL), ranked within their share, then every share's first
  // before any share's second. Rows locked here and not claimed are free again at the commit.
  const { rows } = await on.query<ClaimRow & { next_at: number; rank: number }>(
    `WITH keys AS (SELECT * FROM unnest($3::text[], $7::int[], $8::int[]) AS k(plugin, grp, lim)),
     candidates AS (
       SELECT r.id, r.next_at, k.grp, k.lim FROM keys k CROSS JOIN LATERAL (
         SELECT d.id, d.next_at FROM deliveries d
          WHERE d.plugin = k.plugin AND d.status = 'pending' AND d.suspect = $1 AND d.next_at <= $2
            AND (d.order_key IS NULL OR NOT EXISTS (
                  SELECT 1 FROM deliveries e
                   WHERE e.plugin = d.plugin AND e.order_key = d.order_key AND e.id < d.id
                     AND e.status IN ('pending', 'running')))
          ORDER BY d.next_at, d.id
          LIMIT k.lim
          FOR UPDATE SKIP LOCKED) r),
     ranked AS (SELECT id, next_at, lim, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY next_at, id) AS rank FROM candidates),
     ready AS (SELECT id, rank FROM ranked WHERE rank <= lim ORDER BY rank, next_at, id LIMIT $4),
     claimed AS (
       UPDATE deliveries d
          SET status = 'running', attempts = d.attempts + 1, lease_token = $5, lease_until = $6, updated_at = $2
         FROM ready WHERE d.id = ready.id AND d.status = 'pending'
       RETURNING d.id, d.kind, d.plugin, d.target, d.attempts, d.max_attempts, d.lease_token, d.suspect, d.input, d.event_seq, d.next_at, ready.rank)
     SELECT c.*, e.id AS event_id, e.name AS event_name, e.payload, e.received_at, e.depth, e.source, e.source_user
       FROM claimed c JOIN events e ON e.seq = c.event_seq
      ORDER BY c.rank, c.next_at, c.id`,
    [
      options.suspects ? 1 : 0,
      options.now,
      keys.map((k) => k.plugin),
      options.limit,
      randomUUID(),
      options.now + options.leaseMs,
      keys.map((k) => k.group),
      keys.map((k) => k.limit),
    ],
  );
  return rows.map(toClaimedDelivery);
}

/** Records a run's outcome under its lease; null when the lease was lost, else the delivery's order key. */
export async function finishDelivery(on: Queryable, id: number, leaseToken: string, result: DeliveryResult): Promise<{ orderKey: string | null } | null> {
  const v = finishValues(result);
  // Run detail: the attempt's activity goes in the same statement, only if the lease held.
  const attempt = result.attempt ? runAttemptValues(result.attempt) : null;
  const { rows } = await on.query<{ order_key: string | null }>(
    `WITH finished AS (
       UPDATE deliveries
          SET status = $3, next_at = $5, last_error = $6, lease_token = NULL, lease_until = NULL,
              updated_at = $4, finished_at = $7, duration_ms = $8,
              attempts = attempts - $9, suspect = COALESCE($10, suspect)
        WHERE id = $1 AND lease_token = $2 AND status = 'running'
       RETURNING id, order_key),
     attempt AS (
       INSERT INTO run_attempts (delivery_id, attempt, started_at, duration_ms, status, code, error, activity)
       SELECT id, $11, $12, $13, $14, $15, $16, $17 FROM finished WHERE $11::integer IS NOT NULL
       ON CONFLICT (delivery_id, attempt) DO UPDATE
         SET started_at = excluded.started_at, duration_ms = excluded.duration_ms, status = excluded.status,
             code = excluded.code, error = excluded.error, activity = excluded.activity)
     SELECT order_key FROM finished`,
    [id, leaseToken, v.status, v.now, v.nextAt, v.error, v.finishedAt, v.durationMs, v.refund, v.suspect, ...(attempt ?? [null, null, null, null, null, null, null])],
  );
  return rows.length === 0 ? null : { orderKey: rows[0]!.order_key };
}

export async function renewLease(on: Queryable, id: number, leaseToken: string, until: number): Promise<boolean> {
  const { rowCount } = await on.query("UPDATE deliveries SET lease_until = $1 WHERE id = $2 AND lease_token = $3 AND status = 'running'", [until, id, leaseToken]);
  return rowCount === 1;
}

/** Expired leases: dead on their last attempt, back to pending otherwise (one transaction: `client`). */
export async function releaseExpiredLeases(client: pg.PoolClient, now: number): Promise<number> {
  const dead = await client.query(
    `UPDATE deliveries SET status = 'dead', lease_token = NULL, lease_until = NULL, last_error = $2, updated_at = $1, finished_at = $1
      WHERE status = 'running' AND lease_until < $1 AND attempts >= max_attempts`,
    [now, LEASE_LOST_ON_LAST_ATTEMPT_JSON],
  );
  const released = await client.query(
    `UPDATE deliveries SET status = 'pending', lease_token = NULL, lease_until = NULL, updated_at = $1, next_at = $1
      WHERE status = 'running' AND lease_until < $1`,
    [now],
  );
  return (dead.rowCount ?? 0) + (released.rowCount ?? 0);
}

/** Leases a stopping instance still holds, back to pending without counting their attempt. */
export async function releaseDeliveries(on: Queryable, leases: ReadonlyArray<{ id: number; leaseToken: string }>, now: number): Promise<number> {
  const { rowCount } = await on.query(
    `UPDATE deliveries d SET status = 'pending', attempts = d.attempts - 1, lease_token = NULL, lease_until = NULL, next_at = $3, updated_at = $3
       FROM unnest($1::bigint[], $2::text[]) AS l(id, token)
      WHERE d.id = l.id AND d.lease_token = l.token AND d.status = 'running'`,
    [leases.map((l) => l.id), leases.map((l) => l.leaseToken), now],
  );
  return rowCount ?? 0;
}

export async function nextDueAt(on: Queryable, plugins: readonly string[], suspects: boolean): Promise<number | null> {
  // One index seek per plugin (deliveries_pending_by_plugin), never a walk past the others' rows.
  const { rows } = await on.query<{ next: number | null }>(
    `SELECT MIN(n.next) AS next FROM unnest($2::text[]) AS p(plugin) CROSS JOIN LATERAL (
       SELECT d.next_at AS next FROM deliveries d
        WHERE d.plugin = p.plugin AND d.status = 'pending' AND d.suspect = $1
        ORDER BY d.next_at LIMIT 1) n`,
    [suspects ? 1 : 0, plugins],
  );
  return rows[0]!.next;
}
