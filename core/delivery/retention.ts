/**
 * Retention: events whose deliveries all finished are deleted (with their deliveries) once they
 * are older than `delivery.retention.doneMs`, and those with dead letters after `deadMs`, so the
 * database stops growing at the volume of the retention window. SQLite reuses the freed pages;
 * the file keeps its high-water mark. Events with pending or running deliveries are never
 * pruned. An Idempotency-Key is forgotten with its event: a repeat after that is a new event.
 */
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../base/log.ts";
import type { Store } from "../store/types.ts";

export interface RetentionOptions {
  store: Store;
  retention: () => Settings["delivery"]["retention"];
  logger: Logger;
  /** Time between two pruning passes. */
  intervalMs?: number;
  now?: () => number;
}

/** Events deleted per transaction: small enough that ingress never waits long for the writer. */
const BATCH = 1000;

export class RetentionPruner {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private running: Promise<number> | undefined;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: RetentionOptions) {
    this.log = options.logger.child({ component: "retention" });
    this.now = options.now ?? Date.now;
  }

  /** Prunes soon after start, then every interval. */
  start(): void {
    const interval = this.options.intervalMs ?? 10 * 60_000;
    this.stopped = false;
    const schedule = (delayMs: number) => {
      this.timer = setTimeout(() => {
        this.pruneNow()
          .catch((error: unknown) => this.log.warn({ err: error }, "pruning old events failed; the next pass retries"))
          .finally(() => {
            if (!this.stopped) schedule(interval);
          });
      }, delayMs).unref();
    };
    schedule(Math.min(interval, 30_000));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass: deletes in batches until nothing old is left. Returns how many events went. */
  pruneNow(): Promise<number> {
    this.running ??= this.prune().finally(() => (this.running = undefined));
    return this.running;
  }

  private async prune(): Promise<number> {
    const { doneMs, deadMs } = this.options.retention();
    const now = this.now();
    // 0 keeps forever: nothing was received before the epoch.
    const doneBefore = doneMs === 0 ? 0 : now - doneMs;
    const deadBefore = deadMs === 0 ? 0 : now - deadMs;
    if (doneBefore <= 0 && deadBefore <= 0) return 0;
    let total = 0;
    for (;;) {
      const deleted = await this.options.store.pruneEvents({ doneBefore, deadBefore, limit: BATCH, now });
      total += deleted;
      if (deleted < BATCH) break;
    }
    if (total > 0) this.log.info({ events: total, doneBefore: new Date(doneBefore).toISOString() }, "pruned old events");
    return total;
  }
}
