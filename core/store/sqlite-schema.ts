/**
 * The SQLite store's tables, how a connection is opened, and how rows become records. Shared by
 * the store (reads, in the daemon's thread) and its writer (writes, in a thread of its own).
 */
import type Database from "better-sqlite3";
import { SQLITE_RUN_ATTEMPTS_TABLE } from "./run-attempts.ts";
import { SQLITE_RUN_STATS_INDEXES } from "./run-stats.ts";
import type { ClaimedDelivery, DeliveryRecord, DeliveryStatus, EventRecord, NewEvent } from "./types.ts";

export const SCHEMA_VERSION = 4;

export type Synchronous = "FULL" | "NORMAL" | "OFF";

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
  body_hash TEXT,
  root_id TEXT,
  descendants INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_name ON events(name, received_at);
CREATE INDEX IF NOT EXISTS events_by_time ON events(received_at);
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
  duration_ms INTEGER,
  suspect INTEGER NOT NULL DEFAULT 0,
  attempt_base INTEGER NOT NULL DEFAULT 0,
  replay_id TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries(event_seq);
CREATE TABLE IF NOT EXISTS kv (
  plugin TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (plugin, key)
) WITHOUT ROWID;
`;

/** Indexes over columns that older databases gain in migrate(). */
const INDEXES = `
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries(status, suspect, next_at, id);
DROP INDEX IF EXISTS deliveries_by_key;
-- Only unfinished deliveries: the order check looks for an earlier one still holding the key.
CREATE INDEX IF NOT EXISTS deliveries_unfinished_by_key ON deliveries(plugin, order_key, id)
  WHERE order_key IS NOT NULL AND status IN ('pending', 'running');
CREATE INDEX IF NOT EXISTS deliveries_by_replay ON deliveries(replay_id) WHERE replay_id IS NOT NULL;
-- Claims and due times ask per plugin: a seek to that plugin's pending rows, so another plugin's
-- backlog (or an unloaded plugin's) is never walked past.
CREATE INDEX IF NOT EXISTS deliveries_pending_by_plugin ON deliveries(plugin, suspect, next_at, id) WHERE status = 'pending';
`;

/** Sets a connection up: WAL, the durability level, cascading deletes, patience with locks. */
export function configureConnection(db: Database.Database, synchronous: Synchronous): void {
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  // After a checkpoint the WAL file is cut back to this size instead of keeping its peak.
  db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
}

/** Creates the tables, or brings those of an older hookd up to this schema. */
export function ensureSchema(db: Database.Database): void {
  db.exec(SCHEMA);
  migrate(db);
  db.exec(INDEXES);
  // Schema 4: run detail (each attempt with what it did), children of an event by parent.
  db.exec(SQLITE_RUN_ATTEMPTS_TABLE);
  db.exec(SQLITE_RUN_STATS_INDEXES);
  db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
}

function migrate(db: Database.Database): void {
  const columns = new Set((db.pragma("table_info(deliveries)") as Array<{ name: string }>).map((c) => c.name));
  const added: Array<[string, string]> = [
    ["suspect", "INTEGER NOT NULL DEFAULT 0"],
    ["attempt_base", "INTEGER NOT NULL DEFAULT 0"],
    ["replay_id", "TEXT"],
  ];
  for (const [name, type] of added) if (!columns.has(name)) db.exec(`ALTER TABLE deliveries ADD COLUMN ${name} ${type}`);
  // Schema 3: the emit budget (root_id on every emitted event, the count on its root).
  const eventColumns = new Set((db.pragma("table_info(events)") as Array<{ name: string }>).map((c) => c.name));
  const addedToEvents: Array<[string, string]> = [
    ["root_id", "TEXT"],
    ["descendants", "INTEGER NOT NULL DEFAULT 0"],
    // Schema 4: the trace context of the event's ingress (tracing on).
    ["traceparent", "TEXT"],
  ];
  for (const [name, type] of addedToEvents) if (!eventColumns.has(name)) db.exec(`ALTER TABLE events ADD COLUMN ${name} ${type}`);
  // The ready index gained the suspect column: rebuild it under the same name.
  const ready = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'deliveries_ready'").get() as { sql: string } | undefined;
  if (ready && !ready.sql.includes("suspect")) db.exec("DROP INDEX deliveries_ready");
}

export interface ClaimRow {
  id: number;
  kind: ClaimedDelivery["kind"];
  plugin: string;
  target: string;
  attempts: number;
  max_attempts: number;
  lease_token: string;
  suspect: number;
  input: string | null;
  event_id: string;
  event_name: string;
  payload: string;
  received_at: number;
  depth: number;
}

export interface EventRow {
  seq: number;
  id: string;
  name: string;
  /** null only in a bounded list, for a payload over its bound (`payload_bytes` says how large). */
  payload: string | null;
  payload_bytes?: number | string;
  received_at: number;
  source: EventRecord["source"];
  parent_id: string | null;
  depth: number;
  root_id: string | null;
}

export interface RunRow {
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
  order_key: string | null;
  suspect: number;
  replay_id: string | null;
}

/** SELECT of a run with its event's id and name, for DeliveryRecord. */
export const RUN_COLUMNS = "d.*, e.id AS event_id, e.name AS event_name FROM deliveries d JOIN events e ON e.seq = d.event_seq";

export function toClaimedDelivery(row: ClaimRow): ClaimedDelivery {
  // One row that does not parse must not fail the claim of its batch neighbours.
  let unreadable: string | undefined;
  const parse = (text: string | null, what: string): unknown => {
    if (text === null) return undefined;
    try {
      return JSON.parse(text);
    } catch (error) {
      unreadable ??= `its ${what} is not JSON (${error instanceof Error ? error.message : String(error)})`;
      return undefined;
    }
  };
  const input = parse(row.input, "input");
  const payload = parse(row.payload, "payload");
  return {
    ...(unreadable === undefined ? {} : { unreadable }),
    id: row.id,
    kind: row.kind,
    plugin: row.plugin,
    target: row.target,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    leaseToken: row.lease_token,
    suspect: row.suspect === 1,
    input,
    event: {
      id: row.event_id,
      name: row.event_name,
      payload,
      receivedAt: row.received_at,
      depth: row.depth,
    },
  };
}

/**
 * An event's values in the column order of `events` (id, name, payload, received_at, source,
 * parent_id, depth, idempotency_key, body_hash), as both stores insert them.
 */
export function eventValues(event: NewEvent, payloadJson?: string): [string, string, string, number, string, string | null, number, string | null, string | null] {
  return [
    event.id,
    event.name,
    payloadJson ?? JSON.stringify(event.payload),
    event.receivedAt,
    event.source,
    event.parentId ?? null,
    event.depth,
    event.idempotencyKey ?? null,
    event.bodyHash ?? null,
  ];
}

export function toEventRecord(row: EventRow): EventRecord {
  return {
    seq: row.seq,
    id: row.id,
    name: row.name,
    payload: row.payload === null ? null : JSON.parse(row.payload),
    ...(row.payload === null && row.payload_bytes !== undefined ? { payloadTruncated: { bytes: Number(row.payload_bytes) } } : {}),
    receivedAt: row.received_at,
    source: row.source,
    parentId: row.parent_id,
    depth: row.depth,
    rootId: row.root_id ?? null,
  };
}

export function toRunRecord(row: RunRow): DeliveryRecord {
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
    orderKey: row.order_key,
    suspect: row.suspect === 1,
    replayId: row.replay_id,
  };
}

/**
 * The plugins that have pending deliveries, by a loose index scan of deliveries_pending_by_plugin:
 * one seek per such plugin, whatever the backlog. Claims and due-time checks then seek only
 * those, not every loaded plugin (1,000 idle plugins cost 1,000 seeks per claim otherwise).
 */
export const PLUGINS_WITH_PENDING_SQL = `
  WITH RECURSIVE p(plugin) AS (
    SELECT (SELECT plugin FROM deliveries WHERE status = 'pending' ORDER BY plugin LIMIT 1)
    UNION ALL
    SELECT (SELECT plugin FROM deliveries WHERE status = 'pending' AND plugin > p.plugin ORDER BY plugin LIMIT 1)
      FROM p WHERE p.plugin IS NOT NULL)
  SELECT plugin FROM p WHERE plugin IS NOT NULL`;

