/**
 * sd_notify without a native addon: each message is one run of `systemd-notify`, which sends a
 * datagram to $NOTIFY_SOCKET. Node has no unix datagram sockets, and a compiled addon would be
 * one more thing to build on every server; a process per message costs a few milliseconds, and
 * hookd sends a handful of messages at start, reload and stop plus one watchdog ping every half
 * interval.
 *
 * `systemd-notify` waits until the service manager has processed each message (a barrier), so a
 * message is not lost when the short-lived sender exits before PID 1 reads it (the unit needs
 * `NotifyAccess=all` because the sender is a child of the daemon). Messages go out one after
 * another, in the order they were sent: RELOADING=1 always arrives before its READY=1.
 */
import { execFile } from "node:child_process";
import type { Logger } from "../base/log.ts";

/** The systemd environment hookd was started with; read once, then removed from process.env. */
export interface SystemdEnv {
  notifySocket: string;
  /** WATCHDOG_USEC, when the unit sets WatchdogSec= and the watchdog is meant for this process. */
  watchdogUsec: number | undefined;
}

/** How long one `systemd-notify` may take (its barrier waits for the service manager). */
const SEND_TIMEOUT_MS = 10_000;

/**
 * Takes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID out of the environment, as sd_notify's
 * `unset_environment` does: the sandbox process and anything else hookd starts must not think
 * they are the service. Returns undefined when hookd does not run under a service manager.
 */
export function takeSystemdEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid): SystemdEnv | undefined {
  const notifySocket = env.NOTIFY_SOCKET;
  const watchdogUsec = env.WATCHDOG_USEC;
  const watchdogPid = env.WATCHDOG_PID;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!notifySocket) return undefined;
  const usec = Number(watchdogUsec);
  // WATCHDOG_PID names the process the watchdog is for; another one's is not ours to feed.
  const forUs = watchdogPid === undefined || watchdogPid === "" || Number(watchdogPid) === pid;
  return { notifySocket, watchdogUsec: forUs && Number.isSafeInteger(usec) && usec > 0 ? usec : undefined };
}

export interface SystemdNotifierOptions {
  notifySocket: string;
  logger: Logger;
  /** The daemon's pid, sent as MAINPID and used as the sender where privileges allow. */
  pid?: number;
  /** The sender program; tests keep the default. */
  command?: string;
}

export class SystemdNotifier {
  private chain: Promise<void> = Promise.resolve();
  private warned = false;
  private readonly pid: number;

  constructor(private readonly options: SystemdNotifierOptions) {
    this.pid = options.pid ?? process.pid;
  }

  /**
   * Queues one message (`{ READY: "1", STATUS: "..." }`); resolves true once the service manager
   * took it, false when sending failed (logged once, never thrown: a missing notification must
   * not take the daemon down).
   */
  notify(fields: Record<string, string | number>): Promise<boolean> {
    const assignments = Object.entries(fields).map(([key, value]) => `${key}=${String(value).replace(/\n/g, " ")}`);
    const sent = this.chain.then(() => this.send(assignments));
    this.chain = sent.then(() => undefined);
    return sent;
  }

  /** Waits for every queued message (before the process exits). */
  flush(): Promise<void> {
    return this.chain;
  }

  private send(assignments: string[]): Promise<boolean> {
    return new Promise((resolve) => {
      execFile(
        this.options.command ?? "systemd-notify",
        [`--pid=${this.pid}`, ...assignments],
        { env: { ...process.env, NOTIFY_SOCKET: this.options.notifySocket }, timeout: SEND_TIMEOUT_MS, windowsHide: true },
        (error, _stdout, stderr) => {
          if (!error) return resolve(true);
          // The first failure is a warning (systemd-notify missing, a wrong NOTIFY_SOCKET); the
          // same failure every watchdog interval after it would only flood the journal.
          const level = this.warned ? "debug" : "warn";
          this.warned = true;
          this.options.logger[level](
            { err: error, stderr: String(stderr).trim() || undefined, message: assignments.join(" ") },
            "systemd-notify failed; the service manager may miss readiness and watchdog messages",
          );
          resolve(false);
        },
      );
    });
  }
}

/** CLOCK_MONOTONIC in microseconds, as RELOADING=1 carries it (libuv's hrtime reads that clock). */
export function monotonicUsec(): string {
  return String(process.hrtime.bigint() / 1000n);
}
