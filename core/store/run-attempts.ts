/**
 * The run-attempts table (run detail): one row per attempt of a delivery, with its outcome and
 * what it did (core/runs/activity.ts) as JSON. Rows hang off their delivery (ON DELETE CASCADE),
 * so retention pruning an event takes its runs' attempts with it. Both stores create it and map
 * its rows through here; the SQLite and PostgreSQL column types differ only in spelling.
 */
import type { RunAttemptRecord } from "./types.ts";

export const SQLITE_RUN_ATTEMPTS_TABLE = `
CREATE TABLE IF NOT EXISTS run_attempts (
  delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  code TEXT,
  error TEXT,
  activity TEXT NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_parent ON events(parent_id) WHERE parent_id IS NOT NULL;
`;

export const PG_RUN_ATTEMPTS_MIGRATION = `
  CREATE TABLE run_attempts (
    delivery_id bigint NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    started_at bigint NOT NULL,
    duration_ms bigint NOT NULL,
    status text NOT NULL,
    code text,
    error text,
    activity text NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
  );
  CREATE INDEX events_by_parent ON events(parent_id) WHERE parent_id IS NOT NULL;
  ALTER TABLE events ADD COLUMN traceparent text;
  `;

export interface RunAttemptRow {
  attempt: number;
  started_at: number;
  duration_ms: number;
  status: RunAttemptRecord["status"];
  code: string | null;
  error: string | null;
  activity: string;
}

/** The columns after delivery_id, in table order, as both stores insert them. */
export function runAttemptValues(record: RunAttemptRecord): [number, number, number, string, string | null, string | null, string] {
  return [record.attempt, record.startedAt, Math.round(record.durationMs), record.status, record.code, record.error === null ? null : JSON.stringify(record.error), JSON.stringify(record.activity)];
}

export function toRunAttemptRecord(row: RunAttemptRow): RunAttemptRecord {
  return {
    attempt: row.attempt,
    startedAt: Number(row.started_at),
    durationMs: Number(row.duration_ms),
    status: row.status,
    code: row.code,
    error: row.error === null ? null : JSON.parse(row.error),
    activity: JSON.parse(row.activity),
  };
}

/** Attempts of one delivery are few (its max attempts): no paging needed, but still bounded. */
export const MAX_ATTEMPTS_LISTED = 1000;
/** Children of one event listed at most (the emit budget bounds them anyway). */
export const MAX_CHILDREN_LISTED = 1000;
