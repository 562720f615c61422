/**
 * Pauses a plugin whose runs keep failing. After `failures` runs of different deliveries failed
 * in a row, the plugin is paused: its deliveries stay pending (no attempt is spent on them) and
 * other plugins get the capacity. After the cool-down it runs again on probation: the first
 * success closes the breaker, the first failure pauses it again for twice as long (up to 16
 * times the cool-down).
 *
 * Retries of one poison event count once, so a single bad payload cannot pause a plugin; and
 * failures that are not the plugin's doing (the sandbox process went down, the plugin was not
 * loaded, another run's limit took the isolate down with it) do not count at all.
 */
import type { Logger } from "../base/log.ts";
import type { PluginHealth } from "../plugins/status.ts";
import type { ClaimedDelivery, RunOutcome } from "../store/types.ts";
import { killedTheIsolate } from "../../sandbox/contract/run.ts";

export interface BreakerSettings {
  /** Runs of different deliveries failing in a row that pause the plugin. */
  failures: number;
  /** First pause; each pause straight after a probe doubles it. */
  coolDownMs: number;
}

export interface CircuitBreakerOptions {
  settings: () => BreakerSettings;
  logger: Logger;
  /** A plugin was paused or may run again: the dispatcher should look at its claim keys again. */
  onChange?: () => void;
  now?: () => number;
}

const NOT_THE_PLUGINS_FAULT = new Set([
  "HOOKD_SANDBOX_UNAVAILABLE",
  "HOOKD_SANDBOX_CRASHED",
  "HOOKD_SANDBOX_UNRESPONSIVE",
  "HOOKD_PLUGIN_NOT_LOADED",
  "HOOKD_PLUGIN_PAUSED",
  "HOOKD_RUN_ABORTED",
  "HOOKD_RUN_NEIGHBOUR_LIMIT",
  "HOOKD_RUN_INPUT_INVALID",
  "HOOKD_RUN_NO_HANDLER",
  "HOOKD_STORE_LEASE_LOST",
]);

const MAX_COOL_DOWN_FACTOR = 16;

interface BreakerEntry {
  state: PluginHealth["state"];
  /** Deliveries whose latest run failed, since the last success. */
  streak: Set<number>;
  pausedUntil: number | undefined;
  pauses: number;
  /** Pauses in a row without a success between them. */
  trips: number;
  isolateRestarts: number;
  lastFailure: PluginHealth["lastFailure"];
  timer: NodeJS.Timeout | undefined;
}

export class CircuitBreaker {
  private readonly entries = new Map<string, BreakerEntry>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.log = options.logger.child({ component: "breaker" });
    this.now = options.now ?? Date.now;
  }

  /** Takes a finished run into account. */
  record(info: { delivery: ClaimedDelivery; plugin: string; outcome: RunOutcome }): void {
    const { delivery, plugin, outcome } = info;
    if (delivery.kind === "webhook") return;
    const entry = this.entry(plugin);
    if (outcome.ok) {
      entry.streak.clear();
      entry.trips = 0;
      if (entry.state === "probing") {
        entry.state = "running";
        this.log.info({ plugin }, "plugin runs again: a run succeeded after its pause");
      }
      return;
    }
    const { code, message } = outcome.error;
    if (killedTheIsolate(code)) entry.isolateRestarts++;
    if (NOT_THE_PLUGINS_FAULT.has(code)) return;
    entry.lastFailure = { code, message, runId: String(delivery.id), at: new Date(this.now()).toISOString() };
    entry.streak.add(delivery.id);
    if (entry.state === "paused") return;
    if (entry.state === "probing" || entry.streak.size >= this.options.settings().failures) this.pause(plugin, entry);
  }

  /** Whether the plugin's deliveries wait. */
  isPaused(plugin: string): boolean {
    return this.entries.get(plugin)?.state === "paused";
  }

  health(plugin: string): PluginHealth {
    const entry = this.entries.get(plugin);
    return {
      state: entry?.state ?? "running",
      consecutiveFailures: entry?.streak.size ?? 0,
      pausedUntil: entry?.state === "paused" && entry.pausedUntil !== undefined ? new Date(entry.pausedUntil).toISOString() : null,
      pauses: entry?.pauses ?? 0,
      isolateRestarts: entry?.isolateRestarts ?? 0,
      lastFailure: entry?.lastFailure ?? null,
    };
  }

  /** Forgets a plugin's record (a new version was loaded by hand): it runs at once. */
  reset(plugin: string): void {
    const entry = this.entries.get(plugin);
    if (!entry) return;
    clearTimeout(entry.timer);
    const wasPaused = entry.state === "paused";
    this.entries.delete(plugin);
    if (wasPaused) this.options.onChange?.();
  }

  close(): void {
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
  }

  private pause(plugin: string, entry: BreakerEntry): void {
    const { coolDownMs } = this.options.settings();
    entry.trips++;
    entry.pauses++;
    const pauseMs = coolDownMs * Math.min(2 ** (entry.trips - 1), MAX_COOL_DOWN_FACTOR);
    entry.state = "paused";
    entry.pausedUntil = this.now() + pauseMs;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.state = "probing";
      entry.pausedUntil = undefined;
      this.log.info({ plugin }, "plugin pause over: its runs go again, on probation");
      this.options.onChange?.();
    }, pauseMs);
    entry.timer.unref();
    this.log.warn(
      {
        plugin,
        code: "HOOKD_PLUGIN_PAUSED",
        failures: entry.streak.size,
        lastCode: entry.lastFailure?.code,
        pausedUntil: new Date(entry.pausedUntil).toISOString(),
        pauses: entry.pauses,
      },
      `plugin paused for ${pauseMs} ms: ${entry.streak.size} runs failed in a row (last: ${entry.lastFailure?.code})`,
    );
    this.options.onChange?.();
  }

  private entry(plugin: string): BreakerEntry {
    let entry = this.entries.get(plugin);
    if (!entry) {
      entry = { state: "running", streak: new Set(), pausedUntil: undefined, pauses: 0, trips: 0, isolateRestarts: 0, lastFailure: null, timer: undefined };
      this.entries.set(plugin, entry);
    }
    return entry;
  }
}
