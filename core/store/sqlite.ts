/**
 * The embedded store: better-sqlite3 in WAL mode, `synchronous=FULL` by default.
 *
 * Group commit: the writes of one turn of the event loop go to the writer thread as one batch;
 * the writer commits every batch that piled up while it waited for the disk in one transaction
 * (one fsync), then every caller's promise settles. Commits run on that thread with a connection
 * of its own (sqlite-writer.ts), so the fsync never stalls the event loop; reads run here, on a
 * second connection, and see every commit whose promise has settled.
 *
 * What `synchronous` trades (WAL mode):
 * - FULL (default): every commit that stores something a caller was promised (an accepted event,
 *   a replay, a manual retry) fsyncs the WAL before the promise settles; a 202 survives a crash
 *   and a power loss. Bookkeeping commits (claims, finishes, lease renewals, ctx.kv) skip the
 *   fsync: they are made durable by the next fsync, which covers the whole WAL up to it, and a
 *   power loss before that only means a run happens again, which at-least-once allows (a kv write
 *   lost that way is lost together with the finish of its run, so the run redoes it).
 * - NORMAL: no fsync at commit (only at checkpoints); a 202 survives a process crash, but a power
 *   loss or OS crash can lose the last commits (the database stays consistent).
 * - OFF: no fsync at all; a power loss can lose recent commits and corrupt the database.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { FLOW_COUNTS_SQL, type FlowCount } from "./flow-windows.ts";
import { RUN_COLUMNS, toClaimedDelivery, toEventRecord, toKvValue, toRunRecord, toStatusCounts, type ClaimRow, type EventRow, type RunRow } from "./rows.ts";
import { claimShares, clampPageLimit, eventsQuery, nothingToClaim, runsQuery } from "./rules.ts";
import { configureConnection, ensureSchema, PLUGINS_WITH_PENDING_SQL, type Synchronous } from "./sqlite-schema.ts";
import { SqliteOktellCommands } from "./oktell-commands.ts";
import { inlineWriter, threadWriter, type Writer } from "./sqlite-writer.ts";
import { reviveError, type WriteOp } from "./sqlite-writes.ts";
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
import { RUN_STATS_SQL, sqliteStatsSql, toRunStats } from "./run-stats.ts";
import { MAX_ATTEMPTS_LISTED, MAX_CHILDREN_LISTED, toRunAttemptRecord, type RunAttemptRow } from "./run-attempts.ts";

export interface SqliteStoreOptions {
  /** Path of the database file, or `:memory:`. */
  file: string;
  synchronous?: Synchronous;
  /** Where commits run: a writer thread (default for files) or this thread (always for `:memory:`). */
  writer?: "thread" | "inline";
}

interface QueuedWrite {
  op: WriteOp;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Batches sent to the writer thread and not answered yet. Two: while one commits, the next is
 * queued at the thread, so it never waits for a hop back and forth between commits; what comes
 * in meanwhile gathers for the one after. (One in flight made larger commits, but left the thread
 * idle between them: end to end 3,100-3,300 events/s against 4,200-4,600 with two, in
 * alternating quick runs of `npm run bench -- --only core`.)
 */
const MAX_COMMITS_IN_FLIGHT = 2;

export class SqliteStore implements Store {
  /** The reading connection (the writer has its own). */
  readonly db: Database.Database;
  /** How the last commit went: how many writes it carried, and whether it was fsynced (FULL). */
  lastCommit: { writes: number; synchronous: Synchronous } | undefined;
  /** See Store: the accept looks for the plugin's ready deliveries (sqlite-writes.ts mayStartAtAccept). */
  readonly checksWaitingAtAccept = true;
  commits = 0;
  private readonly writer: Writer;
  private queue: QueuedWrite[] = [];
  private scheduled = false;
  /** Commits sent and not answered yet (the writer thread merges those that pile up). */
  private readonly committing = new Set<Promise<void>>();
  private closed = false;
  private readonly statements;
  /** The telephony workstation commands (core/store/oktell-commands.ts). */
  readonly oktellCommands: SqliteOktellCommands;

  constructor(options: SqliteStoreOptions) {
    const memory = options.file === ":memory:";
    if (!memory) mkdirSync(path.dirname(options.file), { recursive: true });
    const synchronous = options.synchronous ?? "FULL";
    this.db = new Database(options.file);
    configureConnection(this.db, synchronous);
    ensureSchema(this.db);
    this.statements = prepareReadStatements(this.db);
    this.oktellCommands = new SqliteOktellCommands(this.db);
    this.writer = memory || options.writer === "inline" ? inlineWriter(this.db, synchronous) : threadWriter(options.file, synchronous);
  }

  /** A single-instance store: runs left `running` by a killed process go back to pending. */
  recoverAfterRestart(now: number): Promise<number> {
    return this.write({ op: "releaseExpired", now, expiredBefore: Number.MAX_SAFE_INTEGER });
  }

  acceptEvent(event: NewEvent, deliveries: readonly DeliveryTarget[]): Promise<AcceptOutcome> {
    let payloadJson: string;
    try {
      payloadJson = event.payloadJson ?? JSON.stringify(event.payload);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.write({ op: "accept", event: { ...event, payload: null, payloadJson: undefined }, payloadJson, deliveries });
  }

  /**
   * Only the shares of plugins with pending deliveries go to the writer thread: with 1,000 loaded
   * plugins and one busy, every claim copied 1,000 shares to the thread and walked them there.
   * The plugins with pending deliveries come from a read of what is committed (one index seek
   * each, see PLUGINS_WITH_PENDING_SQL); a delivery still being committed is not missed, since
   * its accept wakes the dispatcher once it commits, and the writer checks again in its claim.
   */
  claimDeliveries(options: ClaimOptions): Promise<ClaimedDelivery[]> {
    if (nothingToClaim(options)) return Promise.resolve([]);
    const pending = new Set((this.statements.pluginsWithPending.all() as Array<{ plugin: string }>).map((row) => row.plugin));
    const shares = claimShares(options).flatMap((share) => {
      const plugins = share.plugins.filter((plugin) => pending.has(plugin));
      return plugins.length === 0 ? [] : [{ plugins, limit: share.limit }];
    });
    if (shares.length === 0) return Promise.resolve([]);
    const asked: ClaimOptions = { ...options, plugins: shares.flatMap((share) => share.plugins), shares };
    return this.write<ClaimRow[]>({ op: "claim", options: asked }).then((rows) => rows.map(toClaimedDelivery));
  }

  finishDelivery(id: number, leaseToken: string, result: DeliveryResult): Promise<boolean> {
    return this.write({ op: "finish", id, leaseToken, result });
  }

  renewLease(id: number, leaseToken: string, until: number): Promise<boolean> {
    return this.write({ op: "renew", id, leaseToken, until });
  }

  releaseExpiredLeases(now: number): Promise<number> {
    return this.write({ op: "releaseExpired", now, expiredBefore: now });
  }

  releaseDeliveries(leases: ReadonlyArray<{ id: number; leaseToken: string }>, now: number): Promise<number> {
    if (leases.length === 0) return Promise.resolve(0);
    return this.write({ op: "release", leases: leases.map(({ id, leaseToken }) => ({ id, leaseToken })), now });
  }

  retryDelivery(id: number, now: number): Promise<DeliveryRecord> {
    return this.write({ op: "retry", id, now });
  }

  discardDeliveries(ids: readonly number[], now: number): Promise<number[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.write({ op: "discard", ids: [...ids], now });
  }

  addDeliveries(items: readonly AddedDeliveries[], now: number, replayId?: string): Promise<number> {
    return this.write({ op: "addDeliveries", items, now, replayId: replayId ?? null });
  }

  pruneEvents(options: PruneOptions): Promise<number> {
    return this.write({ op: "prune", options });
  }

  claimScheduleTick(scheduleId: string, at: number, event: NewEvent, deliveries: readonly DeliveryTarget[]): Promise<boolean> {
    let payloadJson: string;
    try {
      payloadJson = JSON.stringify(event.payload);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.write({ op: "claimTick", scheduleId, at, event: { ...event, payload: null }, payloadJson, deliveries });
  }

  async lastScheduleTicks(): Promise<Map<string, number>> {
    const rows = this.statements.scheduleTicks.all() as Array<{ schedule_id: string; last_tick_at: number }>;
    return new Map(rows.map((row) => [row.schedule_id, row.last_tick_at]));
  }

  cancelScheduledEvent(id: string, now: number): Promise<number> {
    return this.write({ op: "cancelScheduled", id, now });
  }

  async listScheduledEvents(filter: ListScheduledFilter): Promise<EventRecord[]> {
    const maxPayload = filter.maxPayloadBytes ?? Number.MAX_SAFE_INTEGER;
    return (this.statements.listScheduled.all({ now: filter.now, limit: clampPageLimit(filter.limit), maxPayload }) as EventRow[]).map(toEventRecord);
  }

  kvSet(plugin: string, key: string, value: unknown, limits?: { maxKeys?: number | undefined }): Promise<void> {
    return this.write({ op: "kvSet", plugin, key, json: JSON.stringify(value), now: Date.now(), maxKeys: limits?.maxKeys ?? null });
  }

  kvDelete(plugin: string, key: string): Promise<boolean> {
    return this.write({ op: "kvDelete", plugin, key });
  }

  async nextDueAt(plugins: readonly string[], suspects = false): Promise<number | null> {
    if (plugins.length === 0) return null;
    // One index seek per plugin (see deliveries_pending_by_plugin), never a walk past the others' rows.
    let next: number | null = null;
    const pending = new Set((this.statements.pluginsWithPending.all() as Array<{ plugin: string }>).map((row) => row.plugin));
    for (const plugin of plugins) {
      if (!pending.has(plugin)) continue;
      const row = this.statements.nextDue.get({ plugin, suspect: suspects ? 1 : 0 }) as { next: number | null };
      if (row.next !== null && (next === null || row.next < next)) next = row.next;
    }
    return next;
  }

  async countEvents(filter: Pick<ListEventsFilter, "name" | "since" | "until">): Promise<number> {
    const row = this.statements.countEvents.get({ name: filter.name ?? null, since: filter.since ?? null, until: filter.until ?? null }) as { n: number };
    return row.n;
  }

  async getEvent(id: string): Promise<EventRecord | null> {
    const row = this.statements.eventById.get(id) as EventRow | undefined;
    return row ? toEventRecord(row) : null;
  }

  // --- Run detail (core/store/run-attempts.ts) ---
  async getRun(id: number): Promise<DeliveryRecord | null> {
    const row = this.statements.runById.get(id) as RunRow | undefined;
    return row ? toRunRecord(row) : null;
  }

  async listRunAttempts(deliveryId: number): Promise<RunAttemptRecord[]> {
    return (this.statements.runAttempts.all(deliveryId, MAX_ATTEMPTS_LISTED) as RunAttemptRow[]).map(toRunAttemptRecord);
  }

  async listChildEvents(parentId: string, limit: number): Promise<EventRecord[]> {
    return (this.statements.childEvents.all(parentId, Math.min(Math.max(limit, 1), MAX_CHILDREN_LISTED)) as EventRow[]).map(toEventRecord);
  }

  async runStats(since: number): Promise<RunStatsRows> {
    const s = this.statements;
    return toRunStats({ perMinute: s.statsPerMinute.all(since), durations: s.statsDurations.all(since), accepted: s.statsAccepted.all(since), dead: s.statsDead.all(since) });
  }

  async eventTraceparent(id: string): Promise<string | null> {
    return (this.statements.eventTraceparent.get(id) as { traceparent: string | null } | undefined)?.traceparent ?? null;
  }

  async listEvents(filter: ListEventsFilter): Promise<EventRecord[]> {
    const { ascending, maxPayloadBytes, ...params } = eventsQuery(filter);
    if (maxPayloadBytes !== undefined) {
      return (this.statements.listEventsBounded.all({ ...params, maxPayload: maxPayloadBytes }) as EventRow[]).map(toEventRecord);
    }
    const statement = ascending ? this.statements.listEventsAscending : this.statements.listEvents;
    return (statement.all(params) as EventRow[]).map(toEventRecord);
  }

  async listRuns(filter: ListRunsFilter): Promise<DeliveryRecord[]> {
    // One event's runs (its page, the console's run filter) seek its deliveries by the event's seq.
    const statement = filter.eventId === undefined ? this.statements.listRuns : this.statements.listRunsOfEvent;
    const query = runsQuery(filter);
    // SQLite binds no booleans.
    const rows = statement.all({ ...query, failedOnly: query.failedOnly ? 1 : 0 }) as RunRow[];
    return rows.map(toRunRecord);
  }

  async countByStatus(filter: DeliveryCountFilter = {}): Promise<Record<DeliveryStatus, number>> {
    const rows = filter.replayId === undefined ? this.statements.countByStatus.all() : this.statements.countReplayByStatus.all(filter.replayId);
    return toStatusCounts(rows as Array<{ status: DeliveryStatus; n: number }>);
  }

  async flowCounts(): Promise<FlowCount[]> {
    return this.statements.flowCounts.all() as FlowCount[];
  }

  async oldestPendingAt(): Promise<number | null> {
    return (this.statements.oldestPending.get() as { oldest: number | null }).oldest;
  }

  async checkWritable(): Promise<void> {
    if (this.closed) throw new Error("store is closed");
    // Outside the group commit, with a short busy timeout: a foreign lock must answer "not
    // writable" in a moment instead of holding the event loop for the full 5 s.
    this.db.pragma("busy_timeout = 250");
    try {
      this.statements.probeWrite.run(String(Date.now()));
    } finally {
      this.db.pragma("busy_timeout = 5000");
    }
  }

  async kvGet(plugin: string, key: string): Promise<unknown> {
    return toKvValue(this.statements.kvGet.get(plugin, key) as { value: string } | undefined);
  }

  async kvList(plugin: string, prefix: string, limit: number): Promise<string[]> {
    const rows = this.statements.kvList.all(plugin, prefix, prefix, limit) as Array<{ key: string }>;
    return rows.map((row) => row.key);
  }

  /** Commits what is queued, stops the writer, checkpoints the WAL into the database file. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.committing.size > 0 || this.queue.length > 0) {
      this.commitQueued();
      await Promise.all(this.committing);
    }
    this.closed = true;
    await this.writer.close();
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    this.db.close();
  }

  /**
   * Queues a write for the next group commit. At most MAX_COMMITS_IN_FLIGHT batches are with the
   * writer thread at a time: what is queued while they commit goes as the next batch the moment
   * one is done. Every commit rewrites the pages it touches (the ends of the tables and indexes
   * the accepts, claims and finishes share), so fewer, larger commits write fewer pages per
   * event; one batch per commit instead of one per turn of the event loop also spares a copy to
   * the writer thread per turn. An idle store still commits at the end of the turn the write came in.
   */
  private write<T>(op: WriteOp): Promise<T> {
    if (this.closed) return Promise.reject(new Error("store is closed"));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (value: unknown) => void, reject });
      if (this.scheduled || this.committing.size >= MAX_COMMITS_IN_FLIGHT) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.commitQueued();
      });
    });
  }

  /** Sends what this turn queued as one batch; it settles when its commit is done. */
  private commitQueued(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const commit: Promise<void> = this.writer
      .commit(batch.map((write) => write.op))
      .then(
        ({ results, synchronous }) => {
          this.commits++;
          this.lastCommit = { writes: batch.length, synchronous };
          batch.forEach((write, i) => {
            const result = results[i]!;
            if (result.ok) write.resolve(result.value);
            else write.reject(reviveError(result.error));
          });
        },
        // The commit itself failed (disk full, read-only file): nobody's write is durable.
        (error: unknown) => batch.forEach((write) => write.reject(error)),
      )
      .finally(() => {
        this.committing.delete(commit);
        // What came in meanwhile is the next batch.
        if (this.queue.length > 0 && !this.scheduled && this.committing.size < MAX_COMMITS_IN_FLIGHT) this.commitQueued();
      });
    this.committing.add(commit);
  }
}

function prepareReadStatements(db: Database.Database) {
  return {
    pluginsWithPending: db.prepare(PLUGINS_WITH_PENDING_SQL),
    nextDue: db.prepare(
      `SELECT MIN(next_at) AS next FROM deliveries
        WHERE plugin = @plugin AND status = 'pending' AND suspect = @suspect`,
    ),
    eventById: db.prepare("SELECT * FROM events WHERE id = ?"),
    listEvents: db.prepare(
      `SELECT * FROM events
        WHERE (@name IS NULL OR name = @name) AND (@since IS NULL OR received_at >= @since)
          AND (@until IS NULL OR received_at < @until) AND (@before IS NULL OR seq < @before)
          AND (@after IS NULL OR seq > @after)
        ORDER BY seq DESC LIMIT @limit`,
    ),
    // octet_length reads a value's size without loading it: a list of huge payloads costs
    // only the ones it shows.
    listEventsBounded: db.prepare(
      `SELECT seq, id, name, received_at, source, source_user, parent_id, depth, root_id, deliver_at, octet_length(payload) AS payload_bytes,
              CASE WHEN octet_length(payload) > @maxPayload THEN NULL ELSE payload END AS payload
         FROM events
        WHERE (@name IS NULL OR name = @name) AND (@since IS NULL OR received_at >= @since)
          AND (@until IS NULL OR received_at < @until) AND (@before IS NULL OR seq < @before)
          AND (@after IS NULL OR seq > @after)
        ORDER BY seq DESC LIMIT @limit`,
    ),
    listEventsAscending: db.prepare(
      `SELECT * FROM events
        WHERE (@name IS NULL OR name = @name) AND (@since IS NULL OR received_at >= @since)
          AND (@until IS NULL OR received_at < @until) AND (@before IS NULL OR seq < @before)
          AND seq > @after
        ORDER BY seq LIMIT @limit`,
    ),
    countEvents: db.prepare(
      `SELECT COUNT(*) AS n FROM events
        WHERE (@name IS NULL OR name = @name) AND (@since IS NULL OR received_at >= @since)
          AND (@until IS NULL OR received_at < @until)`,
    ),
    listRuns: db.prepare(
      `SELECT ${RUN_COLUMNS}
        WHERE (@status IS NULL OR d.status = @status) AND (@failedOnly = 0 OR d.last_error IS NOT NULL)
          AND (@plugin IS NULL OR d.plugin = @plugin) AND (@event IS NULL OR e.name = @event)
          AND (@eventId IS NULL OR e.id = @eventId) AND (@replayId IS NULL OR d.replay_id = @replayId)
          AND (@since IS NULL OR d.created_at >= @since) AND (@until IS NULL OR d.created_at < @until)
          AND (@before IS NULL OR d.id < @before)
        ORDER BY d.id DESC LIMIT @limit`,
    ),
    listRunsOfEvent: db.prepare(
      `SELECT ${RUN_COLUMNS}
        WHERE (@status IS NULL OR d.status = @status) AND (@failedOnly = 0 OR d.last_error IS NOT NULL)
          AND (@plugin IS NULL OR d.plugin = @plugin) AND (@event IS NULL OR e.name = @event)
          AND d.event_seq = (SELECT seq FROM events WHERE id = @eventId) AND (@replayId IS NULL OR d.replay_id = @replayId)
          AND (@since IS NULL OR d.created_at >= @since) AND (@until IS NULL OR d.created_at < @until)
          AND (@before IS NULL OR d.id < @before)
        ORDER BY d.id DESC LIMIT @limit`,
    ),
    runById: db.prepare(`SELECT ${RUN_COLUMNS} WHERE d.id = ?`),
    eventTraceparent: db.prepare("SELECT traceparent FROM events WHERE id = ?"),
    statsPerMinute: db.prepare(sqliteStatsSql(RUN_STATS_SQL.perMinute)),
    statsDurations: db.prepare(sqliteStatsSql(RUN_STATS_SQL.durations)),
    statsAccepted: db.prepare(sqliteStatsSql(RUN_STATS_SQL.accepted)),
    statsDead: db.prepare(sqliteStatsSql(RUN_STATS_SQL.dead)),
    runAttempts: db.prepare("SELECT attempt, started_at, duration_ms, status, code, error, activity FROM run_attempts WHERE delivery_id = ? ORDER BY attempt LIMIT ?"),
    childEvents: db.prepare("SELECT * FROM events WHERE parent_id = ? ORDER BY seq LIMIT ?"),
    countByStatus: db.prepare("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status"),
    flowCounts: db.prepare(FLOW_COUNTS_SQL),
    countReplayByStatus: db.prepare("SELECT status, COUNT(*) AS n FROM deliveries WHERE replay_id = ? GROUP BY status"),
    // A delivery that has never run waits from its due time: a delayed one's wait starts then.
    oldestPending: db.prepare("SELECT MIN(CASE WHEN attempts = 0 THEN MAX(created_at, next_at) ELSE created_at END) AS oldest FROM deliveries WHERE status = 'pending'"),
    scheduleTicks: db.prepare("SELECT schedule_id, last_tick_at FROM schedule_ticks"),
    listScheduled: db.prepare(
      `SELECT seq, id, name, received_at, source, parent_id, depth, root_id, deliver_at, octet_length(payload) AS payload_bytes,
              CASE WHEN octet_length(payload) > @maxPayload THEN NULL ELSE payload END AS payload
         FROM events ev
        WHERE ev.deliver_at > @now
          AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = ev.seq AND d.status = 'pending')
        ORDER BY ev.deliver_at, ev.seq LIMIT @limit`,
    ),
    probeWrite: db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES ('write_probe', ?)"),
    kvGet: db.prepare("SELECT value FROM kv WHERE plugin = ? AND key = ?"),
    // Prefix match without LIKE, so `%` and `_` in keys mean themselves.
    kvList: db.prepare("SELECT key FROM kv WHERE plugin = ? AND substr(key, 1, length(?)) = ? ORDER BY key LIMIT ?"),
  };
}
