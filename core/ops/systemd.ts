/**
 * hookd as a systemd service (Type=notify): READY=1 once the daemon takes events, the watchdog
 * while it runs, RELOADING=1 ... READY=1 around a SIGHUP reload, STOPPING=1 when a stop signal
 * starts the drain. Without NOTIFY_SOCKET (a terminal, a container without systemd) every method
 * is a no-op and nothing is spawned.
 */
import type { Logger } from "../base/log.ts";
import { monotonicUsec, SystemdNotifier, type SystemdEnv } from "./sd-notify.ts";
import { Watchdog } from "./watchdog.ts";

export interface ServiceNotificationsOptions {
  logger: Logger;
  /** From `takeSystemdEnv()`, called before anything starts a child process; undefined outside systemd. */
  systemd: SystemdEnv | undefined;
}

export interface ReadyInfo {
  /** A one-line STATUS= for `systemctl status`. */
  status: string;
  /** Why the watchdog must not ping now (the store is not writable), or undefined. */
  withholdWatchdog: () => Promise<string | undefined>;
}

export class ServiceNotifications {
  private readonly notifier: SystemdNotifier | undefined;
  private readonly watchdogUsec: number | undefined;
  private watchdog: Watchdog | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(options: ServiceNotificationsOptions) {
    this.log = options.logger.child({ component: "systemd" });
    const env = options.systemd;
    this.notifier = env && new SystemdNotifier({ notifySocket: env.notifySocket, logger: this.log });
    this.watchdogUsec = env?.watchdogUsec;
  }

  /** True when a service manager listens (NOTIFY_SOCKET was set). */
  get enabled(): boolean {
    return this.notifier !== undefined;
  }

  /** The daemon takes events: store open, plugins loaded, port listening. Starts the watchdog. */
  async ready(info: ReadyInfo): Promise<void> {
    // A stop signal during start-up: systemd hears STOPPING=1, never a READY=1 after it.
    if (!this.notifier || this.stopped) return;
    await this.notifier.notify({ READY: 1, STATUS: info.status });
    this.log.debug({ status: info.status }, "told systemd: ready");
    // A stop signal during the send: systemd stops watching, so must hookd.
    if (this.watchdogUsec !== undefined && !this.watchdog && !this.stopped) {
      const notifier = this.notifier;
      this.watchdog = new Watchdog({
        intervalUsec: this.watchdogUsec,
        ping: () => notifier.notify({ WATCHDOG: 1 }),
        withholdReason: info.withholdWatchdog,
        logger: this.log,
      });
      this.watchdog.start();
    }
  }

  /**
   * Runs a reload between RELOADING=1 and READY=1, so the service manager sees when the new
   * config and plugins are in force (with Type=notify-reload, `systemctl reload` waits for it).
   * A failed reload leaves the old ones serving: READY=1 still follows, with the failure in STATUS=.
   */
  async reload<T>(run: () => Promise<T>, status: (result: T | undefined, error: unknown) => string): Promise<T> {
    await this.notifier?.notify({ RELOADING: 1, MONOTONIC_USEC: monotonicUsec(), STATUS: "reloading config and plugins" });
    let result: T | undefined;
    let failure: unknown;
    try {
      result = await run();
      return result;
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      // A stop that began meanwhile stays a stop: no READY=1 after STOPPING=1.
      if (!this.stopped) await this.notifier?.notify({ READY: 1, STATUS: status(result, failure) });
    }
  }

  /** A stop signal arrived: the drain begins. The watchdog stops with it (systemd stops watching too). */
  stopping(status: string): void {
    this.stopped = true;
    this.watchdog?.stop();
    void this.notifier?.notify({ STOPPING: 1, STATUS: status });
  }

  /** Waits for messages still being sent (STOPPING=1 before the process exits). */
  async close(): Promise<void> {
    this.watchdog?.stop();
    await this.notifier?.flush();
  }
}
