/**
 * Runs what the store says must run: claims ready deliveries with a lease, sends each to the
 * sandbox on the plugin's current version, and records the outcome (done, retry later with
 * backoff, or dead). The store is the queue, so a restart picks up exactly where it stopped.
 */
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../log.ts";
import type { PluginManager } from "../plugins/manager.ts";
import type { ClaimedDelivery, DeliveryResult, RunOutcome, Store } from "../store/types.ts";
import type { RunRequest, Sandbox } from "../../sandbox/protocol.ts";
import { retryDelayMs } from "./backoff.ts";

export interface RunFinished {
  delivery: ClaimedDelivery;
  plugin: string;
  outcome: RunOutcome;
  status: DeliveryResult["status"];
}

export interface DispatcherOptions {
  store: Store;
  sandbox: Sandbox;
  plugins: PluginManager;
  delivery: () => Settings["delivery"];
  /** How long a claim holds a delivery before another claim may take it over. */
  leaseMs: () => number;
  logger: Logger;
  now?: () => number;
  onRunFinished?: (info: RunFinished) => void;
}

const LEASE_SWEEP_MS = 5000;

export class Dispatcher {
  private readonly inflight = new Map<number, { delivery: ClaimedDelivery; done: Promise<void> }>();
  private pumping = false;
  private again = false;
  private stopped = true;
  private dueTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: DispatcherOptions) {
    this.log = options.logger.child({ component: "delivery" });
    this.now = options.now ?? Date.now;
  }

  get runsInFlight(): number {
    return this.inflight.size;
  }

  start(): void {
    this.stopped = false;
    this.sweepTimer = setInterval(() => void this.maintainLeases(), LEASE_SWEEP_MS).unref();
    this.wake();
  }

  /** Something may be ready: new events, a finished run, a loaded plugin, a due retry. */
  wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  /** Stops claiming; waits up to `budgetMs` for runs in flight. Returns how many were left running. */
  async stop(budgetMs: number): Promise<number> {
    this.stopped = true;
    clearTimeout(this.dueTimer);
    clearInterval(this.sweepTimer);
    if (this.inflight.size === 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inflight.values()].map((run) => run.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, budgetMs))),
    ]);
    clearTimeout(timer);
    return this.inflight.size;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.again = false;
        const keys = this.claimKeys();
        let free = this.options.delivery().concurrency - this.inflight.size;
        while (free > 0 && !this.stopped && keys.length > 0) {
          const claimed = await this.options.store.claimDeliveries({
            limit: free,
            leaseMs: this.options.leaseMs(),
            now: this.now(),
            plugins: keys,
          });
          if (claimed.length === 0) break;
          for (const delivery of claimed) this.execute(delivery);
          free = this.options.delivery().concurrency - this.inflight.size;
        }
      } while (this.again && !this.stopped);
    } catch (error) {
      this.log.error({ err: error }, "claiming deliveries failed; retrying shortly");
      this.scheduleWake(1000);
    } finally {
      this.pumping = false;
    }
    await this.scheduleNextDue();
  }

  private claimKeys(): readonly string[] {
    return this.options.plugins.claimKeys();
  }

  private execute(delivery: ClaimedDelivery): void {
    const run = this.runDelivery(delivery)
      .catch((error: unknown) => this.log.error({ err: error, runId: String(delivery.id) }, "recording a run failed"))
      .finally(() => {
        this.inflight.delete(delivery.id);
        this.wake();
      });
    this.inflight.set(delivery.id, { delivery, done: run });
  }

  /** Renews the leases of live runs (a long run keeps its delivery), then frees expired ones. */
  private async maintainLeases(): Promise<void> {
    try {
      const until = this.now() + this.options.leaseMs();
      await Promise.all([...this.inflight.values()].map(({ delivery }) => this.options.store.renewLease(delivery.id, delivery.leaseToken, until)));
      if ((await this.options.store.releaseExpiredLeases(this.now())) > 0) this.wake();
    } catch (error) {
      this.log.warn({ err: error }, "lease maintenance failed; next sweep retries");
    }
  }

  private async runDelivery(delivery: ClaimedDelivery): Promise<void> {
    const isAction = delivery.kind === "route" || delivery.kind === "action";
    const plugin = isAction ? this.options.plugins.actionOwner(delivery.target) : delivery.plugin;
    const version = plugin === undefined ? undefined : this.options.plugins.currentVersion(plugin);
    const request: RunRequest | undefined =
      plugin === undefined || version === undefined
        ? undefined
        : {
            runId: String(delivery.id),
            plugin,
            version,
            kind: isAction ? "action" : "event",
            name: delivery.target,
            payload: isAction ? delivery.input : delivery.event.payload,
            meta: {
              eventId: delivery.event.id,
              eventName: delivery.event.name,
              receivedAt: delivery.event.receivedAt,
              attempt: delivery.attempt,
              depth: delivery.event.depth,
            },
          };
    const outcome: RunOutcome = request
      ? await this.options.sandbox.run(request)
      : {
          ok: false,
          retriable: true,
          durationMs: 0,
          error: { code: "HOOKD_PLUGIN_NOT_LOADED", message: `plugin ${plugin ?? delivery.plugin} is not loaded` },
        };
    const result = this.decide(delivery, outcome);
    const kept = await this.options.store.finishDelivery(delivery.id, delivery.leaseToken, result);
    const fields = {
      plugin: plugin ?? delivery.plugin,
      event: delivery.event.name,
      eventId: delivery.event.id,
      runId: String(delivery.id),
      attempt: delivery.attempt,
      durationMs: Math.round(outcome.durationMs * 10) / 10,
    };
    if (!kept) {
      this.log.warn({ ...fields, code: "HOOKD_STORE_LEASE_LOST" }, "run finished after its lease was lost; its outcome is discarded");
      return;
    }
    if (outcome.ok) this.log.debug(fields, "run done");
    else {
      const level = result.status === "dead" ? "error" : "warn";
      this.log[level](
        { ...fields, code: outcome.error.code, location: outcome.error.location, status: result.status, nextAt: result.status === "pending" ? new Date(result.nextAt!).toISOString() : undefined },
        result.status === "dead" ? `run dead-lettered: ${outcome.error.message}` : `run failed, will retry: ${outcome.error.message}`,
      );
    }
    this.options.onRunFinished?.({ delivery, plugin: plugin ?? delivery.plugin, outcome, status: result.status });
  }

  private decide(delivery: ClaimedDelivery, outcome: RunOutcome): DeliveryResult {
    const now = this.now();
    if (outcome.ok) return { status: "done", now, durationMs: outcome.durationMs };
    const settings = this.options.delivery();
    if (!outcome.retriable || delivery.attempt >= delivery.maxAttempts) {
      return { status: "dead", now, durationMs: outcome.durationMs, error: outcome.error };
    }
    const nextAt = now + retryDelayMs(delivery.attempt, settings.backoffMs, settings.maxBackoffMs);
    return { status: "pending", now, durationMs: outcome.durationMs, error: outcome.error, nextAt };
  }

  private async scheduleNextDue(): Promise<void> {
    if (this.stopped) return;
    const next = await this.options.store.nextDueAt(this.claimKeys()).catch(() => null);
    if (next === null) return;
    const delay = next - this.now();
    // Due but not claimed: held back by capacity or by an earlier delivery of the same key.
    // A finishing run wakes the dispatcher anyway; this is only the safety net.
    this.scheduleWake(delay > 0 ? delay : 250);
  }

  private scheduleWake(delayMs: number): void {
    clearTimeout(this.dueTimer);
    this.dueTimer = setTimeout(() => this.wake(), Math.min(delayMs, 2 ** 31 - 1)).unref();
  }
}
