/**
 * What the console's charts read: per plugin and minute, the attempts run and those that failed
 * (from run_attempts, through its time index), a bounded sample of the latest attempts'
 * durations for p50/p99, and per minute the events accepted and the runs dead-lettered. Both
 * stores run the same SQL (only the placeholders differ) and every query seeks an index on time.
 */
export interface RunStatsRows {
  perMinute: Array<{ plugin: string; minute: number; runs: number; failed: number }>;
  /** The latest attempts' durations, at most MAX_DURATION_SAMPLES. */
  durations: Array<{ plugin: string; durationMs: number }>;
  accepted: Array<{ minute: number; n: number }>;
  dead: Array<{ minute: number; n: number }>;
}

export const MAX_DURATION_SAMPLES = 5000;

export const SQLITE_RUN_STATS_INDEXES = `
CREATE INDEX IF NOT EXISTS run_attempts_by_time ON run_attempts(started_at);
CREATE INDEX IF NOT EXISTS deliveries_dead_by_time ON deliveries(finished_at) WHERE status = 'dead';
`;

export const PG_RUN_STATS_INDEXES = `
  CREATE INDEX run_attempts_by_time ON run_attempts(started_at);
  CREATE INDEX deliveries_dead_by_time ON deliveries(finished_at) WHERE status = 'dead';
  `;

/** The queries with `$1` (once each) for the start of the window; SQLite takes `?` for it. */
export const RUN_STATS_SQL = {
  perMinute: `SELECT d.plugin AS plugin, a.started_at / 60000 AS minute, COUNT(*) AS runs,
                     SUM(CASE WHEN a.status = 'failed' THEN 1 ELSE 0 END) AS failed
                FROM run_attempts a JOIN deliveries d ON d.id = a.delivery_id
               WHERE a.started_at >= $1 GROUP BY d.plugin, a.started_at / 60000`,
  durations: `SELECT d.plugin AS plugin, a.duration_ms AS "durationMs"
                FROM run_attempts a JOIN deliveries d ON d.id = a.delivery_id
               WHERE a.started_at >= $1 ORDER BY a.started_at DESC LIMIT ${MAX_DURATION_SAMPLES}`,
  accepted: `SELECT received_at / 60000 AS minute, COUNT(*) AS n FROM events WHERE received_at >= $1 GROUP BY received_at / 60000`,
  dead: `SELECT finished_at / 60000 AS minute, COUNT(*) AS n FROM deliveries WHERE status = 'dead' AND finished_at >= $1 GROUP BY finished_at / 60000`,
} as const;

export function sqliteStatsSql(sql: string): string {
  return sql.replace(/\$1/g, "?");
}

/** Rows as both drivers return them (PostgreSQL's COUNT and SUM are text or bigint): numbers. */
export function toRunStats(rows: { perMinute: any[]; durations: any[]; accepted: any[]; dead: any[] }): RunStatsRows {
  return {
    perMinute: rows.perMinute.map((r) => ({ plugin: String(r.plugin), minute: Number(r.minute), runs: Number(r.runs), failed: Number(r.failed) })),
    durations: rows.durations.map((r) => ({ plugin: String(r.plugin), durationMs: Number(r.durationMs) })),
    accepted: rows.accepted.map((r) => ({ minute: Number(r.minute), n: Number(r.n) })),
    dead: rows.dead.map((r) => ({ minute: Number(r.minute), n: Number(r.n) })),
  };
}
