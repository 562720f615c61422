/**
 * The PostgreSQL store's tables and their migrations. Columns mirror the SQLite store's (JSON as
 * text, times as epoch-ms bigints, `suspect` as 0/1) so rows become records through the same
 * converters (rows.ts).
 *
 * Migrations run at start inside one transaction holding an advisory lock keyed on the schema:
 * instances starting together wait for each other instead of racing on CREATE TABLE.
 */
import type pg from "pg";
import { PG_RUN_ATTEMPTS_MIGRATION } from "./run-attempts.ts";
import { PG_RUN_STATS_INDEXES } from "./run-stats.ts";

/** Each entry brings the schema from version `index` to `index + 1`; append, never edit. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE events (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    name text NOT NULL,
    payload text NOT NULL,
    received_at bigint NOT NULL,
    source text NOT NULL,
    parent_id text,
    depth integer NOT NULL DEFAULT 0,
    idempotency_key text UNIQUE,
    body_hash text
  );
  CREATE INDEX events_by_name ON events(name, received_at);
  CREATE INDEX events_by_time ON events(received_at);
  CREATE TABLE deliveries (
    id bigserial PRIMARY KEY,
    event_seq bigint NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    kind text NOT NULL,
    plugin text NOT NULL,
    target text NOT NULL,
    input text,
    order_key text,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    next_at bigint NOT NULL,
    lease_token text,
    lease_until bigint,
    last_error text,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    finished_at bigint,
    duration_ms bigint,
    suspect smallint NOT NULL DEFAULT 0,
    attempt_base integer NOT NULL DEFAULT 0,
    replay_id text
  );
  CREATE INDEX deliveries_by_event ON deliveries(event_seq);
  CREATE INDEX deliveries_ready ON deliveries(status, suspect, next_at, id) WHERE status = 'pending';
  CREATE INDEX deliveries_running ON deliveries(lease_until) WHERE status = 'running';
  CREATE INDEX deliveries_unfinished_by_key ON deliveries(plugin, order_key, id)
    WHERE order_key IS NOT NULL AND status IN ('pending', 'running');
  CREATE INDEX deliveries_by_replay ON deliveries(replay_id) WHERE replay_id IS NOT NULL;
  CREATE TABLE kv (
    plugin text NOT NULL,
    key text COLLATE "C" NOT NULL,
    value text NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (plugin, key)
  );
  CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
  `,
  // The emit budget (root_id on every emitted event, the count on its root), and the per-plugin
  // ready index: claims seek each plugin's own pending rows, never another plugin's backlog.
  `
  ALTER TABLE events ADD COLUMN root_id text;
  ALTER TABLE events ADD COLUMN descendants integer NOT NULL DEFAULT 0;
  CREATE INDEX deliveries_pending_by_plugin ON deliveries(plugin, suspect, next_at, id) WHERE status = 'pending';
  `,
  // Delayed events (core/time/delay.ts): their due time, and the scheduled list by it; each
  // schedule's last claimed tick (core/time/scheduler.ts).
  `
  ALTER TABLE events ADD COLUMN deliver_at bigint;
  CREATE INDEX events_scheduled ON events(deliver_at) WHERE deliver_at IS NOT NULL;
  CREATE TABLE schedule_ticks (schedule_id text PRIMARY KEY, last_tick_at bigint NOT NULL);
  `,
  // The telephony workstation: the user an event came from (ctx.event.source.user), and the
  // commands waiting for, sent to or answered by each user's bridge (core/integrations/oktell).
  `
  ALTER TABLE events ADD COLUMN source_user text;
  CREATE TABLE oktell_commands (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    user_login text NOT NULL,
    method text NOT NULL,
    xml text,
    arg smallint,
    state text NOT NULL,
    requested_by text NOT NULL,
    created_at bigint NOT NULL,
    not_before bigint NOT NULL,
    expires_at bigint NOT NULL,
    sent_at bigint,
    lease_until bigint,
    attempts integer NOT NULL DEFAULT 0,
    finished_at bigint,
    answer text,
    error text,
    guard_task text
  );
  CREATE INDEX oktell_commands_open ON oktell_commands(user_login, seq) WHERE state IN ('queued', 'sent');
  CREATE INDEX oktell_commands_finished ON oktell_commands(finished_at) WHERE finished_at IS NOT NULL;
  `,
  // Run detail: each attempt of a run with what it did; an event's children by parent.
  PG_RUN_ATTEMPTS_MIGRATION,
  // The console's charts: attempts and dead letters by time.
  PG_RUN_STATS_INDEXES,
  // Flow control (core/store/flow-windows.ts): each delivery's rules and why it waits, the
  // running deliveries of a concurrency scope, the pending one of a debounce scope, the ready
  // flow-controlled ones (claimed apart, under locks), and each throttle's or rate limit's window.
  `
  ALTER TABLE deliveries ADD COLUMN flow text, ADD COLUMN concurrency_key text, ADD COLUMN concurrency_limit integer,
    ADD COLUMN debounce_key text, ADD COLUMN waiting text;
  CREATE INDEX deliveries_running_by_concurrency ON deliveries(plugin, concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;
  CREATE INDEX deliveries_pending_by_debounce ON deliveries(plugin, debounce_key) WHERE status = 'pending' AND debounce_key IS NOT NULL;
  CREATE INDEX deliveries_pending_flow ON deliveries(plugin, suspect, next_at, id)
    WHERE status = 'pending' AND (flow IS NOT NULL OR concurrency_key IS NOT NULL);
  CREATE INDEX deliveries_skipped ON deliveries(plugin) WHERE status = 'skipped';
  CREATE TABLE flow_windows (id text PRIMARY KEY, starts text NOT NULL, expires_at bigint NOT NULL);
  CREATE INDEX flow_windows_expiry ON flow_windows(expires_at);
  `,
];

export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** Creates the schema if needed and applies the migrations it lacks; safe to run from many instances at once. */
export async function migrate(client: pg.ClientBase, schema: string): Promise<number> {
  await client.query("BEGIN");
  try {
    // Keyed on the schema name: two hookd clusters in two schemas of one database do not wait for each other.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('hookd.migrate'), hashtext($1))", [schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.hookd_schema (version integer NOT NULL)`);
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${quoteIdent(schema)}.hookd_schema`);
    const current = rows[0]?.version ?? 0;
    if (rows.length === 0) await client.query(`INSERT INTO ${quoteIdent(schema)}.hookd_schema (version) VALUES (0)`);
    if (current > MIGRATIONS.length) throw new Error(`the database schema is version ${current}, newer than this hookd (${MIGRATIONS.length}): upgrade hookd`);
    for (let version = current; version < MIGRATIONS.length; version++) await client.query(MIGRATIONS[version]!);
    await client.query(`UPDATE ${quoteIdent(schema)}.hookd_schema SET version = $1`, [MIGRATIONS.length]);
    await client.query("COMMIT");
    return MIGRATIONS.length - current;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
