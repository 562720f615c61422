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
import { firstStart, readStoredFlow, readWindow, RUNNING_IN_SCOPE_SQL, windowExpiresAt, windowIdsOf } from "./flow-windows.ts";
import { finishValues, toClaimedDelivery, type ClaimRow } from "./rows.ts";
import { claimShares, LEASE_LOST_ON_LAST_ATTEMPT_JSON, ORDER_KEY_FREE_SQL } from "./rules.ts";
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
  const { rows } = await on.query<ClaimRow & { next_at: number; rank: number }>({
    name: "hookd.claim",
    text: `WITH keys AS (SELECT * FROM unnest($3::text[], $7::int[], $8::int[]) AS k(plugin, grp, lim)),
     candidates AS (
       SELECT r.id, r.next_at, k.grp, k.lim FROM keys k CROSS JOIN LATERAL (
         SELECT d.id, d.next_at FROM deliveries d
          WHERE d.plugin = k.plugin AND d.status = 'pending' AND d.suspect = $1 AND d.next_at <= $2
            AND d.flow IS NULL AND d.concurrency_key IS NULL
            AND ${ORDER_KEY_FREE_SQL}
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
    values: [
      options.suspects ? 1 : 0,
      options.now,
      keys.map((k) => k.plugin),
      options.limit,
      randomUUID(),
      options.now + options.leaseMs,
      keys.map((k) => k.group),
      keys.map((k) => k.limit),
    ],
  });
  return rows.map(toClaimedDelivery);
}

/**
 * The flow-controlled deliveries' claim (flow-windows.ts), in a transaction of its own: the ready
 * ones are locked (SKIP LOCKED), then their concurrency scopes' advisory locks are taken in hash
 * order and the running ones counted again in a statement after them (so two instances cannot
 * both take a scope's last slot), then their windows' rows are locked in id order; each delivery
 * is claimed, throttled, skipped or left waiting, and the windows saved, before the commit. Each
 * share (ClaimOptions.shares) gets at most its limit, as in the ordinary claim.
 */
export async function claimFlowControlled(client: pg.PoolClient, options: ClaimOptions): Promise<ClaimedDelivery[]> {
  const shares = claimShares(options);
  const shareOf = new Map<string, number>();
  shares.forEach((share, index) => share.plugins.forEach((plugin) => shareOf.set(plugin, index)));
  const plugins = [...shareOf.keys()];
  if (plugins.length === 0 || options.limit <= 0) return [];
  const { rows: ready } = await client.query<{ id: number; plugin: string; flow: string | null; waiting: string | null; concurrency_key: string | null; concurrency_limit: number | null }>(
    `SELECT r.id, r.plugin, r.flow, r.waiting, r.concurrency_key, r.concurrency_limit FROM unnest($3::text[]) AS k(plugin) CROSS JOIN LATERAL (
       SELECT d.id, d.plugin, d.next_at, d.flow, d.waiting, d.concurrency_key, d.concurrency_limit FROM deliveries d
        WHERE d.plugin = k.plugin AND d.status = 'pending' AND d.suspect = $1 AND d.next_at <= $2
          AND (d.flow IS NOT NULL OR d.concurrency_key IS NOT NULL)
          AND ${ORDER_KEY_FREE_SQL}
          AND (d.concurrency_key IS NULL OR ${RUNNING_IN_SCOPE_SQL} < d.concurrency_limit)
        ORDER BY d.next_at, d.id
        LIMIT $4
        FOR UPDATE SKIP LOCKED) r
     ORDER BY r.next_at, r.id`,
    [options.suspects ? 1 : 0, options.now, plugins, options.limit * 2],
  );
  if (ready.length === 0) return [];
  const scopes = [...new Set(ready.flatMap((row) => (row.concurrency_key === null ? [] : [JSON.stringify([row.plugin, row.concurrency_key])])))];
  const running = new Map<string, number>();
  if (scopes.length > 0) {
    await client.query(
      `SELECT pg_advisory_xact_lock(hashtext('hookd.concurrency.' || current_schema()), h)
         FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS keys`,
      [scopes],
    );
    const pairs = scopes.map((scope) => JSON.parse(scope) as [string, string]);
    const { rows } = await client.query<{ plugin: string; concurrency_key: string; n: number }>(
      `SELECT d.plugin, d.concurrency_key, COUNT(*)::int AS n FROM deliveries d
         JOIN unnest($1::text[], $2::text[]) AS k(plugin, key) ON d.plugin = k.plugin AND d.concurrency_key = k.key
        WHERE d.status = 'running' GROUP BY d.plugin, d.concurrency_key`,
      [pairs.map((pair) => pair[0]), pairs.map((pair) => pair[1])],
    );
    for (const row of rows) running.set(JSON.stringify([row.plugin, row.concurrency_key]), row.n);
  }
  const flows = new Map(ready.map((row) => [row.id, readStoredFlow(row.flow)] as const));
  const ids = [...new Set(ready.flatMap((row) => { const flow = flows.get(row.id); return flow ? windowIdsOf(row.plugin, flow) : []; }))].sort();
  const windows = new Map<string, number[]>();
  if (ids.length > 0) {
    await client.query("INSERT INTO flow_windows (id, starts, expires_at) SELECT id, '[]', 0 FROM unnest($1::text[]) AS w(id) ORDER BY id ON CONFLICT (id) DO NOTHING", [ids]);
    const { rows } = await client.query<{ id: string; starts: string }>("SELECT id, starts FROM flow_windows WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", [ids]);
    for (const row of rows) windows.set(row.id, readWindow(row.starts));
  }
  const changed = new Map<string, number>();
  const taken = shares.map(() => 0);
  const take: number[] = [];
  const skipped: Array<{ id: number; error: string }> = [];
  const throttled: Array<{ id: number; until: number }> = [];
  for (const row of ready) {
    if (take.length >= options.limit) break;
    const share = shareOf.get(row.plugin)!;
    if (taken[share]! >= shares[share]!.limit) continue;
    const scope = row.concurrency_key === null ? undefined : JSON.stringify([row.plugin, row.concurrency_key]);
    if (scope !== undefined && (running.get(scope) ?? 0) >= row.concurrency_limit!) continue;
    const flow = flows.get(row.id);
    const decision = flow === undefined ? ({ kind: "start" } as const) : firstStart(row.plugin, flow, row.waiting === "throttled", windows, changed, options.now);
    if (decision.kind === "skip") skipped.push({ id: row.id, error: decision.error });
    else if (decision.kind === "wait") throttled.push({ id: row.id, until: decision.until });
    else {
      take.push(row.id);
      taken[share]!++;
      if (scope !== undefined) running.set(scope, (running.get(scope) ?? 0) + 1);
    }
  }
  if (changed.size > 0) {
    const saved = [...changed];
    await client.query(
      "UPDATE flow_windows w SET starts = v.starts, expires_at = v.expires FROM unnest($1::text[], $2::text[], $3::bigint[]) AS v(id, starts, expires) WHERE w.id = v.id",
      [saved.map(([id]) => id), saved.map(([id]) => JSON.stringify(windows.get(id) ?? [])), saved.map(([id, periodMs]) => windowExpiresAt(windows.get(id) ?? [], periodMs))],
    );
  }
  if (skipped.length > 0) {
    await client.query(
      `UPDATE deliveries d SET status = 'skipped', flow = NULL, waiting = NULL, last_error = v.error, updated_at = $3, finished_at = $3
         FROM unnest($1::bigint[], $2::text[]) AS v(id, error) WHERE d.id = v.id AND d.status = 'pending'`,
      [skipped.map((row) => row.id), skipped.map((row) => row.error), options.now],
    );
  }
  if (throttled.length > 0) {
    await client.query(
      `UPDATE deliveries d SET next_at = v.until, waiting = 'throttled', updated_at = $3
         FROM unnest($1::bigint[], $2::bigint[]) AS v(id, until) WHERE d.id = v.id AND d.status = 'pending'`,
      [throttled.map((row) => row.id), throttled.map((row) => row.until), options.now],
    );
  }
  if (take.length === 0) return [];
  const { rows } = await client.query<ClaimRow>(
    `WITH claimed AS (
       UPDATE deliveries d
          SET status = 'running', attempts = d.attempts + 1, lease_token = $2, lease_until = $3, updated_at = $4, flow = NULL, waiting = NULL
         FROM unnest($1::bigint[]) WITH ORDINALITY AS t(id, n) WHERE d.id = t.id AND d.status = 'pending'
       RETURNING d.id, d.kind, d.plugin, d.target, d.attempts, d.max_attempts, d.lease_token, d.suspect, d.input, d.event_seq, t.n)
     SELECT c.*, e.id AS event_id, e.name AS event_name, e.payload, e.received_at, e.depth, e.source, e.source_user
       FROM claimed c JOIN events e ON e.seq = c.event_seq ORDER BY c.n`,
    [take, randomUUID(), options.now + options.leaseMs, options.now],
  );
  return rows.map(toClaimedDelivery);
}

/** Whether ready flow-controlled deliveries of these plugins may be waiting (one seek of deliveries_pending_flow per plugin). */
export async function flowControlledPending(on: Queryable, plugins: readonly string[]): Promise<boolean> {
  const { rows } = await on.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM unnest($1::text[]) AS k(plugin) CROSS JOIN LATERAL (
       SELECT 1 FROM deliveries d WHERE d.plugin = k.plugin AND d.status = 'pending' AND (d.flow IS NOT NULL OR d.concurrency_key IS NOT NULL) LIMIT 1) f) AS found`,
    [plugins],
  );
  return rows[0]!.found;
}

/**
 * What a result writes into its delivery `d`, from the columns of `v` (finishValues, one row per
 * result): the single finish below and the batched one (postgres-finishes.ts) share it.
 */
export const FINISH_ASSIGNMENTS = `status = v.status, next_at = v.next_at, last_error = v.error, lease_token = NULL, lease_until = NULL,
            updated_at = v.now, finished_at = v.finished_at, duration_ms = v.duration_ms,
            attempts = d.attempts - v.refund, suspect = COALESCE(v.suspect, d.suspect)`;

/** Records a run's outcome under its lease; null when the lease was lost, else the delivery's order key. */
export async function finishDelivery(on: Queryable, id: number, leaseToken: string, result: DeliveryResult): Promise<{ orderKey: string | null; concurrencyKey: string | null } | null> {
  const v = finishValues(result);
  // Run detail: the attempt's activity goes in the same statement, only if the lease held.
  const attempt = result.attempt ? runAttemptValues(result.attempt) : null;
  // Named: parsed and planned once per connection. The lease token alone fences the row (only a
  // running delivery has one: a claim or a start at accept sets it, every way out of running
  // clears it); with `status = 'running'` beside it, the generic plan walked the partial index of
  // running deliveries, dead entries and all, instead of the primary key.
  const { rows } = await on.query<{ order_key: string | null; concurrency_key: string | null }>({
    name: "hookd.finish",
    text: `WITH finished AS (
       UPDATE deliveries d SET ${FINISH_ASSIGNMENTS}
         FROM (SELECT $3::text AS status, $4::bigint AS now, $5::bigint AS next_at, $6::text AS error, $7::bigint AS finished_at,
                      $8::bigint AS duration_ms, $9::int AS refund, $10::smallint AS suspect) AS v
        WHERE d.id = $1 AND d.lease_token = $2
       RETURNING d.id, d.order_key, d.concurrency_key),
     attempt AS (
       INSERT INTO run_attempts (delivery_id, attempt, started_at, duration_ms, status, code, error, activity)
       SELECT id, $11, $12, $13, $14, $15, $16, $17 FROM finished WHERE $11::integer IS NOT NULL
       ON CONFLICT (delivery_id, attempt) DO UPDATE
         SET started_at = excluded.started_at, duration_ms = excluded.duration_ms, status = excluded.status,
             code = excluded.code, error = excluded.error, activity = excluded.activity)
     SELECT order_key, concurrency_key FROM finished`,
    values: [id, leaseToken, v.status, v.now, v.nextAt, v.error, v.finishedAt, v.durationMs, v.refund, v.suspect, ...(attempt ?? [null, null, null, null, null, null, null])],
  });
  return rows.length === 0 ? null : { orderKey: rows[0]!.order_key, concurrencyKey: rows[0]!.concurrency_key };
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
