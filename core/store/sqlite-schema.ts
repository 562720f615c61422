/**
 * The SQLite store's tables and how a connection is opened. Shared by the store (reads, in the
 * daemon's thread) and its writer (writes, in a thread of its own); how rows become records is
 * rows.ts, the same for both stores.
 */
import type Database from "better-sqlite3";

import { SQLITE_RUN_ATTEMPTS_TABLE } from "./run-attempts.ts";
import { SQLITE_RUN_STATS_INDEXES } from "./run-stats.ts";

export const SCHEMA_VERSION = 7;

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
-- Each schedule's last claimed tick (core/time/scheduler.ts): claiming a tick is moving it forward.
CREATE TABLE IF NOT EXISTS schedule_ticks (schedule_id TEXT PRIMARY KEY, last_tick_at INTEGER NOT NULL) WITHOUT ROWID;
-- Schema 7: flow control's windows (core/store/flow-windows.ts): each throttle's or rate limit's last starts.
-- expires_at: when the window counts nothing any more (its latest time plus the period), for the prune.
CREATE TABLE IF NOT EXISTS flow_windows (id TEXT PRIMARY KEY, starts TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
  plugin TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (plugin, key)
) WITHOUT ROWID;
-- Schema 5: the telephony workstation commands (core/store/oktell-commands.ts).
CREATE TABLE IF NOT EXISTS oktell_commands (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  user_login TEXT NOT NULL,
  method TEXT NOT NULL,
  xml TEXT,
  arg INTEGER,
  state TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  sent_at INTEGER,
  lease_until INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER,
  answer TEXT,
  error TEXT,
  guard_task TEXT
);
CREATE INDEX IF NOT EXISTS oktell_commands_open ON oktell_commands(user_login, seq) WHERE state IN ('queued', 'sent');
CREATE INDEX IF NOT EXISTS oktell_commands_finished ON oktell_commands(finished_at) WHERE finished_at IS NOT NULL;
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
-- Flow control: the running deliveries of a concurrency scope (counted at every claim of one),
-- and the pending delivery of a debounce scope (skipped when a later event comes).
CREATE INDEX IF NOT EXISTS deliveries_running_by_concurrency ON deliveries(plugin, concurrency_key)
  WHERE status = 'running' AND concurrency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_pending_by_debounce ON deliveries(plugin, debounce_key)
  WHERE status = 'pending' AND debounce_key IS NOT NULL;
-- Skipped deliveries by plugin, for /metrics (hookd_flow_deliveries).
CREATE INDEX IF NOT EXISTS deliveries_skipped ON deliveries(plugin) WHERE status = 'skipped';
-- Delayed events by due time (the scheduled list); events delivered at once are not in it.
CREATE INDEX IF NOT EXISTS events_scheduled ON events(deliver_at) WHERE deliver_at IS NOT NULL;
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
  // Schema 6: run detail (each attempt with what it did), children of an event by parent.
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
    // Schema 7: flow control (core/store/flow-windows.ts).
    ["flow", "TEXT"],
    ["concurrency_key", "TEXT"],
    ["concurrency_limit", "INTEGER"],
    ["debounce_key", "TEXT"],
    ["waiting", "TEXT"],
  ];
  for (const [name, type] of added) if (!columns.has(name)) db.exec(`ALTER TABLE deliveries ADD COLUMN ${name} ${type}`);
  // Schema 3: the emit budget (root_id on every emitted event, the count on its root).
  const eventColumns = new Set((db.pragma("table_info(events)") as Array<{ name: string }>).map((c) => c.name));
  const addedToEvents: Array<[string, string]> = [
    ["root_id", "TEXT"],
    ["descendants", "INTEGER NOT NULL DEFAULT 0"],
    // Schema 4: delayed events (core/time/delay.ts).
    ["deliver_at", "INTEGER"],
    // Schema 5: the telephony workstation's user that sent the event (ctx.event.source.user).
    ["source_user", "TEXT"],
    // Schema 6: the trace context of the event's ingress (tracing on).
    ["traceparent", "TEXT"],
  ];
  for (const [name, type] of addedToEvents) if (!eventColumns.has(name)) db.exec(`ALTER TABLE events ADD COLUMN ${name} ${type}`);
  // The ready index gained the suspect column: rebuild it under the same name.
  const ready = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'deliveries_ready'").get() as { sql: string } | undefined;
  if (ready && !ready.sql.includes("suspect")) db.exec("DROP INDEX deliveries_ready");
}

/**
 * The plugins that have pending deliveries, by a loose index scan of deliveries_pending_by_plugin:
 * one seek per such plugin, whatever the backlog. Claims and due-time checks then seek only
 * those, not every loaded plugin (1,000 idle plugins cost 1,000 seeks per claim otherwise).
 *
 * The index is named (INDEXED BY): without statistics SQLite chose deliveries_ready for
 * `status = 'pending'` and sorted every pending row for each step, 35 ms per call with 27,000
 * pending, on every claim; that was why 10 plugins' throughput fell as their backlog grew.
 */
export const PLUGINS_WITH_PENDING_SQL = `
  WITH RECURSIVE p(plugin) AS (
    SELECT (SELECT plugin FROM deliveries INDEXED BY deliveries_pending_by_plugin WHERE status = 'pending' ORDER BY plugin LIMIT 1)
    UNION ALL
    SELECT (SELECT plugin FROM deliveries INDEXED BY deliveries_pending_by_plugin WHERE status = 'pending' AND plugin > p.plugin ORDER BY plugin LIMIT 1)
      FROM p WHERE p.plugin IS NOT NULL)
  SELECT plugin FROM p WHERE plugin IS NOT NULL`;

