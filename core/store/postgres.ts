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
 * - LISTEN/NOTIFY: writes that make work ready notify a channel after their commit; every
 *   instance listens and wakes its dispatcher (postgres-wakeup.ts).
 * - only expired leases are released at start: the other instances' running leases are alive.
 * - durability, as on SQLite with FULL: what a caller was promised (an accepted event, a replay,
 *   a manual retry) waits for the WAL flush. Bookkeeping (claims, finishes, lease renewals,
 *   ctx.kv) commits with `synchronous_commit=off` on a pool of its own: the WAL is one sequence,
 *   so the next flushed commit makes it durable too, and a server crash before that only means a
 *   run happens again, which at-least-once allows.
 *
 * Here: accepts, replays, reads, kv. Leases: postgres-claims.ts; rules of both stores: rules.ts.
 */
import pg from "pg";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { debouncedError, dueAtOf, FLOW_COUNTS_SQL, flowColumns, type FlowCount } from "./flow-windows.ts";
import { kvLimit } from "./kv-limit.ts";
import * as leases from "./postgres-claims.ts";
import { AcceptBatcher, isBatchable, orderKeyLocksSql, orderLockKey, startedByLease } from "./postgres-accepts.ts";
import { FinishBatcher } from "./postgres-finishes.ts";
import { migrate } from "./postgres-schema.ts";
import { PostgresWakeup } from "./postgres-wakeup.ts";
import { deliveryValues, eventValues, RUN_COLUMNS, toEventRecord, toKvValue, toRunRecord, toStatusCounts, type EventRow, type RunRow } from "./rows.ts";
import { assertRetriable, claimShares, clampPageLimit, emitBudgetSpent, eventsQuery, nothingToClaim, repeatOutcome, runsQuery } from "./rules.ts";
import { PostgresOktellCommands } from "./oktell-commands-postgres.ts";
import { RUN_STATS_SQL, toRunStats } from "./run-stats.ts";
import { MAX_ATTEMPTS_LISTED, MAX_CHILDREN_LISTED, toRunAttemptRecord, type RunAttemptRow } from "./run-attempts.ts";
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
  ListScheduledFilter,
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
  /**
   * Connections per instance for accepts and reads (default DEFAULT_MAX_CONNECTIONS); claims,
   * results, lease renewals and ctx.kv have a pool of half as many more.
   */
  maxConnections?: number | undefined;
  /**
   * `statement_timeout` of the store's connections (default 30 s): a claim, finish, renewal or
   * kv call stuck on a lock fails and is retried instead of holding the dispatcher for good.
   */
  statementTimeoutMs?: number | undefined;
}

/**
 * Accepts in flight at once, per instance: each holds its connection through its commit's WAL
 * flush, so the pool bounds an instance's accept rate at about size / commit time. 16 did not
 * beat 8 in alternating runs of the postgres bench on a 2-core machine (server and instances on
 * the same cores; three instances were slower with 16), so 8 it stays; store.maxConnections
 * changes it where the server has cores to spare.
 */
const DEFAULT_MAX_CONNECTIONS = 8;

/** bigint (int8) columns hold epoch ms and ids: well inside a double's exact range. */
/** How often a claim without declared flow rules looks for flow-controlled deliveries left over. */
const FLOW_RECHECK_MS = 5000;

const TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

export class PostgresStore implements Store {
  readonly schema: string;
  private readonly pool: pg.Pool;
  /** Claims, finishes, lease renewals and ctx.kv: commits that do not wait for the WAL flush (see the header). */
  private readonly bookkeeping: pg.Pool;
  private readonly wakeup: PostgresWakeup;
  /** External events due now with no flow rules, inserted together (postgres-accepts.ts). */
  private readonly accepts: AcceptBatcher;
  /** Results without run detail, written together (postgres-finishes.ts). */
  private readonly finishes: FinishBatcher;
  /** The telephony workstation commands (core/store/oktell-commands-postgres.ts). */
  readonly oktellCommands: PostgresOktellCommands;
  private closed = false;
  // Flow-controlled deliveries left of a version that declared rules (see mayHaveFlowControlled).
  private flowCheckedAt = 0;
  private flowLeft = true;

  private constructor(options: PostgresStoreOptions) {
    const url = new URL(options.url);
    const schema = options.schema ?? url.searchParams.get("schema") ?? "hookd";
    url.searchParams.delete("schema");
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) throw new HookdError("HOOKD_STORE_UNSUPPORTED", [`schema "${schema}" (letters, digits and _ only)`]);
    this.schema = schema;
    // statement_timeout: no store call waits for good (on a lock, a stalled server); it fails,
    // and its caller retries (the dispatcher) or answers 5xx (an accept, which the sender retries).
    const statementTimeout = Math.floor(options.statementTimeoutMs ?? 30_000);
    const connection: pg.ClientConfig = { connectionString: url.toString(), options: `-c search_path=${schema}`, types: TYPES, application_name: "hookd", statement_timeout: statementTimeout };
    const max = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.pool = new pg.Pool({ ...connection, max });
    this.bookkeeping = new pg.Pool({ ...connection, options: `${connection.options} -c synchronous_commit=off`, max: Math.max(2, Math.ceil(max / 2)) });
    this.wakeup = new PostgresWakeup(connection, `hookd_work_${schema}`.slice(0, 63), this.pool);
    this.accepts = new AcceptBatcher(this.pool, { repeatOf: (event) => repeatOf(this.pool, event), alone: (event, targets) => this.insertEvent(this.pool, event, targets, null) });
    this.finishes = new FinishBatcher(this.bookkeeping);
    // An idle connection the server dropped: the pool replaces it; a query on it fails on its own.
    this.pool.on("error", () => undefined);
    this.bookkeeping.on("error", () => undefined);
    this.oktellCommands = new PostgresOktellCommands(this.pool);
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
      await store.wakeup.listen();
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    return store;
  }

  /** Calls `callback` when another instance stored work this one may claim; returns the unsubscribe. */
  onRemoteWork(callback: () => void): () => void {
    return this.wakeup.onRemoteWork(callback);
  }

  /** Several instances share the store: only leases that expired are freed at start. */
  recoverAfterRestart(now: number): Promise<number> {
    return this.releaseExpiredLeases(now);
  }

  async acceptEvent(event: NewEvent, deliveries: readonly DeliveryTarget[]): Promise<AcceptOutcome> {
    if (this.closed) throw new Error("store is closed");
    // An emitted event: its root's count first, in the same transaction (see countDescendant).
    // A debounced delivery skips the earlier one of its scope in the same transaction too.
    // (A delayed event takes no part in debounces: flow-windows.ts.)
    const debounced = event.deliverAt === undefined && deliveries.some((d) => d.flow?.debounce);
    // An external event due now with no flow rules (nearly every event) goes with the others
    // that arrive while earlier accepts commit: one statement and one WAL flush for all of them.
    const outcome = isBatchable(event, deliveries)
      ? await this.accepts.accept(event, deliveries)
      : event.parentId === undefined && !debounced
        ? await this.insertEvent(this.pool, event, deliveries, null)
        : await this.transaction(async (client) => {
            const root = event.parentId === undefined ? null : await countDescendant(client, event);
            const stored = await this.insertEvent(client, event, deliveries, root);
            if (stored.kind === "stored" && debounced) await debounceEarlier(client, event.id, deliveries, event.receivedAt);
            return stored;
          });
    // After the commit: the others must find the work when they look.
    // (Not for deliveries started at accept: there is nothing of them to claim.)
    if (outcome.kind === "stored" && deliveries.length > (outcome.started?.length ?? 0)) this.wakeup.notify();
    return outcome;
  }

  private async insertEvent(on: pg.Pool | pg.PoolClient, event: NewEvent, deliveries: readonly DeliveryTarget[], root: string | null): Promise<AcceptOutcome> {
    if (isPlainAccept(event, deliveries)) return this.insertPlainEvent(on, event, deliveries[0]!, root);
    // One statement is one transaction, and one round trip: the event, the order-key locks, then
    // the deliveries (the lock subquery gates the insert, so ids are drawn only once the keys are
    // held). A repeat of an idempotency key being stored right now waits for that commit, then
    // inserts nothing and finds the first below.
    // Named: each connection parses and plans it once, not at every accept (the planning of this
    // statement was a large share of the server's CPU per event).
    const { rows } = await on.query<{ seq: number; started: string[] }>({
      name: event.idempotencyKey === undefined ? "hookd.accept" : "hookd.accept.idempotent",
      text: `WITH ev AS (
         INSERT INTO events (id, name, payload, received_at, source, parent_id, depth, idempotency_key, body_hash, root_id, deliver_at, source_user, traceparent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $25, $26, $27, $28)
         ${event.idempotencyKey === undefined ? "" : "ON CONFLICT (idempotency_key) DO NOTHING"}
         RETURNING seq),
       ${DELIVERY_INSERT_CTES("(SELECT seq FROM ev)", 10, 29)}
       SELECT seq, ARRAY(SELECT ins.id || ' ' || ins.lease_token FROM ins WHERE ins.status = 'running') AS started FROM ev`,
      values: [
        ...eventValues(event),
        ...deliveryParams(deliveries, event.receivedAt, null, event.deliverAt, event.deliverAt === undefined),
        root,
        event.deliverAt ?? null,
        event.sourceUser ?? null,
        event.traceparent ?? null,
        ...leaseParams(deliveries, event),
      ],
    });
    if (rows.length === 0) return repeatOf(on, event);
    const started = startedAtAccept(deliveries, rows[0]!.started);
    return { kind: "stored", id: event.id, deliveries: deliveries.length, ...(started.length > 0 ? { started } : {}) };
  }

  /**
   * The accept of an event with one delivery that no rule holds back (isPlainAccept): two plain
   * inserts in one statement, without the order-key locks and the column arrays of the general
   * one. Measured on the server (async commit, to leave the WAL flush out): 400-470 µs of CPU per
   * accept for the general statement, 243-273 µs for this one. (Outside a transaction, such
   * accepts go many to a statement: postgres-accepts.ts; this is the statement for one alone.)
   */
  private async insertPlainEvent(on: pg.Pool | pg.PoolClient, event: NewEvent, target: DeliveryTarget, root: string | null): Promise<AcceptOutcome> {
    const [kind, plugin, name, input, , maxAttempts] = deliveryValues(target);
    const { rows } = await on.query<{ id: number; lease_token: string | null }>({
      name: event.idempotencyKey === undefined ? "hookd.accept.plain" : "hookd.accept.plain.idempotent",
      text: `WITH ev AS (
         INSERT INTO events (id, name, payload, received_at, source, parent_id, depth, idempotency_key, body_hash, root_id, source_user, traceparent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ${event.idempotencyKey === undefined ? "" : "ON CONFLICT (idempotency_key) DO NOTHING"}
         RETURNING seq)
       INSERT INTO deliveries (event_seq, kind, plugin, target, input, status, max_attempts, next_at, created_at, updated_at, attempts, lease_token, lease_until)
       SELECT seq, $13, $14, $15, $16, CASE WHEN $18::text IS NULL THEN 'pending' ELSE 'running' END, $17, $4, $4, $4,
              CASE WHEN $18::text IS NULL THEN 0 ELSE 1 END, $18, $19
         FROM ev
       RETURNING id, lease_token`,
      values: [
        ...eventValues(event),
        root,
        event.sourceUser ?? null,
        event.traceparent ?? null,
        kind,
        plugin,
        name,
        input,
        maxAttempts,
        target.lease?.token ?? null,
        target.lease?.until ?? null,
      ],
    });
    if (rows.length === 0) return repeatOf(on, event);
    const row = rows[0]!;
    return { kind: "stored", id: event.id, deliveries: 1, ...(row.lease_token === null ? {} : { started: [{ index: 0, id: row.id }] }) };
  }

  async claimDeliveries(options: ClaimOptions): Promise<ClaimedDelivery[]> {
    if (nothingToClaim(options)) return [];
    // Flow-controlled deliveries are claimed apart, under their locks (postgres-claims.ts), first:
    // what their rules allow is little, and the ordinary claim then fills the rest.
    if (!(await this.mayHaveFlowControlled(options))) return leases.claimDeliveries(this.bookkeeping, options);
    const governed = await inTransaction(this.bookkeeping, (client) => leases.claimFlowControlled(client, options));
    if (governed.length >= options.limit) return governed;
    // Each share has what the flow-controlled claim left of it.
    const shares = claimShares(options)
      .map((share) => ({ plugins: share.plugins, limit: share.limit - governed.filter((d) => share.plugins.includes(d.plugin)).length }))
      .filter((share) => share.limit > 0);
    if (shares.length === 0) return governed;
    return [...governed, ...(await leases.claimDeliveries(this.bookkeeping, { ...options, shares, limit: options.limit - governed.length }))];
  }

  /**
   * Whether the flow-controlled claim is worth its round trips: always while a serving plugin
   * declares flow rules (`ClaimOptions.flowControlled`), else when a look at the partial index,
   * at most every few seconds, finds such deliveries left (of a version that declared rules).
   */
  private async mayHaveFlowControlled(options: ClaimOptions): Promise<boolean> {
    if (options.flowControlled) return true;
    const now = Date.now();
    if (now - this.flowCheckedAt >= FLOW_RECHECK_MS) {
      this.flowCheckedAt = now;
      this.flowLeft = await leases.flowControlledPending(this.bookkeeping, options.plugins);
    }
    return this.flowLeft;
  }

  async finishDelivery(id: number, leaseToken: string, result: DeliveryResult): Promise<boolean> {
    const finished = result.attempt === undefined ? await this.finishes.finish(id, leaseToken, result) : await leases.finishDelivery(this.bookkeeping, id, leaseToken, result);
    if (finished === null) return false;
    // Finishing a keyed delivery frees its key; a retry becomes due later: both may be another instance's work.
    // So does finishing a run of a concurrency scope: its slot is free.
    if (finished.orderKey !== null || finished.concurrencyKey !== null || result.status === "pending") this.wakeup.notify();
    return true;
  }

  renewLease(id: number, leaseToken: string, until: number): Promise<boolean> {
    return leases.renewLease(this.bookkeeping, id, leaseToken, until);
  }

  async releaseExpiredLeases(now: number): Promise<number> {
    const changed = await this.transaction((client) => leases.releaseExpiredLeases(client, now));
    if (changed > 0) this.wakeup.notify();
    return changed;
  }

  async releaseDeliveries(held: ReadonlyArray<{ id: number; leaseToken: string }>, now: number): Promise<number> {
    if (held.length === 0) return 0;
    const released = await leases.releaseDeliveries(this.pool, held, now);
    if (released > 0) this.wakeup.notify();
    return released;
  }

  async retryDelivery(id: number, now: number): Promise<DeliveryRecord> {
    const record = await this.transaction(async (client) => {
      const { rows } = await client.query<{ status: DeliveryStatus; last_error: string | null }>("SELECT status, last_error FROM deliveries WHERE id = $1 FOR UPDATE", [id]);
      assertRetriable(id, rows[0]);
      await client.query(
        `UPDATE deliveries SET status = 'pending', max_attempts = attempts + (max_attempts - attempt_base), attempt_base = attempts,
                next_at = $2, updated_at = $2, finished_at = NULL
          WHERE id = $1`,
        [id, now],
      );
      const updated = await client.query<RunRow>(`SELECT ${RUN_COLUMNS} WHERE d.id = $1`, [id]);
      return toRunRecord(updated.rows[0]!);
    });
    this.wakeup.notify();
    return record;
  }

  async discardDeliveries(ids: readonly number[], now: number): Promise<number[]> {
    if (ids.length === 0) return [];
    // Only dead letters: their error and attempts stay as history.
    const { rows } = await this.pool.query<{ id: string | number }>(
      "UPDATE deliveries SET status = 'discarded', updated_at = $2 WHERE id = ANY($1::bigint[]) AND status = 'dead' RETURNING id",
      [ids, now],
    );
    const discarded = new Set(rows.map((row) => Number(row.id)));
    return ids.filter((id) => discarded.has(id));
  }

  nextDueAt(plugins: readonly string[], suspects = false): Promise<number | null> {
    if (plugins.length === 0) return Promise.resolve(null);
    return leases.nextDueAt(this.pool, plugins, suspects);
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
    if (added > 0) this.wakeup.notify();
    return added;
  }

  async claimScheduleTick(scheduleId: string, at: number, event: NewEvent, deliveries: readonly DeliveryTarget[]): Promise<boolean> {
    // The upsert takes the schedule's row lock: instances claiming the same tick wait for each
    // other, and the WHERE, read again after the wait, lets only the first move it forward.
    const claimed = await this.transaction(async (client) => {
      const { rowCount } = await client.query(
        `INSERT INTO schedule_ticks (schedule_id, last_tick_at) VALUES ($1, $2)
         ON CONFLICT (schedule_id) DO UPDATE SET last_tick_at = excluded.last_tick_at WHERE schedule_ticks.last_tick_at < excluded.last_tick_at`,
        [scheduleId, at],
      );
      if (!rowCount) return false;
      await this.insertEvent(client, event, deliveries, null);
      if (event.deliverAt === undefined && deliveries.some((d) => d.flow?.debounce)) await debounceEarlier(client, event.id, deliveries, event.receivedAt);
      return true;
    });
    if (claimed && deliveries.length > 0 && event.deliverAt === undefined) this.wakeup.notify();
    return claimed;
  }

  async lastScheduleTicks(): Promise<Map<string, number>> {
    const { rows } = await this.pool.query<{ schedule_id: string; last_tick_at: number }>("SELECT schedule_id, last_tick_at FROM schedule_ticks");
    return new Map(rows.map((row) => [row.schedule_id, row.last_tick_at]));
  }

  async cancelScheduledEvent(id: string, now: number): Promise<number> {
    // The row locks of the UPDATE and the claim's FOR UPDATE SKIP LOCKED exclude each other: a
    // delivery is either claimed (and runs) or cancelled, never both.
    return this.transaction(async (client) => {
      const { rows } = await client.query<{ seq: number; deliver_at: number | null }>("SELECT seq, deliver_at FROM events WHERE id = $1", [id]);
      const event = rows[0];
      if (!event) throw new HookdError("HOOKD_EVENT_NOT_FOUND", [id]);
      if (event.deliver_at === null) throw new HookdError("HOOKD_EVENT_NOT_SCHEDULED", [id, "it was not delayed"]);
      const { rowCount } = await client.query(
        `UPDATE deliveries SET status = 'cancelled', updated_at = $2, finished_at = $2
          WHERE event_seq = $1 AND status = 'pending' AND attempts = 0`,
        [event.seq, now],
      );
      if (!rowCount) throw new HookdError("HOOKD_EVENT_NOT_SCHEDULED", [id, "its runs have started already, or it was cancelled"]);
      return rowCount;
    });
  }

  async listScheduledEvents(filter: ListScheduledFilter): Promise<EventRecord[]> {
    const { rows } = await this.pool.query<EventRow>(
      `SELECT seq, id, name, received_at, source, parent_id, depth, root_id, deliver_at, octet_length(payload) AS payload_bytes,
              CASE WHEN octet_length(payload) > $3::bigint THEN NULL ELSE payload END AS payload
         FROM events ev
        WHERE ev.deliver_at > $1
          AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = ev.seq AND d.status = 'pending')
        ORDER BY ev.deliver_at, ev.seq LIMIT $2`,
      [filter.now, clampPageLimit(filter.limit), Math.floor(filter.maxPayloadBytes ?? Number.MAX_SAFE_INTEGER)],
    );
    return rows.map(toEventRecord);
  }

  async pruneEvents(options: PruneOptions): Promise<number> {
    // A flow-control window whose latest time is a period past counts nothing any more.
    await this.pool.query("DELETE FROM flow_windows WHERE expires_at < $1", [options.now ?? Date.now()]);
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
    const q = eventsQuery(filter);
    // Bounded (a list for people): octet_length reads a toasted value's size without fetching it.
    const columns =
      q.maxPayloadBytes !== undefined
        ? `seq, id, name, received_at, source, source_user, parent_id, depth, root_id, deliver_at, octet_length(payload) AS payload_bytes,
         CASE WHEN octet_length(payload) > ${Math.floor(q.maxPayloadBytes)} THEN NULL ELSE payload END AS payload`
        : "*";
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${columns} FROM events
        WHERE ($1::text IS NULL OR name = $1) AND ($2::bigint IS NULL OR received_at >= $2)
          AND ($3::bigint IS NULL OR received_at < $3) AND ($4::bigint IS NULL OR seq < $4)
          AND ($5::bigint IS NULL OR seq > $5)
        ORDER BY seq ${q.ascending ? "ASC" : "DESC"} LIMIT $6`,
      [q.name, q.since, q.until, q.before, q.after, q.limit],
    );
    return rows.map(toEventRecord);
  }

  async listRuns(filter: ListRunsFilter): Promise<DeliveryRecord[]> {
    const q = runsQuery(filter);
    const { rows } = await this.pool.query<RunRow>(
      `SELECT ${RUN_COLUMNS}
        WHERE ($1::text IS NULL OR d.status = $1) AND (NOT $2::boolean OR d.last_error IS NOT NULL)
          AND ($3::text IS NULL OR d.plugin = $3) AND ($4::text IS NULL OR e.name = $4)
          AND ($5::text IS NULL OR e.id = $5) AND ($6::text IS NULL OR d.replay_id = $6)
          AND ($7::bigint IS NULL OR d.created_at >= $7) AND ($8::bigint IS NULL OR d.created_at < $8)
          AND ($9::bigint IS NULL OR d.id < $9)
        ORDER BY d.id DESC LIMIT $10`,
      [q.status, q.failedOnly, q.plugin, q.event, q.eventId, q.replayId, q.since, q.until, q.before, q.limit],
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
    const { rows } = await this.pool.query<{ status: DeliveryStatus; n: number }>(
      "SELECT status, COUNT(*) AS n FROM deliveries WHERE ($1::text IS NULL OR replay_id = $1) GROUP BY status",
      [filter.replayId ?? null],
    );
    return toStatusCounts(rows);
  }

  async flowCounts(): Promise<FlowCount[]> {
    return (await this.pool.query<FlowCount>(FLOW_COUNTS_SQL)).rows;
  }

  async oldestPendingAt(): Promise<number | null> {
    // A delivery that has never run waits from its due time: a delayed one's wait starts then.
    const { rows } = await this.pool.query<{ oldest: number | null }>(
      "SELECT MIN(CASE WHEN attempts = 0 THEN GREATEST(created_at, next_at) ELSE created_at END) AS oldest FROM deliveries WHERE status = 'pending'",
    );
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
    return toKvValue(rows[0]);
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
    const written = await inTransaction(this.bookkeeping, async (client) => {
      // One plugin's sets take turns (on every instance: an advisory lock of this schema and
      // plugin). Under READ COMMITTED two sets of new keys would each count without the other's
      // key and both write; the count below runs after the lock, in a snapshot of its own.
      await client.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':kv'), hashtext($1))", [plugin]);
      const { rowCount } = await client.query(
        `INSERT INTO kv (plugin, key, value, updated_at)
         SELECT $1, $2, $3, $4
          WHERE EXISTS (SELECT 1 FROM kv WHERE plugin = $1 AND key = $2)
             OR (SELECT count(*) FROM (SELECT 1 FROM kv WHERE plugin = $1 LIMIT $5) held) < $5
         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        [...params, maxKeys],
      );
      return rowCount;
    });
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
    // Accepts handed in before the close are answered, not cut off by the pool's end.
    await this.accepts.drain();
    await this.wakeup.close();
    await Promise.all([this.pool.end(), this.bookkeeping.end()]);
  }

  /** Inserts deliveries for a stored event, holding each order key first (see the header). */
  private async insertDeliveries(client: pg.PoolClient, seq: number, targets: readonly DeliveryTarget[], now: number, replayId: string | null): Promise<void> {
    if (targets.length === 0) return;
    // A replay takes no part in debounces (flow-windows.ts).
    await client.query(`WITH ${DELIVERY_INSERT_CTES("$1::bigint", 2, 17)} SELECT 1`, [seq, ...deliveryParams(targets, now, replayId, undefined, false), ...leaseParams([], undefined)]);
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error("store is closed");
    return inTransaction(this.pool, work);
  }
}

/** Runs `work` in a transaction on a connection of `pool`: committed when it resolves, rolled back when it throws. */
async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
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
    throw emitBudgetSpent(root, event.maxDescendants, event.name);
  }
  return root;
}

/**
 * The order-key locks and the delivery insert, as CTEs of one statement; `seq` is the event's
 * seq expression, the parameters (see deliveryParams) start at `$first`. The locks are taken in
 * hash order (two accepts cannot deadlock), and the insert waits for them through its WHERE.
 */
function DELIVERY_INSERT_CTES(seq: string, first: number, leaseAt: number): string {
  const p = (i: number) => `$${first + i}`;
  // A delivery given a lease (start-at-accept.ts) is stored running under it, its first attempt
  // counted, unless a rule holds it (an order key, flow control, a due time ahead): the claim
  // takes it in turn then. Whether deliveries wait is the dispatcher's check (it gives no lease
  // while it knows of any its claim has not taken): asked here, the partial index of pending
  // deliveries was walked past every entry left by a delivery that started since the last
  // vacuum, twice the buffer reads of the whole accept.
  return `held AS MATERIALIZED (${orderKeyLocksSql(p(0))}),
       ins AS (
         INSERT INTO deliveries (event_seq, kind, plugin, target, input, order_key, status, max_attempts, next_at, created_at, updated_at, replay_id,
                                 flow, concurrency_key, concurrency_limit, debounce_key, waiting, attempts, lease_token, lease_until)
         SELECT s.seq, t.kind, t.plugin, t.target, t.input, t.order_key, CASE WHEN t.start THEN 'running' ELSE 'pending' END, t.max_attempts, t.next_at,
                ${p(1)}, ${p(1)}, ${p(2)}, t.flow, t.concurrency_key, t.concurrency_limit, t.debounce_key, t.waiting,
                CASE WHEN t.start THEN 1 ELSE 0 END, CASE WHEN t.start THEN t.lease_token END, CASE WHEN t.start THEN t.lease_until END
           FROM (SELECT ${seq} AS seq) AS s,
                (SELECT u.*, (u.lease_token IS NOT NULL AND u.order_key IS NULL AND u.flow IS NULL AND u.concurrency_key IS NULL
                              AND u.debounce_key IS NULL AND u.next_at <= ${p(1)}) AS start
                   FROM unnest(${p(3)}::text[], ${p(4)}::text[], ${p(5)}::text[], ${p(6)}::text[], ${p(7)}::text[], ${p(8)}::int[], ${p(9)}::bigint[],
                               ${p(10)}::text[], ${p(11)}::text[], ${p(12)}::int[], ${p(13)}::text[], ${p(14)}::text[], $${leaseAt}::text[], $${leaseAt + 1}::bigint[])
                        WITH ORDINALITY
                        AS u(kind, plugin, target, input, order_key, max_attempts, next_at, flow, concurrency_key, concurrency_limit, debounce_key, waiting,
                             lease_token, lease_until, n)) AS t
          WHERE s.seq IS NOT NULL AND (SELECT count(*) FROM held) >= 0
          ORDER BY t.n
         RETURNING id, status, lease_token)`;
}

/** The accept stored nothing: its idempotency key was taken. The first event under it says whether this is a repeat or a conflict. */
async function repeatOf(on: pg.Pool | pg.PoolClient, event: NewEvent): Promise<AcceptOutcome> {
  const found = await on.query<{ id: string; body_hash: string | null }>("SELECT id, body_hash FROM events WHERE idempotency_key = $1", [event.idempotencyKey]);
  return repeatOutcome(found.rows[0]!, event);
}

/**
 * An accept the plain statement can store (insertPlainEvent): one delivery, due now, with no
 * order key (no lock to take) and no flow rules (no columns of theirs to fill). Anything else
 * takes the general statement.
 */
function isPlainAccept(event: NewEvent, deliveries: readonly DeliveryTarget[]): boolean {
  if (deliveries.length !== 1 || event.deliverAt !== undefined) return false;
  const target = deliveries[0]!;
  return target.orderKey === undefined && target.flow === undefined;
}

/** The lease columns of the targets (DeliveryTarget.lease), one array each; none for a delayed event. */
function leaseParams(targets: readonly DeliveryTarget[], event: NewEvent | undefined): [Array<string | null>, Array<number | null>] {
  const leased = (t: DeliveryTarget) => (event?.deliverAt === undefined ? t.lease : undefined);
  return [targets.map((t) => leased(t)?.token ?? null), targets.map((t) => leased(t)?.until ?? null)];
}

/** Which targets the insert started, from `id token` of each running row (startedByLease). */
function startedAtAccept(targets: readonly DeliveryTarget[], started: readonly string[]): Array<{ index: number; id: number }> {
  return startedByLease(
    targets,
    started.map((row) => {
      const [id, token] = row.split(" ");
      return { id: Number(id), leaseToken: token ?? null };
    }),
  );
}

/** `dueAt`: a delayed event's due time (its deliveries' next_at); absent, they are due `now`. */
function deliveryParams(targets: readonly DeliveryTarget[], now: number, replayId: string | null, dueAt: number | undefined, debounced: boolean): unknown[] {
  const values = targets.map(deliveryValues);
  const flows = targets.map((t) => flowColumns(t.flow, debounced));
  return [
    targets.map((t) => (t.orderKey === undefined ? null : orderLockKey(t.plugin, t.orderKey))),
    now,
    replayId,
    // kind, plugin, target, input, order_key, max_attempts: one array per column.
    ...[0, 1, 2, 3, 4, 5].map((column) => values.map((row) => row[column])),
    targets.map((t) => dueAtOf(t, dueAt ?? now, debounced)),
    // flow, concurrency_key, concurrency_limit, debounce_key, waiting (flow-windows.ts).
    ...[0, 1, 2, 3, 4].map((column) => flows.map((row) => row[column])),
  ];
}

/**
 * Debounce (flow-windows.ts), once the new event is stored: the plugin's deliveries of each
 * debounced scope from earlier events (a smaller seq) that have not started are skipped, and if a
 * later event's is pending already (an accept that committed while this one waited for the
 * lock), the new one is skipped instead: whatever the order the locks were taken in, the event
 * stored last is the one that runs. The scopes' advisory locks are taken first, in hash order,
 * and the UPDATEs are statements of their own after them, so they see what a concurrent accept
 * of the same scope committed meanwhile.
 */
async function debounceEarlier(client: pg.PoolClient, eventId: string, targets: readonly DeliveryTarget[], now: number): Promise<void> {
  const scopes = targets.flatMap((t) => (t.flow?.debounce ? [{ plugin: t.plugin, key: t.flow.debounce.scope }] : []));
  await client.query(
    `SELECT pg_advisory_xact_lock(hashtext('hookd.debounce.' || current_schema()), h)
       FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS keys`,
    [scopes.map((scope) => JSON.stringify([scope.plugin, scope.key]))],
  );
  const mine = (await client.query<{ seq: number }>("SELECT seq FROM events WHERE id = $1", [eventId])).rows[0]!.seq;
  await client.query(
    `UPDATE deliveries d SET status = 'skipped', waiting = NULL, last_error = $3, updated_at = $4, finished_at = $4
       FROM unnest($1::text[], $2::text[]) AS k(plugin, key)
      WHERE d.plugin = k.plugin AND d.debounce_key = k.key AND d.status = 'pending' AND d.attempts = 0 AND d.event_seq < $5`,
    [scopes.map((scope) => scope.plugin), scopes.map((scope) => scope.key), debouncedError(eventId), now, mine],
  );
  const { rows: overtaken } = await client.query<{ id: number; later: string }>(
    `SELECT d.id, (SELECT e.id FROM deliveries n JOIN events e ON e.seq = n.event_seq
                    WHERE n.plugin = d.plugin AND n.debounce_key = d.debounce_key AND n.status = 'pending' AND n.event_seq > d.event_seq
                    ORDER BY n.event_seq DESC LIMIT 1) AS later
       FROM deliveries d WHERE d.event_seq = $1 AND d.debounce_key IS NOT NULL AND d.status = 'pending'`,
    [mine],
  );
  for (const row of overtaken) {
    if (row.later === null) continue;
    await client.query(
      "UPDATE deliveries SET status = 'skipped', waiting = NULL, last_error = $2, updated_at = $3, finished_at = $3 WHERE id = $1 AND status = 'pending'",
      [row.id, debouncedError(row.later), now],
    );
  }
}
