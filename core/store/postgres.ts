/**
 * The shared store: PostgreSQL through `pg`, for several hookd instances on one database.
 *
 * The same contract as the SQLite store (types.ts), kept with PostgreSQL's own tools:
 * - an event, its idempotency key and its deliveries are one transaction; COMMIT returns after the
 *   WAL flush (`synchronous_commit=on`, the server default), on a standby too when
 *   `synchronous_standby_names` names one. Concurrent accepts use their own pooled connections
 *   and commit side by side (the server groups the flushes).
 * - instances claim with `FOR UPDATE SKIP LOCKED`: a row another instance is claiming is skipped,
 *   never waited for and never claimed twice; the lease token fences late finishes.
 * - per-key order: accepts that carry an order key take a transaction advisory lock on
 *   (plugin, key) before inserting, so ids of one key are allocated and committed in the same
 *   order and a claim can never see a later delivery of a key without the earlier one.
 * - LISTEN/NOTIFY: writes that make work ready notify a channel; every instance listens and wakes
 *   its dispatcher, so an idle instance does not wait for its next sweep. The NOTIFY is sent after
 *   the commit, on its own, at most one in flight per instance (the ones asked for meanwhile are
 *   merged into the next): a NOTIFY inside the accepting transaction would take the server's
 *   global notify lock through that transaction's WAL flush, serializing every accept.
 * - only expired leases are released at start: the other instances' running leases are alive.
 * - durability, as on SQLite with FULL: what a caller was promised (an accepted event, a replay,
 *   a manual retry) waits for the WAL flush. Bookkeeping (claims, finishes, lease renewals,
 *   ctx.kv) commits with `synchronous_commit=off` on a pool of its own: the WAL is one sequence,
 *   so the next flushed commit makes it durable too, and a server crash before that only means a
 *   run happens again, which at-least-once allows.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { HookdError } from "../errors.ts";
import { migrate, quoteIdent } from "./postgres-schema.ts";
import { kvLimit } from "./kv-limit.ts";
import { RUN_STATS_SQL, toRunStats } from "./run-stats.ts";
import { MAX_ATTEMPTS_LISTED, MAX_CHILDREN_LISTED, runAttemptValues, toRunAttemptRecord, type RunAttemptRow } from "./run-attempts.ts";
import { eventValues, RUN_COLUMNS, toClaimedDelivery, toEventRecord, toRunRecord, type ClaimRow, type EventRow, type RunRow } from "./sqlite-schema.ts";
import type {
  AcceptOutcome,
  AddedDeliveries,
  ClaimedDelivery,
  ClaimOptions,
  DeliveryCountFilter,
  DeliveryRecord,
  DeliveryResult,
  DeliveryStatus,
  DeliveryTarget,
  EventRecord,
  ListEventsFilter,
  ListRunsFilter,
  NewEvent,
  PruneOptions,
  RunAttemptRecord,
  RunStatsRows,
  Store,
} from "./types.ts";

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/db`; a `schema` query parameter picks the schema (default `hookd`). */
  url: string;
  /** Overrides the URL's `schema`. */
  schema?: string;
  /** Pool size per instance (default 10). */
  maxConnections?: number;
  /**
   * `statement_timeout` of the store's connections (default 30 s): a claim, finish, renewal or
   * kv call stuck on a lock fails and is retried instead of holding the dispatcher for good.
   */
  statementTimeoutMs?: number | undefined;
}

/** How often another instance's work may wake this one's dispatcher, at most. */
const REMOTE_WAKE_MS = 20;

const LEASE_LOST_ON_LAST_ATTEMPT = JSON.stringify({
  code: "HOOKD_RUN_ABORTED",
  message: "run aborted: its lease expired on the last attempt (the process running it stopped or hung)",
});

/** bigint (int8) columns hold epoch ms and ids: well inside a double's exact range. */
const TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

export class PostgresStore implements Store {
  readonly schema: string;
  private readonly pool: pg.Pool;
  /** Claims, finishes, lease renewals and ctx.kv: commits that do not wait for the WAL flush (see the header). */
  private readonly bookkeeping: pg.Pool;
  private readonly channel: string;
  private readonly connection: pg.ClientConfig;
  private listener: pg.Client | undefined;
  private readonly remoteWork = new Set<() => void>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private notifying = false;
  /** Tells this instance's NOTIFYs from the others'. */
  private readonly token = randomUUID();
  private wakeTimer: NodeJS.Timeout | undefined;
  private lastWake = -Infinity;
  private notifyAgain = false;

  private constructor(options: PostgresStoreOptions) {
    const url = new URL(options.url);
    const schema = options.schema ?? url.searchParams.get("schema") ?? "hookd";
    url.searchParams.delete("schema");
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) throw new HookdError("HOOKD_STORE_UNSUPPORTED", [`schema "${schema}" (letters, digits and _ only)`]);
    this.schema = schema;
    this.channel = `hookd_work_${schema}`.slice(0, 63);
    // statement_timeout: no store call waits for good (on a lock, a stalled server); it fails,
    // and its caller retries (the dispatcher) or answers 5xx (an accept, which the sender retries).
    const statementTimeout = Math.floor(options.statementTimeoutMs ?? 30_000);
    this.connection = { connectionString: url.toString(), options: `-c search_path=${schema}`, types: TYPES, application_name: "hookd", statement_timeout: statementTimeout };
    this.pool = new pg.Pool({ ...this.connection, max: options.maxConnections ?? 8 });
    this.bookkeeping = new pg.Pool({ ...this.connection, options: `${this.connection.options} -c synchronous_commit=off`, max: Math.max(2, Math.ceil((options.maxConnections ?? 8) / 2)) });
    // An idle connection the server dropped: the pool replaces it; a query on it fails on its own.
    this.pool.on("error", () => undefined);
    this.bookkeeping.on("error", () => undefined);
  }

  /** Connects, runs the migrations (under an advisory lock), and starts listening for other instances' work. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(options);
    try {
      const client = await store.pool.connect();
      try {
        // A migration waits on the other instances' migration (an advisory lock) as long as it takes.
        await client.query("SET statement_timeout = 0");
        await migrate(client, store.schema);
        await client.query("RESET statement_timeout");
      } finally {
        client.release();
      }
      await store.listen();
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    return store;
  }

  /** Calls `callback` when another instance stored work this one may claim; returns the unsubscribe. */
  onRemoteWork(callback: () => void): () => void {
    this.remoteWork.add(callback);
    return () => this.remoteWork.delete(callback);
  }

  /** Several instances share the store: only leases that expired are freed at start. */
  recoverAfterRestart(now: number): Promise<number> {
    return this.releaseExpiredLeases(now);
  }

  async acceptEvent(event: NewEvent, deliveries: readonly DeliveryTarget[]): Promise<AcceptOutcome> {
    if (this.closed) throw new Error("store is closed");
    // An emitted event: its root's count first, in the same transaction (see countDescendant).
    const outcome =
      event.parentId === undefined
        ? await this.insertEvent(this.pool, event, deliveries, null)
        : await this.transaction(async (client) => this.insertEvent(client, event, deliveries, await countDescendant(client, event)));
    // After the commit: the others must find the work when they look.
    if (outcome.kind === "stored" && deliveries.length > 0) this.notifyWork();
    return outcome;
  }

  private async insertEvent(on: pg.Pool | pg.PoolClient, event: NewEvent, deliveries: readonly DeliveryTarget[], root: string | null): Promise<AcceptOutcome> {
    // One statement is one transaction, and one round trip: the event, the order-key locks, then
    // the deliveries (the lock subquery gates the insert, so ids are drawn only once the keys are
    // held). A repeat of an idempotency key being stored right now waits for that commit, then
    // inserts nothing and finds the first below.
    const { rows } = await on.query<{ seq: number }>(
      `WITH ev AS (
         INSERT INTO events (id, name, payload, received_at, source, parent_id, depth, idempotency_key, body_hash, root_id, traceparent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $19, $20)
         ${event.idempotencyKey === undefined ? "" : "ON CONFLICT (idempotency_key) DO NOTHING"}
         RETURNING seq),
       ${DELIVERY_INSERT_CTES("(SELECT seq FROM ev)", 10)}
       SELECT seq FROM ev`,
      [...eventValues(event), ...deliveryParams(deliveries, event.receivedAt, null), root, event.traceparent ?? null],
    );
    if (rows.length === 0) {
      const found = await on.query<{ id: string; body_hash: string | null }>("SELECT id, body_hash FROM events WHERE idempotency_key = $1", [event.idempotencyKey]);
      const existing = found.rows[0]!;
      return existing.body_hash === (event.bodyHash ?? null) ? { kind: "duplicate", id: existing.id } : { kind: "conflict", id: existing.id };
    }
    return { kind: "stored", id: event.id, deliveries: deliveries.length };
  }

  async claimDeliveries(options: ClaimOptions): Promise<ClaimedDelivery[]> {
    if (options.plugins.length === 0 || options.limit <= 0) return [];
    const shares = (options.shares ?? options.plugins.map((plugin) => ({ plugins: [plugin], limit: options.limit }))).filter((share) => share.limit > 0);
    const keys = shares.flatMap((share, group) => share.plugins.map((plugin) => ({ plugin, group, limit: share.limit })));
    if (keys.length === 0) return [];
    // The attempt is counted at claim, before the run (see sqlite-writes.ts). Only the earliest
    // unfinished delivery of a plugin+key is ever ready, and SKIP LOCKED hands it to one claimer.
    // Round-robin across the shares (see ClaimOptions.shares): each plugin's oldest ready rows
    // through its own index seek (LATERAL), ranked within their share, then every share's first
    // before any share's second. Rows locked here and not claimed are free again at the commit.
    const { rows } = await this.bookkeeping.query<ClaimRow & { next_at: number; rank: number }>(
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
       SELECT c.*, e.id AS event_id, e.name AS event_name, e.payload, e.received_at, e.depth
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

  async finishDelivery(id: number, leaseToken: string, result: DeliveryResult): Promise<boolean> {
    // Finishing a keyed delivery frees its key; a retry becomes due later: both may be another instance's work.
    // Run detail: the attempt's activity goes in the same statement, only if the lease held.
    const attempt = result.attempt ? runAttemptValues(result.attempt) : null;
    const { rows } = await this.bookkeeping.query<{ order_key: string | null }>(
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
      [
        id,
        leaseToken,
        result.status,
        result.now,
        result.nextAt ?? result.now,
        result.error === undefined ? null : JSON.stringify(result.error),
        result.status === "pending" ? null : result.now,
        Math.round(result.durationMs),
        result.refundAttempt ? 1 : 0,
        result.suspect === undefined ? null : result.suspect ? 1 : 0,
        ...(attempt ?? [null, null, null, null, null, null, null]),
      ],
    );
    if (rows.length === 0) return false;
    if (rows[0]!.order_key !== null || result.status === "pending") this.notifyWork();
    return true;
  }

  async renewLease(id: number, leaseToken: string, until: number): Promise<boolean> {
    const { rowCount } = await this.bookkeeping.query("UPDATE deliveries SET lease_until = $1 WHERE id = $2 AND lease_token = $3 AND status = 'running'", [until, id, leaseToken]);
    return rowCount === 1;
  }

  async releaseExpiredLeases(now: number): Promise<number> {
    const changed = await this.transaction(async (client) => {
      const dead = await client.query(
        `UPDATE deliveries SET status = 'dead', lease_token = NULL, lease_until = NULL, last_error = $2, updated_at = $1, finished_at = $1
          WHERE status = 'running' AND lease_until < $1 AND attempts >= max_attempts`,
        [now, LEASE_LOST_ON_LAST_ATTEMPT],
      );
      const released = await client.query(
        `UPDATE deliveries SET status = 'pending', lease_token = NULL, lease_until = NULL, updated_at = $1, next_at = $1
          WHERE status = 'running' AND lease_until < $1`,
        [now],
      );
      return (dead.rowCount ?? 0) + (released.rowCount ?? 0);
    });
    if (changed > 0) this.notifyWork();
    return changed;
  }

  async releaseDeliveries(leases: ReadonlyArray<{ id: number; leaseToken: string }>, now: number): Promise<number> {
    if (leases.length === 0) return 0;
    const { rowCount } = await this.pool.query(
      `UPDATE deliveries d SET status = 'pending', attempts = d.attempts - 1, lease_token = NULL, lease_until = NULL, next_at = $3, updated_at = $3
         FROM unnest($1::bigint[], $2::text[]) AS l(id, token)
        WHERE d.id = l.id AND d.lease_token = l.token AND d.status = 'running'`,
      [leases.map((l) => l.id), leases.map((l) => l.leaseToken), now],
    );
    if ((rowCount ?? 0) > 0) this.notifyWork();
    return rowCount ?? 0;
  }

  async retryDelivery(id: number, now: number): Promise<DeliveryRecord> {
    const record = await this.transaction(async (client) => {
      const { rows } = await client.query<{ status: DeliveryStatus; last_error: string | null }>("SELECT status, last_error FROM deliveries WHERE id = $1 FOR UPDATE", [id]);
      const row = rows[0];
      if (!row) throw new HookdError("HOOKD_RUN_NOT_FOUND", [id]);
      const failed = row.status === "pending" && row.last_error !== null;
      if (row.status !== "dead" && !failed) throw new HookdError("HOOKD_RUN_NOT_RETRIABLE", [id, row.status]);
      await client.query(
        `UPDATE deliveries SET status = 'pending', max_attempts = attempts + (max_attempts - attempt_base), attempt_base = attempts,
                next_at = $2, updated_at = $2, finished_at = NULL
          WHERE id = $1`,
        [id, now],
      );
      const updated = await client.query<RunRow>(`SELECT ${RUN_COLUMNS} WHERE d.id = $1`, [id]);
      return toRunRecord(updated.rows[0]!);
    });
    this.notifyWork();
    return record;
  }

  async nextDueAt(plugins: readonly string[], suspects = false): Promise<number | null> {
    if (plugins.length === 0) return null;
    // One index seek per plugin (deliveries_pending_by_plugin), never a walk past the others' rows.
    const { rows } = await this.pool.query<{ next: number | null }>(
      `SELECT MIN(n.next) AS next FROM unnest($2::text[]) AS p(plugin) CROSS JOIN LATERAL (
         SELECT d.next_at AS next FROM deliveries d
          WHERE d.plugin = p.plugin AND d.status = 'pending' AND d.suspect = $1
          ORDER BY d.next_at LIMIT 1) n`,
      [suspects ? 1 : 0, plugins],
    );
    return rows[0]!.next;
  }

  async addDeliveries(items: readonly AddedDeliveries[], now: number, replayId?: string): Promise<number> {
    const added = await this.transaction(async (client) => {
      let added = 0;
      for (const item of items) {
        const { rows } = await client.query<{ seq: number }>("SELECT seq FROM events WHERE id = $1", [item.eventId]);
        if (rows.length === 0) continue; // pruned meanwhile
        await this.insertDeliveries(client, rows[0]!.seq, item.targets, now, replayId ?? null);
        added += item.targets.length;
      }
      return added;
    });
    if (added > 0) this.notifyWork();
    return added;
  }

  async pruneEvents(options: PruneOptions): Promise<number> {
    // Oldest first; events with unfinished deliveries are never touched.
    const { rowCount } = await this.pool.query(
      `DELETE FROM events WHERE seq IN (
         SELECT ev.seq FROM events ev
          WHERE ev.received_at < $1
            AND NOT EXISTS (
                  SELECT 1 FROM deliveries d
                   WHERE d.event_seq = ev.seq
                     AND (d.status IN ('pending', 'running')
                          OR (d.status = 'done' AND ev.received_at >= $2)
                          OR (d.status = 'dead' AND ev.received_at >= $3)))
            AND (ev.received_at < $2 OR EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = ev.seq AND d.status = 'dead'))
          ORDER BY ev.received_at LIMIT $4)`,
      [Math.max(options.doneBefore, options.deadBefore), options.doneBefore, options.deadBefore, options.limit],
    );
    return rowCount ?? 0;
  }

  // --- Run detail (core/store/run-attempts.ts) ---
  async getRun(id: number): Promise<DeliveryRecord | null> {
    const { rows } = await this.pool.query<RunRow>(`SELECT ${RUN_COLUMNS} WHERE d.id = $1`, [id]);
    return rows[0] ? toRunRecord(rows[0]) : null;
  }

  async listRunAttempts(deliveryId: number): Promise<RunAttemptRecord[]> {
    const { rows } = await this.pool.query<RunAttemptRow>(
      "SELECT attempt, started_at, duration_ms, status, code, error, activity FROM run_attempts WHERE delivery_id = $1 ORDER BY attempt LIMIT $2",
      [deliveryId, MAX_ATTEMPTS_LISTED],
    );
    return rows.map(toRunAttemptRecord);
  }

  async listChildEvents(parentId: string, limit: number): Promise<EventRecord[]> {
    const { rows } = await this.pool.query<EventRow>("SELECT * FROM events WHERE parent_id = $1 ORDER BY seq LIMIT $2", [parentId, Math.min(Math.max(limit, 1), MAX_CHILDREN_LISTED)]);
    return rows.map(toEventRecord);
  }

  async runStats(since: number): Promise<RunStatsRows> {
    const [perMinute, durations, accepted, dead] = await Promise.all(Object.values(RUN_STATS_SQL).map((sql) => this.pool.query(sql, [since])));
    return toRunStats({ perMinute: perMinute!.rows, durations: durations!.rows, accepted: accepted!.rows, dead: dead!.rows });
  }

  async eventTraceparent(id: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ traceparent: string | null }>("SELECT traceparent FROM events WHERE id = $1", [id]);
    return rows[0]?.traceparent ?? null;
  }

  async getEvent(id: string): Promise<EventRecord | null> {
    const { rows } = await this.pool.query<EventRow>("SELECT * FROM events WHERE id = $1", [id]);
    return rows[0] ? toEventRecord(rows[0]) : null;
  }

  async listEvents(filter: ListEventsFilter): Promise<EventRecord[]> {
    const ascending = filter.after !== undefined;
    const bounded = filter.maxPayloadBytes !== undefined && !ascending;
    // Bounded (a list for people): octet_length reads a toasted value's size without fetching it.
    const columns = bounded
      ? `seq, id, name, received_at, source, parent_id, depth, root_id, octet_length(payload) AS payload_bytes,
         CASE WHEN octet_length(payload) > ${Math.floor(filter.maxPayloadBytes!)} THEN NULL ELSE payload END AS payload`
      : "*";
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${columns} FROM events
        WHERE ($1::text IS NULL OR name = $1) AND ($2::bigint IS NULL OR received_at >= $2)
          AND ($3::bigint IS NULL OR received_at < $3) AND ($4::bigint IS NULL OR seq < $4)
          AND ($5::bigint IS NULL OR seq > $5)
        ORDER BY seq ${ascending ? "ASC" : "DESC"} LIMIT $6`,
      [filter.name ?? null, filter.since ?? null, filter.until ?? null, filter.before ?? null, filter.after ?? null, clampLimit(filter.limit)],
    );
    return rows.map(toEventRecord);
  }

  async listRuns(filter: ListRunsFilter): Promise<DeliveryRecord[]> {
    const { rows } = await this.pool.query<RunRow>(
      `SELECT ${RUN_COLUMNS}
        WHERE ($1::text IS NULL OR d.status = $1) AND (NOT $2::boolean OR d.last_error IS NOT NULL)
          AND ($3::text IS NULL OR d.plugin = $3) AND ($4::text IS NULL OR e.name = $4)
          AND ($5::text IS NULL OR e.id = $5) AND ($6::text IS NULL OR d.replay_id = $6)
          AND ($7::bigint IS NULL OR d.created_at >= $7) AND ($8::bigint IS NULL OR d.created_at < $8)
          AND ($9::bigint IS NULL OR d.id < $9)
        ORDER BY d.id DESC LIMIT $10`,
      [
        filter.status === "failed" ? "pending" : (filter.status ?? null),
        filter.status === "failed",
        filter.plugin ?? null,
        filter.event ?? null,
        filter.eventId ?? null,
        filter.replayId ?? null,
        filter.since ?? null,
        filter.until ?? null,
        filter.before ?? null,
        clampLimit(filter.limit),
      ],
    );
    return rows.map(toRunRecord);
  }

  async countEvents(filter: Pick<ListEventsFilter, "name" | "since" | "until">): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM events
        WHERE ($1::text IS NULL OR name = $1) AND ($2::bigint IS NULL OR received_at >= $2) AND ($3::bigint IS NULL OR received_at < $3)`,
      [filter.name ?? null, filter.since ?? null, filter.until ?? null],
    );
    return rows[0]!.n;
  }

  async countByStatus(filter: DeliveryCountFilter = {}): Promise<Record<DeliveryStatus, number>> {
    const counts: Record<DeliveryStatus, number> = { pending: 0, running: 0, done: 0, dead: 0 };
    const { rows } = await this.pool.query<{ status: DeliveryStatus; n: number }>(
      "SELECT status, COUNT(*) AS n FROM deliveries WHERE ($1::text IS NULL OR replay_id = $1) GROUP BY status",
      [filter.replayId ?? null],
    );
    for (const row of rows) counts[row.status] = row.n;
    return counts;
  }

  async oldestPendingAt(): Promise<number | null> {
    const { rows } = await this.pool.query<{ oldest: number | null }>("SELECT MIN(created_at) AS oldest FROM deliveries WHERE status = 'pending'");
    return rows[0]!.oldest;
  }

  async checkWritable(): Promise<void> {
    if (this.closed) throw new Error("store is closed");
    // A short statement timeout: a stuck server answers "not writable" in a moment.
    await this.transaction(async (client) => {
      await client.query("SET LOCAL statement_timeout = 2000");
      await client.query("INSERT INTO meta (key, value) VALUES ('write_probe', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(Date.now())]);
    });
  }

  async kvGet(plugin: string, key: string): Promise<unknown> {
    const { rows } = await this.pool.query<{ value: string }>("SELECT value FROM kv WHERE plugin = $1 AND key = $2", [plugin, key]);
    return rows[0] ? JSON.parse(rows[0].value) : undefined;
  }

  async kvSet(plugin: string, key: string, value: unknown, limits?: { maxKeys?: number | undefined }): Promise<void> {
    const params = [plugin, key, JSON.stringify(value), Date.now()];
    const maxKeys = limits?.maxKeys;
    if (maxKeys === undefined) {
      await this.bookkeeping.query(
        `INSERT INTO kv (plugin, key, value, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        params,
      );
      return;
    }
    const client = await this.bookkeeping.connect();
    let written: number | null;
    try {
      await client.query("BEGIN");
      // One plugin's sets take turns (on every instance: an advisory lock of this schema and
      // plugin). Under READ COMMITTED two sets of new keys would each count without the other's
      // key and both write; the count below runs after the lock, in a snapshot of its own.
      await client.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':kv'), hashtext($1))", [plugin]);
      ({ rowCount: written } = await client.query(
        `INSERT INTO kv (plugin, key, value, updated_at)
         SELECT $1, $2, $3, $4
          WHERE EXISTS (SELECT 1 FROM kv WHERE plugin = $1 AND key = $2)
             OR (SELECT count(*) FROM (SELECT 1 FROM kv WHERE plugin = $1 LIMIT $5) held) < $5
         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        [...params, maxKeys],
      ));
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    if (written === 0) throw kvLimit(maxKeys, key);
  }

  async kvDelete(plugin: string, key: string): Promise<boolean> {
    const { rowCount } = await this.bookkeeping.query("DELETE FROM kv WHERE plugin = $1 AND key = $2", [plugin, key]);
    return rowCount === 1;
  }

  async kvList(plugin: string, prefix: string, limit: number): Promise<string[]> {
    // Prefix match without LIKE, so `%` and `_` in keys mean themselves.
    const { rows } = await this.pool.query<{ key: string }>(
      "SELECT key FROM kv WHERE plugin = $1 AND substr(key, 1, length($2)) = $2 ORDER BY key LIMIT $3",
      [plugin, prefix, limit],
    );
    return rows.map((row) => row.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.wakeTimer);
    this.remoteWork.clear();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await Promise.all([this.pool.end(), this.bookkeeping.end()]);
  }

  /** Inserts deliveries for a stored event, holding each order key first (see the header). */
  private async insertDeliveries(client: pg.PoolClient, seq: number, targets: readonly DeliveryTarget[], now: number, replayId: string | null): Promise<void> {
    if (targets.length === 0) return;
    await client.query(`WITH ${DELIVERY_INSERT_CTES("$1::bigint", 2)} SELECT 1`, [seq, ...deliveryParams(targets, now, replayId)]);
  }

  /**
   * Tells the other instances that committed work waits. One NOTIFY in flight at a time; asks
   * that arrive meanwhile are merged into one more after it (sent after their commits).
   */
  private notifyWork(): void {
    if (this.closed) return;
    if (this.notifying) {
      this.notifyAgain = true;
      return;
    }
    this.notifying = true;
    this.notifyAgain = false;
    this.pool
      .query("SELECT pg_notify($1, $2)", [this.channel, this.token])
      // A lost NOTIFY only delays the others until their next sweep.
      .catch(() => undefined)
      .finally(() => {
        this.notifying = false;
        if (this.notifyAgain) this.notifyWork();
      });
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error("store is closed");
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** A connection of its own, LISTENing; when it drops, it reconnects and wakes (notifications may have been missed). */
  private async listen(): Promise<void> {
    const client = new pg.Client(this.connection);
    // Our own NOTIFYs are for the others: this instance's dispatcher woke already.
    client.on("notification", (message) => message.payload !== this.token && this.emitRemoteWork());
    client.on("error", () => undefined);
    client.on("end", () => {
      if (this.closed || this.listener !== client) return;
      this.listener = undefined;
      this.reconnectTimer = setTimeout(() => {
        this.listen().then(
          () => this.emitRemoteWork(),
          () => undefined,
        );
      }, 1000);
      this.reconnectTimer.unref();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.channel)}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      if (this.listener === undefined && !this.closed && this.remoteWork.size > 0) {
        // Retried like a dropped connection.
        this.reconnectTimer = setTimeout(() => void this.listen().then(() => this.emitRemoteWork(), () => undefined), 1000);
        this.reconnectTimer.unref();
      }
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
  }

  /**
   * Wakes the dispatcher, at most once per REMOTE_WAKE_MS: an idle instance starts within that,
   * and a busy one (which claims after each of its own runs anyway) is not made to claim once
   * per event the others store.
   */
  private emitRemoteWork(): void {
    if (this.wakeTimer !== undefined) return;
    const wait = this.lastWake + REMOTE_WAKE_MS - performance.now();
    const emit = () => {
      this.wakeTimer = undefined;
      this.lastWake = performance.now();
      for (const callback of this.remoteWork) callback();
    };
    if (wait <= 0) return emit();
    this.wakeTimer = setTimeout(emit, wait);
    this.wakeTimer.unref();
  }
}

/**
 * An emitted event's root (its parent's root, or the parent itself), counted against the root's
 * budget. The UPDATE locks the root's row, so emits of one root count one after the other and
 * the check (`descendants < max`, re-read after the lock) and the count are one atomic step. It
 * runs before the order-key locks, always in that order, so it cannot deadlock with them. A root
 * pruned meanwhile (retention) can no longer be counted against: the chain goes on unbounded by it.
 */
async function countDescendant(client: pg.PoolClient, event: NewEvent): Promise<string | null> {
  const { rows } = await client.query<{ root: string }>("SELECT COALESCE(root_id, id) AS root FROM events WHERE id = $1", [event.parentId]);
  const root = rows[0]?.root;
  if (root === undefined) return null;
  if (event.maxDescendants === undefined) return root;
  const counted = await client.query("UPDATE events SET descendants = descendants + 1 WHERE id = $1 AND descendants < $2", [root, event.maxDescendants]);
  if (counted.rowCount === 0 && (await client.query("SELECT 1 FROM events WHERE id = $1", [root])).rowCount! > 0) {
    throw new HookdError("HOOKD_EVENT_EMIT_BUDGET", [root, event.maxDescendants, event.name]);
  }
  return root;
}

/**
 * The order-key locks and the delivery insert, as CTEs of one statement; `seq` is the event's
 * seq expression, the parameters (see deliveryParams) start at `$first`. The locks are taken in
 * hash order (two accepts cannot deadlock), and the insert waits for them through its WHERE.
 */
function DELIVERY_INSERT_CTES(seq: string, first: number): string {
  const p = (i: number) => `$${first + i}`;
  return `held AS MATERIALIZED (
         SELECT pg_advisory_xact_lock(hashtext('hookd.order.' || current_schema()), h) AS locked
           FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(${p(0)}::text[]) AS k WHERE k IS NOT NULL ORDER BY h) AS keys),
       ins AS (
         INSERT INTO deliveries (event_seq, kind, plugin, target, input, order_key, status, max_attempts, next_at, created_at, updated_at, replay_id)
         SELECT s.seq, t.kind, t.plugin, t.target, t.input, t.order_key, 'pending', t.max_attempts, ${p(1)}, ${p(1)}, ${p(1)}, ${p(2)}
           FROM (SELECT ${seq} AS seq) AS s,
                unnest(${p(3)}::text[], ${p(4)}::text[], ${p(5)}::text[], ${p(6)}::text[], ${p(7)}::text[], ${p(8)}::int[]) WITH ORDINALITY
                  AS t(kind, plugin, target, input, order_key, max_attempts, n)
          WHERE s.seq IS NOT NULL AND (SELECT count(*) FROM held) >= 0
          ORDER BY t.n
         RETURNING 1)`;
}

function deliveryParams(targets: readonly DeliveryTarget[], now: number, replayId: string | null): unknown[] {
  return [
    targets.map((t) => (t.orderKey === undefined ? null : JSON.stringify([t.plugin, t.orderKey]))),
    now,
    replayId,
    targets.map((t) => t.kind),
    targets.map((t) => t.plugin),
    targets.map((t) => t.target),
    targets.map((t) => (t.input === undefined ? null : JSON.stringify(t.input))),
    targets.map((t) => t.orderKey ?? null),
    targets.map((t) => t.maxAttempts),
  ];
}

function clampLimit(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? 100, 1), 1000);
}
