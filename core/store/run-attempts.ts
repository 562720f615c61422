/**
 * The run-attempts table (run detail): one row per attempt of a delivery, with its outcome and
 * what it did (core/runs/activity.ts) as JSON. Rows hang off their delivery (ON DELETE CASCADE),
 * so retention pruning an event takes its runs' attempts with it. Both stores create it and map
 * its rows through here; the SQLite and PostgreSQL column types differ only in spelling.
 */
import type { DeliveryRecord, RunAttemptRecord } from "./types.ts";

/**
 * Whether an attempt is worth a row of its own: not a first attempt that went well and did
 * nothing to record (no log line, fetch, emit or kv write). Most runs are that, and their row
 * was an insert and a copy to the writer thread on every event; the run's own row says all there
 * is (see `recordedAttempts`).
 */
export function attemptWorthStoring(attempt: RunAttemptRecord): boolean {
  const { activity } = attempt;
  return !(
    attempt.attempt === 1 &&
    attempt.status === "done" &&
    activity.logs.length === 0 &&
    activity.fetches.length === 0 &&
    activity.emits.length === 0 &&
    activity.kvWrites.length === 0 &&
    activity.dropped === 0
  );
}

/**
 * A run's attempts as recorded, with the quiet first attempt that was not stored (see
 * attemptWorthStoring) put back from the run's own row: done on its first attempt, its duration,
 * started that long before it finished.
 */
export function recordedAttempts(run: DeliveryRecord, stored: RunAttemptRecord[]): RunAttemptRecord[] {
  if (stored.length > 0 || run.status !== "done" || run.attempts !== 1 || run.finishedAt === null) return stored;
  const durationMs = run.durationMs ?? 0;
  return [
    {
      attempt: 1,
      startedAt: run.finishedAt - durationMs,
      durationMs,
      status: "done",
      code: null,
      error: null,
      activity: { logs: [], fetches: [], emits: [], kvWrites: [], dropped: 0 },
    },
  ];
}

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
