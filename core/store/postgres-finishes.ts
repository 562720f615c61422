/**
 * Run results on PostgreSQL, many in one statement: results that arrive in one turn of the event
 * loop (runs finish in bursts, and every run has one) are written by one UPDATE over arrays,
 * each row fenced by its own lease token as the single finish is (postgres-claims.ts), instead
 * of one statement, one round trip and one transaction each. A result with run detail (its
 * attempt's activity) still goes alone, in the statement that also inserts the attempt.
 */
import type pg from "pg";
import { FINISH_ASSIGNMENTS } from "./postgres-claims.ts";
import { finishValues } from "./rows.ts";
import type { DeliveryResult } from "./types.ts";

/** What a finish reports: the keys it frees, or null when the lease no longer held. */
export type FinishedRow = { orderKey: string | null; concurrencyKey: string | null } | null;

/** Most results in one statement: a longer burst goes as several. */
const MAX_BATCH = 256;

interface Waiting {
  id: number;
  leaseToken: string;
  result: DeliveryResult;
  resolve: (row: FinishedRow) => void;
  reject: (error: unknown) => void;
}

export class FinishBatcher {
  private queue: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly pool: pg.Pool) {}

  finish(id: number, leaseToken: string, result: DeliveryResult): Promise<FinishedRow> {
    return new Promise<FinishedRow>((resolve, reject) => {
      this.queue.push({ id, leaseToken, result, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const queued = this.queue;
    this.queue = [];
    for (let start = 0; start < queued.length; start += MAX_BATCH) void this.write(queued.slice(start, start + MAX_BATCH));
  }

  private async write(batch: Waiting[]): Promise<void> {
    const values = batch.map((w) => finishValues(w.result));
    try {
      // Named: parsed and planned once per connection, like the single finish. One delivery can
      // be in a batch twice (the late result of a lost lease beside its current one): only the
      // row whose token matches is updated, and each result is answered by its id and token
      // (a claim gives all its deliveries one token: the token alone tells nothing apart).
      const { rows } = await this.pool.query<{ id: number; token: string; order_key: string | null; concurrency_key: string | null }>({
        name: "hookd.finish.batch",
        text: `UPDATE deliveries d SET ${FINISH_ASSIGNMENTS}
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[], $9::int[], $10::smallint[])
                AS v(id, token, status, now, next_at, error, finished_at, duration_ms, refund, suspect)
          WHERE d.id = v.id AND d.lease_token = v.token
          RETURNING d.id, v.token, d.order_key, d.concurrency_key`,
        values: [
          batch.map((w) => w.id),
          batch.map((w) => w.leaseToken),
          values.map((v) => v.status),
          values.map((v) => v.now),
          values.map((v) => v.nextAt),
          values.map((v) => v.error),
          values.map((v) => v.finishedAt),
          values.map((v) => v.durationMs),
          values.map((v) => v.refund),
          values.map((v) => v.suspect),
        ],
      });
      const leaseOf = (id: number, token: string) => `${id} ${token}`;
      const finished = new Map(rows.map((row) => [leaseOf(Number(row.id), row.token), { orderKey: row.order_key, concurrencyKey: row.concurrency_key }]));
      // A lease's row was updated once: a second result under the same lease finds it spent.
      for (const w of batch) {
        const key = leaseOf(w.id, w.leaseToken);
        const row = finished.get(key) ?? null;
        finished.delete(key);
        w.resolve(row);
      }
    } catch (error) {
      // Nothing of the statement is stored: every run of it is recorded again as its lease expires.
      for (const w of batch) w.reject(error);
    }
  }
}
