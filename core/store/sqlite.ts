/**
 * The embedded store: better-sqlite3 in WAL mode, `synchronous=FULL` by default.
 *
 * Group commit: writes queue up during one turn of the event loop and are committed together
 * in one transaction (one WAL fsync), then every caller's promise settles. Under load, many
 * HTTP requests share one fsync; when idle, a lone request commits on the next turn.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import { HookdError } from "../errors.ts";
import type {
  AcceptOutcome,
  ClaimedDelivery,
  ClaimOptions,
  DeliveryRecord,
  DeliveryResult,
  DeliveryStatus,
  DeliveryTarget,
  EventRecord,
  ListEventsFilter,
  ListRunsFilter,
  NewEvent,
  Store,
} from "./types.ts";

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  payload TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  source TEXT NOT NULL,
  parent_id TEXT,
  depth INTEGER NOT NULL DEFAULT 0,
  idempotency_key TEXT UNIQUE,
  body_hash TEXT
);
CREATE INDEX IF NOT EXISTS events_by_name ON events(name, received_at);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  plugin TEXT NOT NULL,
  target TEXT NOT NULL,
  input TEXT,
  order_key TEXT,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  next_at INTEGER NOT NULL,
  lease_token TEXT,
  lease_until INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  duration_ms INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries(status, next_at, id);
CREATE INDEX IF NOT EXISTS deliveries_by_key ON deliveries(plugin, target, order_key, id) WHERE order_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries(event_seq);
CREATE TABLE IF NOT EXISTS kv (
  plugin TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (plugin, key)
) WITHOUT ROWID;
`;

interface QueuedWrite {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export interface SqliteStoreOptions {
  /** Path of the database file, or `:memory:`. */
  file: string;
  synchronous?: "FULL" | "NORMAL" | "OFF";
}

export class SqliteStore implements Store {
  readonly db: Database.Database;
  private queue: QueuedWrite[] = [];
  private flushScheduled = false;
  private closed = false;
  private readonly statements;

  constructor(options: SqliteStoreOptions) {
    if (options.file !== ":memory:") mkdirSync(path.dirname(options.file), { recursive: true });
    this.db = new Database(options.file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
    this.db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
    this.statements = prepareStatements(this.db);
  }

  /** A single-instance store: runs left `running` by a killed process go back to pending. */
  recoverAfterRestart(now: number): number {
    return this.releaseLeases(now, Number.MAX_SAFE_INTEGER);
  }

  acceptEvent(event: NewEvent, deliveries: readonly DeliveryTarget[]): Promise<AcceptOutcome> {
    return this.write(() => {
      const s = this.statements;
      if (event.idempotencyKey !== undefined) {
        const existing = s.eventByIdempotencyKey.get(event.idempotencyKey) as { id: string; body_hash: string | null } | undefined;
        if (existing) {
          return existing.body_hash === (event.bodyHash ?? null)
            ? { kind: "duplicate", id: existing.id }
            : { kind: "conflict", id: existing.id };
        }
      }
      const { lastInsertRowid: seq } = s.insertEvent.run(
        event.id,
        event.name,
        JSON.stringify(event.payload),
        event.receivedAt,
        event.source,
        event.parentId ?? null,
        event.depth,
        event.idempotencyKey ?? null,
        event.bodyHash ?? null,
      );
      for (const d of deliveries) {
        s.insertDelivery.run(
          seq,
          d.kind,
          d.plugin,
          d.target,
          d.input === undefined ? null : JSON.stringify(d.input),
          d.orderKey ?? null,
          d.maxAttempts,
          event.receivedAt,
          event.receivedAt,
          event.receivedAt,
        );
      }
      return { kind: "stored", id: event.id, deliveries: deliveries.length };
    }) as Promise<AcceptOutcome>;
  }

  claimDeliveries(options: ClaimOptions): Promise<ClaimedDelivery[]> {
    if (options.plugins.length === 0 || options.limit <= 0) return Promise.resolve([]);
    return this.write(() => {
      const rows = this.statements.claim.all({
        now: options.now,
        until: options.now + options.leaseMs,
        limit: options.limit,
        plugins: JSON.stringify(options.plugins),
        token: randomUUID(),
      }) as ClaimRow[];
      return rows.map((row) => ({
        id: row.id,
        kind: row.kind,
        plugin: row.plugin,
        target: row.target,
        attempt: row.attempts,
        maxAttempts: row.max_attempts,
        leaseToken: row.lease_token,
        input: row.input === null ? undefined : JSON.parse(row.input),
        event: {
          id: row.event_id,
          name: row.event_name,
          payload: JSON.parse(row.payload),
          receivedAt: row.received_at,
          depth: row.depth,
        },
      }));
    }) as Promise<ClaimedDelivery[]>;
  }

  finishDelivery(id: number, leaseToken: string, result: DeliveryResult): Promise<boolean> {
    return this.write(() => {
      const info = this.statements.finish.run({
        id,
        token: leaseToken,
        status: result.status,
        now: result.now,
        nextAt: result.nextAt ?? result.now,
        error: result.error === undefined ? null : JSON.stringify(result.error),
        finishedAt: result.status === "pending" ? null : result.now,
        durationMs: Math.round(result.durationMs),
      });
      return info.changes === 1;
    }) as Promise<boolean>;
  }

  renewLease(id: number, leaseToken: string, until: number): Promise<boolean> {
    return this.write(() => this.statements.renew.run(until, id, leaseToken).changes === 1) as Promise<boolean>;
  }

  releaseExpiredLeases(now: number): Promise<number> {
    return this.write(() => this.releaseLeases(now, now)) as Promise<number>;
  }

  retryDelivery(id: number, now: number): Promise<DeliveryRecord> {
    return this.write(() => {
      const row = this.statements.runById.get(id) as RunRow | undefined;
      if (!row) throw new HookdError("HOOKD_RUN_NOT_FOUND", [id]);
      const failed = row.status === "pending" && row.last_error !== null;
      if (row.status !== "dead" && !failed) throw new HookdError("HOOKD_RUN_NOT_RETRIABLE", [id, row.status]);
      // A manual retry gets a fresh budget: the attempts so far stay visible in max_attempts.
      this.statements.retry.run(now, id);
      return toRunRecord(this.statements.runById.get(id) as RunRow);
    }) as Promise<DeliveryRecord>;
  }

  async nextDueAt(plugins: readonly string[]): Promise<number | null> {
    if (plugins.length === 0) return null;
    const row = this.statements.nextDue.get(JSON.stringify(plugins)) as { next: number | null };
    return row.next;
  }

  async getEvent(id: string): Promise<EventRecord | null> {
    const row = this.statements.eventById.get(id) as EventRow | undefined;
    return row ? toEventRecord(row) : null;
  }

  async listEvents(filter: ListEventsFilter): Promise<EventRecord[]> {
    const rows = this.statements.listEvents.all({
      name: filter.name ?? null,
      since: filter.since ?? null,
      before: filter.before ?? null,
      limit: clampLimit(filter.limit),
    }) as EventRow[];
    return rows.map(toEventRecord);
  }

  async listRuns(filter: ListRunsFilter): Promise<DeliveryRecord[]> {
    const rows = this.statements.listRuns.all({
      status: filter.status === "failed" ? "pending" : (filter.status ?? null),
      failedOnly: filter.status === "failed" ? 1 : 0,
      plugin: filter.plugin ?? null,
      event: filter.event ?? null,
      eventId: filter.eventId ?? null,
      before: filter.before ?? null,
      limit: clampLimit(filter.limit),
    }) as RunRow[];
    return rows.map(toRunRecord);
  }

  async countByStatus(): Promise<Record<DeliveryStatus, number>> {
    const counts: Record<DeliveryStatus, number> = { pending: 0, running: 0, done: 0, dead: 0 };
    for (const row of this.statements.countByStatus.all() as Array<{ status: DeliveryStatus; n: number }>) {
      counts[row.status] = row.n;
    }
    return counts;
  }

  async kvGet(plugin: string, key: string): Promise<unknown> {
    const row = this.statements.kvGet.get(plugin, key) as { value: string } | undefined;
    return row ? JSON.parse(row.value) : undefined;
  }

  kvSet(plugin: string, key: string, value: unknown): Promise<void> {
    const json = JSON.stringify(value);
    return this.write(() => {
      this.statements.kvSet.run(plugin, key, json, Date.now());
    }) as Promise<void>;
  }

  kvDelete(plugin: string, key: string): Promise<boolean> {
    return this.write(() => this.statements.kvDelete.run(plugin, key).changes === 1) as Promise<boolean>;
  }

  async kvList(plugin: string, prefix: string, limit: number): Promise<string[]> {
    const rows = this.statements.kvList.all(plugin, prefix, prefix, limit) as Array<{ key: string }>;
    return rows.map((row) => row.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    this.db.close();
  }

  private releaseLeases(now: number, expiredBefore: number): number {
    const expired = this.statements.expiredLeases.run({ now, before: expiredBefore, error: JSON.stringify(LEASE_LOST_ON_LAST_ATTEMPT) });
    const released = this.statements.releaseLeases.run({ now, before: expiredBefore });
    return expired.changes + released.changes;
  }

  /** Queues a write for the next group commit. */
  private write(run: () => unknown): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error("store is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ run, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.db.transaction(() => {
        for (const item of batch) {
          // Each write in its own savepoint: one failing write must not undo the others.
          try {
            results.push({ ok: true, value: this.db.transaction(item.run)() });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
      }).immediate();
    } catch (error) {
      // The commit itself failed (disk full, read-only file): nobody's write is durable.
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => {
      const result = results[i]!;
      if (result.ok) item.resolve(result.value);
      else item.reject(result.error);
    });
  }
}

const LEASE_LOST_ON_LAST_ATTEMPT = {
  code: "HOOKD_RUN_ABORTED",
  message: "run aborted: its lease expired on the last attempt (the process running it stopped or hung)",
};

interface ClaimRow {
  id: number;
  kind: ClaimedDelivery["kind"];
  plugin: string;
  target: string;
  attempts: number;
  max_attempts: number;
  lease_token: string;
  input: string | null;
  event_id: string;
  event_name: string;
  payload: string;
  received_at: number;
  depth: number;
}

interface EventRow {
  seq: number;
  id: string;
  name: string;
  payload: string;
  received_at: number;
  source: EventRecord["source"];
  parent_id: string | null;
  depth: number;
}

interface RunRow {
  id: number;
  event_id: string;
  event_name: string;
  kind: DeliveryRecord["kind"];
  plugin: string;
  target: string;
  status: DeliveryStatus;
  attempts: number;
  max_attempts: number;
  next_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  duration_ms: number | null;
}

function prepareStatements(db: Database.Database) {
  return {
    eventByIdempotencyKey: db.prepare("SELECT id, body_hash FROM events WHERE idempotency_key = ?"),
    insertEvent: db.prepare(
      `INSERT INTO events (id, name, payload, received_at, source, parent_id, depth, idempotency_key, body_hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertDelivery: db.prepare(
      `INSERT INTO deliveries (event_seq, kind, plugin, target, input, order_key, status, max_attempts, next_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
    ),
    // Per-key order: a delivery waits while an earlier one of the same handler and key is unfinished.
    claim: db.prepare(
      `UPDATE deliveries
          SET status = 'running', attempts = attempts + 1, lease_token = @token, lease_until = @until, updated_at = @now
        WHERE id IN (
          SELECT d.id FROM deliveries d
           WHERE d.status = 'pending' AND d.next_at <= @now
             AND d.plugin IN (SELECT value FROM json_each(@plugins))
             AND (d.order_key IS NULL OR NOT EXISTS (
                   SELECT 1 FROM deliveries e
                    WHERE e.plugin = d.plugin AND e.target = d.target AND e.order_key = d.order_key
                      AND e.id < d.id AND e.status IN ('pending', 'running')))
           ORDER BY d.next_at, d.id
           LIMIT @limit)
       RETURNING id, kind, plugin, target, attempts, max_attempts, lease_token, input,
                 (SELECT id FROM events WHERE seq = event_seq) AS event_id,
                 (SELECT name FROM events WHERE seq = event_seq) AS event_name,
                 (SELECT payload FROM events WHERE seq = event_seq) AS payload,
                 (SELECT received_at FROM events WHERE seq = event_seq) AS received_at,
                 (SELECT depth FROM events WHERE seq = event_seq) AS depth`,
    ),
    finish: db.prepare(
      `UPDATE deliveries
          SET status = @status, next_at = @nextAt, last_error = @error, lease_token = NULL, lease_until = NULL,
              updated_at = @now, finished_at = @finishedAt, duration_ms = @durationMs
        WHERE id = @id AND lease_token = @token AND status = 'running'`,
    ),
    renew: db.prepare("UPDATE deliveries SET lease_until = ? WHERE id = ? AND lease_token = ? AND status = 'running'"),
    expiredLeases: db.prepare(
      `UPDATE deliveries SET status = 'dead', lease_token = NULL, lease_until = NULL, last_error = @error,
              updated_at = @now, finished_at = @now
        WHERE status = 'running' AND lease_until < @before AND attempts >= max_attempts`,
    ),
    releaseLeases: db.prepare(
      `UPDATE deliveries SET status = 'pending', lease_token = NULL, lease_until = NULL, updated_at = @now, next_at = @now
        WHERE status = 'running' AND lease_until < @before`,
    ),
    retry: db.prepare(
      `UPDATE deliveries SET status = 'pending', max_attempts = attempts + 1, next_at = ?1, updated_at = ?1, finished_at = NULL
        WHERE id = ?2`,
    ),
    nextDue: db.prepare(
      `SELECT MIN(next_at) AS next FROM deliveries
        WHERE status = 'pending' AND plugin IN (SELECT value FROM json_each(?))`,
    ),
    eventById: db.prepare("SELECT * FROM events WHERE id = ?"),
    listEvents: db.prepare(
      `SELECT * FROM events
        WHERE (@name IS NULL OR name = @name) AND (@since IS NULL OR received_at >= @since)
          AND (@before IS NULL OR seq < (SELECT seq FROM events WHERE id = @before))
        ORDER BY seq DESC LIMIT @limit`,
    ),
    runById: db.prepare(`SELECT d.*, e.id AS event_id, e.name AS event_name FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?`),
    listRuns: db.prepare(
      `SELECT d.*, e.id AS event_id, e.name AS event_name FROM deliveries d JOIN events e ON e.seq = d.event_seq
        WHERE (@status IS NULL OR d.status = @status) AND (@failedOnly = 0 OR d.last_error IS NOT NULL)
          AND (@plugin IS NULL OR d.plugin = @plugin) AND (@event IS NULL OR e.name = @event)
          AND (@eventId IS NULL OR e.id = @eventId) AND (@before IS NULL OR d.id < @before)
        ORDER BY d.id DESC LIMIT @limit`,
    ),
    countByStatus: db.prepare("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status"),
    kvGet: db.prepare("SELECT value FROM kv WHERE plugin = ? AND key = ?"),
    kvSet: db.prepare(
      `INSERT INTO kv (plugin, key, value, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    ),
    kvDelete: db.prepare("DELETE FROM kv WHERE plugin = ? AND key = ?"),
    // Prefix match without LIKE, so `%` and `_` in keys mean themselves.
    kvList: db.prepare("SELECT key FROM kv WHERE plugin = ? AND substr(key, 1, length(?)) = ? ORDER BY key LIMIT ?"),
  };
}

function toEventRecord(row: EventRow): EventRecord {
  return {
    id: row.id,
    name: row.name,
    payload: JSON.parse(row.payload),
    receivedAt: row.received_at,
    source: row.source,
    parentId: row.parent_id,
    depth: row.depth,
  };
}

function toRunRecord(row: RunRow): DeliveryRecord {
  return {
    id: row.id,
    eventId: row.event_id,
    eventName: row.event_name,
    kind: row.kind,
    plugin: row.plugin,
    target: row.target,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    nextAt: row.next_at,
    lastError: row.last_error === null ? null : JSON.parse(row.last_error),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
  };
}

function clampLimit(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? 100, 1), 1000);
}
