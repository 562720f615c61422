/**
 * The systemd watchdog: WATCHDOG=1 at half of WatchdogSec, sent from a timer on the daemon's
 * event loop, and only while the store takes writes. A loop stuck in a long synchronous stretch,
 * or a store that can no longer commit (disk full, file system remounted read-only, a foreign
 * lock), stops the pings and systemd restarts the service (Restart=on-failure): events answered
 * 202 are on disk, so a restart loses nothing.
 */
import type { Logger } from "../base/log.ts";

export interface WatchdogOptions {
  /** WATCHDOG_USEC: the service manager's deadline between two pings. */
  intervalUsec: number;
  /** Sends WATCHDOG=1. */
  ping: () => Promise<boolean>;
  /** Why the daemon must not ping now (the store is not writable), or undefined when it may. */
  withholdReason: () => Promise<string | undefined>;
  logger: Logger;
}

export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = true;
  private withheld: string | undefined;

  constructor(private readonly options: WatchdogOptions) {}

  /** Half the interval, as sd_watchdog_enabled(3) recommends: one late ping is not yet fatal. */
  get periodMs(): number {
    return Math.max(Math.floor(this.options.intervalUsec / 2000), 1);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.options.logger.info({ watchdogMs: Math.round(this.options.intervalUsec / 1000), pingEveryMs: this.periodMs }, "systemd watchdog on");
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    // A ping still under way (a slow service manager) is not doubled up.
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const reason = await this.options.withholdReason().catch((error: unknown) => `health check failed: ${(error as Error).message}`);
      if (this.stopped) return;
      if (reason !== undefined) {
        if (this.withheld === undefined) {
          this.options.logger.error({ reason }, `watchdog ping withheld: ${reason}; systemd restarts hookd if this lasts`);
        }
        this.withheld = reason;
        return;
      }
      if (this.withheld !== undefined) this.options.logger.warn({ was: this.withheld }, "watchdog pings resumed");
      this.withheld = undefined;
      await this.options.ping();
    } finally {
      this.ticking = false;
      if (!this.stopped) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.tick(), this.periodMs);
        // The HTTP server keeps the process alive; the watchdog alone must not.
        this.timer.unref();
      }
    }
  }
}
