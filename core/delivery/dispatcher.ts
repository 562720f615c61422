/**
 * Runs what the store says must run: claims ready deliveries with a lease, sends each to the
 * sandbox on the plugin's current version, and records the outcome (done, retry later with
 * backoff, or dead). The store is the queue, so a restart picks up exactly where it stopped.
 *
 * A sandbox process crash fails every run in flight at once, though one run caused it. Those
 * runs get their attempt back and become crash suspects, which run one at a time with nothing
 * beside them: the innocent ones pass, and the run that kills the process again is the only one
 * charged for it, until it is dead-lettered.
 */
import { randomUUID } from "node:crypto";
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../base/log.ts";
import type { PluginManager } from "../plugins/manager.ts";
import { ACTION_KEY_PREFIX, retryDelayMs, type RetryPolicy } from "../routing/index.ts";
import type { AcceptReservation, StartAtAccept } from "./start-at-accept.ts";
import type {
  AcceptOutcome,
  ClaimedDelivery,
  ClaimOptions,
  DeliveryResult,
  DeliveryTarget,
  RunActivity,
  RunAttemptError,
  RunAttemptRecord,
  RunError,
  RunOutcome,
  Store,
} from "../store/types.ts";
import type { RunRequest } from "../../sandbox/contract/run.ts";
import type { Sandbox } from "../../sandbox/contract/sandbox.ts";
import { valueTooDeep } from "../base/depth.ts";
import { attemptWorthStoring } from "../store/run-attempts.ts";
import { DEFAULT_MAX_TEXT_CHARS, truncateText } from "../base/truncate.ts";

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
  /** The retry policy of a plugin (its own overrides on the config's defaults). */
  retryPolicy?: (plugin: string) => RetryPolicy;
  /** How long a claim holds a delivery before another claim may take it over. */
  leaseMs: () => number;
  logger: Logger;
  now?: () => number;
  onRunFinished?: (info: RunFinished) => void;
  /** Sends `kind: "webhook"` deliveries (they need no sandbox); adds their claim keys. */
  webhooks?: { claimKeys(): readonly string[]; run(delivery: ClaimedDelivery): Promise<RunOutcome> };
  /** A plugin paused by the circuit breaker: its deliveries (and its actions') stay pending. */
  isPaused?: (plugin: string) => boolean;
  /**
   * Config `server.maxDepth`: a stored payload nested deeper (planted past the ingress, or kept
   * from before the bound) is dead-lettered with HOOKD_STORE_UNREADABLE instead of being handed
   * to a run (the isolate transfer is recursive).
   */
  maxPayloadDepth?: () => number;
  /** Config `delivery.maxErrorChars`: a run's error message is stored and logged up to this. */
  maxErrorChars?: () => number;
  /** Run detail: gathers what each attempt did (core/runs/activity.ts), stored with its finish. */
  activity?: RunActivitySink | undefined;
}

/** Run detail's side of the dispatcher: open an attempt, take what it did, add source context to an error. */
export interface RunActivitySink {
  /** Before the attempt (a run span starts here when traces are on). */
  begin(runId: string, plugin: string, delivery: ClaimedDelivery): void | Promise<void>;
  /** After it: what it did (and its span ends with the outcome). */
  take(runId: string, outcome?: RunOutcome): RunActivity;
  describeError?(plugin: string, error: RunError): RunAttemptError;
}

const LEASE_SWEEP_MS = 5000;
/** A run that found no sandbox (restarting) or no loaded version waits this long, uncharged. */
const UNAVAILABLE_RETRY_MS = 500;
/** Failures that say nothing about the handler: its attempt is given back. */
/** How soon a dispatcher with free slots looks again at work that is due but was not claimed. */
const IDLE_RECHECK_MS = 250;

const NOT_THE_HANDLERS_FAULT = new Set(["HOOKD_SANDBOX_UNAVAILABLE", "HOOKD_PLUGIN_NOT_LOADED", "HOOKD_RUN_NEIGHBOUR_LIMIT"]);

export class Dispatcher implements StartAtAccept {
  private readonly inflight = new Map<number, { delivery: ClaimedDelivery; done: Promise<void> }>();
  /** Runs in flight per owner (see ownerOf), for the fair shares. */
  private readonly inflightByOwner = new Map<string, number>();
  /** Finishes queued and not committed yet (their runs' slots are free already). */
  private readonly finishing = new Set<Promise<void>>();
  private pumping = false;
  /** Slots reserved for deliveries started at accept (start-at-accept.ts), their accept still committing. */
  private reserved = 0;
  private readonly reservedByOwner = new Map<string, number>();
  private reservationsSettled: (() => void) | undefined;
  /**
   * Whether the store may hold due deliveries this dispatcher has not claimed. Only a look that
   * found none due (pump) clears it, and every wake sets it: while it is clear, a run that ends
   * has nothing to claim after it and looks for nothing (with runs started at accept, that look
   * was two reads of the store per run, for nothing), and new deliveries may start at accept
   * (start-at-accept.ts) without passing any that wait.
   */
  private backlog = true;
  private wakes = 0;
  /**
   * The last claim took every ready delivery it could see (it came up short of the free slots),
   * and no wake came since: nothing waits that a new delivery could pass, even while `backlog`
   * stays set because deliveries keep arriving (start-at-accept.ts, on PostgreSQL).
   */
  private caughtUp = false;
  // Claim keys grouped by owner, for as long as the keys are the same array (see ownersOf).
  private ownersCache: { keys: readonly string[]; owners: Map<string, string[]> } | undefined;
  private pumpScheduled = false;
  private again = false;
  /** A crash suspect is running: nothing else is claimed until it finishes. */
  private suspectRunning = false;
  /** When the next crash suspect is due (null: none; undefined: ask the store). */
  private suspectDueAt: number | null | undefined;
  private suspectKeys: readonly string[] | undefined;
  /** Ask the store when the next delivery is due (after a restart, a timer, a plugin change). */
  private dueCheck = true;
  private stopped = true;
  private dueTimer: NodeJS.Timeout | undefined;
  private dueTimerAt = Number.POSITIVE_INFINITY;
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
    this.dueCheck = true;
    this.suspectDueAt = undefined;
    this.sweepTimer = setInterval(() => void this.maintainLeases(), LEASE_SWEEP_MS).unref();
    this.wake();
  }

  /** Something may be ready: new events, a finished run, a loaded plugin, a due retry. */
  wake(): void {
    this.backlog = true;
    this.caughtUp = false;
    this.wakes++;
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    // Runs finishing together (their results arrive in one batch) wake it once, not once each.
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      if (this.pumping) this.again = true;
      else if (!this.stopped) void this.pump();
    });
  }

  /** A run ended (or its finish committed): its slot may take what waits, if anything may. */
  private wakeAfterRun(): void {
    // suspectDueAt undefined: a crash suspect's state changed, the store must be asked.
    if (this.backlog || this.suspectDueAt === undefined) this.wake();
  }

  /**
   * Stops claiming; waits up to `budgetMs` for runs in flight, then gives the leases of runs
   * still going back to the store (pending, attempt not counted), so they run again at the next
   * start without waiting for a lease to expire. Returns how many were left running.
   */
  async stop(budgetMs: number): Promise<number> {
    this.stopped = true;
    clearTimeout(this.dueTimer);
    clearInterval(this.sweepTimer);
    // Accepts that reserved slots settle first: what they started is released below, with the rest.
    if (this.reserved > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => (this.reservationsSettled = resolve)), new Promise((resolve) => (timer = setTimeout(resolve, budgetMs)))]);
      clearTimeout(timer);
    }
    if (this.inflight.size === 0) {
      await Promise.allSettled([...this.finishing]);
      return 0;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inflight.values()].map((run) => run.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, budgetMs))),
    ]);
    clearTimeout(timer);
    await Promise.allSettled([...this.finishing]);
    const left = [...this.inflight.values()].map(({ delivery }) => ({ id: delivery.id, leaseToken: delivery.leaseToken }));
    if (left.length > 0) {
      await this.options.store.releaseDeliveries(left, this.now()).catch((error: unknown) => {
        this.log.warn({ err: error }, "releasing leases at stop failed; they expire on their own");
      });
    }
    return left.length;
  }

  /**
   * Claims what is ready, up to the concurrency. Under load this runs once per finished batch,
   * so it reads nothing but the claim itself: retry times come from decide(), crash suspects are
   * tracked here, and the store is asked for the next due time only when that may have changed
   * behind this process's back (start, a plugin change, a timer, every lease sweep).
   */
  private async pump(): Promise<void> {
    this.pumping = true;
    let idleSlots = false;
    try {
      do {
        this.again = false;
        const keys = this.claimKeys();
        if (keys.length === 0 || this.suspectRunning) continue;
        if (await this.suspectIsDue(keys)) {
          // Let the runs in flight finish, then run the suspect alone.
          if (this.inflight.size > 0) continue;
          this.suspectDueAt = undefined;
          const claimed = await this.claim(keys, 1, true);
          if (claimed[0]) {
            this.suspectRunning = true;
            this.execute(claimed[0]);
            continue;
          }
        }
        const wakes = this.wakes;
        if (await this.claimFairly(keys)) {
          idleSlots = true;
          if (wakes === this.wakes) this.caughtUp = true;
        }
      } while (this.again && !this.stopped);
      if ((this.dueCheck || idleSlots) && !this.stopped) {
        this.dueCheck = false;
        const wakes = this.wakes;
        const next = await this.options.store.nextDueAt(this.claimKeys());
        // Nothing pending that is due, and no wake since the look: runs ending need not look
        // again (what is due later has its timer, which wakes the dispatcher then).
        if ((next === null || next > this.now()) && wakes === this.wakes && !this.again) this.backlog = false;
        if (next !== null && next > this.now()) this.wakeAt(next);
        // Due already but not claimed while slots stay free: a share's claim came up short (rows
        // skipped while another transaction held them, events committed after the claim read),
        // or an earlier delivery of the same key holds it back. No finishing run may come to wake
        // the dispatcher (every run in flight can be a slow one), so look again shortly.
        else if (next !== null && idleSlots) this.wakeAt(this.now() + IDLE_RECHECK_MS);
      }
    } catch (error) {
      this.log.error({ err: error }, "claiming deliveries failed; retrying shortly");
      this.dueCheck = true;
      this.wakeAt(this.now() + 1000);
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Fills free slots fairly. Every owner (a plugin with its actions, a webhook endpoint) has a
   * fair share of the concurrency, max(1, floor(concurrency / owners)); the first claim takes
   * each owner up to its share, round-robin (the store picks each share's oldest first, then each
   * one's second). Slots left over because the others had nothing ready are lent out by a second
   * claim, round-robin again, but one slot is kept back: an owner over its share never takes the
   * last free slot, so an owner that starts to get work while another's slow backlog holds the
   * rest starts at once instead of waiting for a slow run to end. As borrowed runs finish, their
   * slots go first to owners under their share. Runs are never pre-empted.
   */
  /** Returns true when it left slots free (beyond the kept one) that ready work might take. */
  private async claimFairly(keys: readonly string[]): Promise<boolean> {
    const { concurrency } = this.options.delivery();
    let free = concurrency - this.inflight.size - this.reserved;
    if (free <= 0 || this.stopped) return false;
    const owners = this.ownersOf(keys);
    const share = Math.max(1, Math.floor(concurrency / owners.size));
    const fair = [...owners].map(([owner, plugins]) => ({ plugins, limit: share - this.runningOf(owner) })).filter((s) => s.limit > 0);
    let filled = false;
    if (fair.length > 0) {
      const claimed = await this.claim(keys, free, false, fair);
      for (const delivery of claimed) this.execute(delivery);
      // An owner given all it asked for may have more ready: worth lending it what is left. So
      // may an owner left out for being at or over its share already (its backlog is what the
      // fair claim did not ask for); without this, an owner that borrowed once on a claim that
      // came up short was never lent a slot again while the others stayed idle.
      filled = fair.length < owners.size || fair.some((s) => claimed.filter((d) => s.plugins.includes(d.plugin)).length === s.limit);
    } else filled = true;
    const reserve = concurrency > 1 && owners.size > 1 ? 1 : 0;
    free = concurrency - this.inflight.size - this.reserved - reserve;
    if (free <= 0 || this.stopped) return false;
    if (!filled) return true;
    const lent = [...owners.values()].map((plugins) => ({ plugins, limit: free }));
    const borrowed = await this.claim(keys, free, false, lent);
    for (const delivery of borrowed) this.execute(delivery);
    return borrowed.length < free;
  }

  /**
   * The claim keys grouped by owner. Kept while the keys are the same array (the subscriber
   * index hands out one until the serving versions change): with 1,000 plugins the grouping was
   * rebuilt on every claim.
   */
  private ownersOf(keys: readonly string[]): Map<string, string[]> {
    if (this.ownersCache?.keys === keys) return this.ownersCache.owners;
    const owners = new Map<string, string[]>();
    for (const key of keys) {
      const owner = this.ownerOf(key);
      const list = owners.get(owner);
      if (list) list.push(key);
      else owners.set(owner, [key]);
    }
    this.ownersCache = { keys, owners };
    return owners;
  }

  /** Who a claim key's runs count against: an action's plugin, else the key (a plugin, a webhook endpoint). */
  private ownerOf(key: string): string {
    return key.startsWith(ACTION_KEY_PREFIX) ? (this.options.plugins.actionOwner(key.slice(ACTION_KEY_PREFIX.length)) ?? key) : key;
  }

  private async claim(keys: readonly string[], limit: number, suspects: boolean, shares?: ClaimOptions["shares"]): Promise<ClaimedDelivery[]> {
    const claimed = await this.options.store.claimDeliveries({
      limit,
      leaseMs: this.options.leaseMs(),
      now: this.now(),
      plugins: keys,
      suspects,
      shares,
      flowControlled: this.options.plugins.hasFlowRules?.() ?? false,
    });
    if (!this.stopped || claimed.length === 0) return claimed;
    // Stopped while the claim was committing: hand them straight back.
    await this.options.store.releaseDeliveries(claimed, this.now());
    return [];
  }

  private async suspectIsDue(keys: readonly string[]): Promise<boolean> {
    if (this.suspectDueAt === undefined || !sameKeys(keys, this.suspectKeys)) {
      this.suspectKeys = keys;
      this.dueCheck = true;
      this.suspectDueAt = await this.options.store.nextDueAt(keys, true);
      if (this.suspectDueAt !== null && this.suspectDueAt > this.now()) this.wakeAt(this.suspectDueAt);
    }
    return this.suspectDueAt !== null && this.suspectDueAt <= this.now();
  }

  /** Runs in flight and slots reserved at accept, of one owner. */
  private runningOf(owner: string): number {
    return (this.inflightByOwner.get(owner) ?? 0) + (this.reservedByOwner.get(owner) ?? 0);
  }

  /**
   * Slots for an event's deliveries, to start as its accept commits (start-at-accept.ts): a
   * plugin's handler with no order key and no flow rules, serving and not paused, while no crash
   * suspect is due, within the concurrency and, with other owners about, the fair-share rule of
   * claimFairly (an owner at its share never takes the last free slot).
   */
  reserve(targets: readonly DeliveryTarget[]): AcceptReservation | undefined {
    // suspectDueAt is null only once the store said no suspect is due (undefined: not asked yet).
    // While the store may hold deliveries waiting (backlog), they go first, through the claim: a
    // store that checks for them in the accept itself (SQLite) is left to do so, since this flag
    // stays set for as long as deliveries keep arriving behind a backlog.
    if (this.stopped || this.suspectRunning || this.suspectDueAt !== null) return undefined;
    if (this.backlog && !this.caughtUp && !this.options.store.checksWaitingAtAccept) return undefined;
    const { concurrency } = this.options.delivery();
    const owners = this.ownersCache?.owners.size ?? 1;
    const share = Math.max(1, Math.floor(concurrency / owners));
    let leased: DeliveryTarget[] | undefined;
    let until = 0;
    targets.forEach((target, index) => {
      if (target.kind !== "handler" || target.orderKey !== undefined || target.flow !== undefined) return;
      const free = concurrency - this.inflight.size - this.reserved;
      if (free <= 0 || (owners > 1 && free <= 1 && this.runningOf(target.plugin) >= share)) return;
      if (this.options.isPaused?.(target.plugin) || this.options.plugins.currentVersion(target.plugin) === undefined) return;
      if (leased === undefined) {
        leased = [...targets];
        until = this.now() + this.options.leaseMs();
      }
      // A token of its own: the store tells which target it started by it.
      leased[index] = { ...target, lease: { token: randomUUID(), until } };
      this.reserved++;
      this.reservedByOwner.set(target.plugin, (this.reservedByOwner.get(target.plugin) ?? 0) + 1);
    });
    if (leased === undefined) return undefined;
    const reservedTargets: readonly DeliveryTarget[] = leased;
    let settled = false;
    return {
      targets: reservedTargets,
      settle: (outcome, event) => {
        if (settled) return;
        settled = true;
        this.settleReservation(reservedTargets, outcome, event);
      },
    };
  }

  private settleReservation(targets: readonly DeliveryTarget[], outcome: AcceptOutcome | undefined, event: ClaimedDelivery["event"]): void {
    const started = outcome?.kind === "stored" ? outcome.started : undefined;
    const toRelease: Array<{ id: number; leaseToken: string }> = [];
    targets.forEach((target, index) => {
      if (target.lease === undefined) return;
      this.reserved--;
      const left = (this.reservedByOwner.get(target.plugin) ?? 1) - 1;
      if (left > 0) this.reservedByOwner.set(target.plugin, left);
      else this.reservedByOwner.delete(target.plugin);
      const id = started?.find((s) => s.index === index)?.id;
      if (id === undefined) return;
      const delivery: ClaimedDelivery = {
        id,
        kind: target.kind,
        plugin: target.plugin,
        target: target.target,
        attempt: 1,
        maxAttempts: target.maxAttempts,
        leaseToken: target.lease.token,
        suspect: false,
        input: undefined,
        event,
      };
      if (this.stopped) toRelease.push({ id, leaseToken: delivery.leaseToken });
      else this.execute(delivery);
    });
    if (toRelease.length > 0) {
      // Stopped while the accept committed: back to pending, the attempt not counted, as a claim that lands after the stop.
      const releasing: Promise<void> = this.options.store
        .releaseDeliveries(toRelease, this.now())
        .then(
          () => undefined,
          (error: unknown) => this.log.warn({ err: error }, "releasing leases at stop failed; they expire on their own"),
        )
        .finally(() => this.finishing.delete(releasing));
      this.finishing.add(releasing);
    }
    if (this.reserved === 0) this.reservationsSettled?.();
  }

  private claimKeys(): readonly string[] {
    const webhooks = this.options.webhooks?.claimKeys() ?? [];
    const keys = webhooks.length === 0 ? this.options.plugins.claimKeys() : [...this.options.plugins.claimKeys(), ...webhooks];
    const isPaused = this.options.isPaused;
    if (!isPaused) return keys;
    const paused = (key: string) => isPaused(key.startsWith(ACTION_KEY_PREFIX) ? (this.options.plugins.actionOwner(key.slice(ACTION_KEY_PREFIX.length)) ?? "") : key);
    // The same array while nothing is paused: ownersOf keeps its grouping for as long as it is.
    return keys.some(paused) ? keys.filter((key) => !paused(key)) : keys;
  }

  private execute(delivery: ClaimedDelivery): void {
    // Counted against the owner of the claim (an action reloaded into another plugin meanwhile
    // still frees the slot it took).
    const owner = this.ownerOf(delivery.plugin);
    this.inflightByOwner.set(owner, (this.inflightByOwner.get(owner) ?? 0) + 1);
    const run = this.runDelivery(delivery)
      .catch((error: unknown) => this.log.error({ err: error, runId: String(delivery.id) }, "recording a run failed"))
      .finally(() => {
        this.inflight.delete(delivery.id);
        const left = (this.inflightByOwner.get(owner) ?? 1) - 1;
        if (left > 0) this.inflightByOwner.set(owner, left);
        else this.inflightByOwner.delete(owner);
        if (delivery.suspect) {
          this.suspectRunning = false;
          this.suspectDueAt = undefined;
        }
        this.wakeAfterRun();
      });
    this.inflight.set(delivery.id, { delivery, done: run });
  }

  /** Renews the leases of live runs (a long run keeps its delivery), then frees expired ones. */
  private async maintainLeases(): Promise<void> {
    try {
      const until = this.now() + this.options.leaseMs();
      // A run held by a sandbox process that stopped answering keeps the lease it has, no more:
      // if the process is never declared hung (or the daemon goes too), the lease runs out.
      const live = [...this.inflight.values()].filter(({ delivery }) => !this.options.sandbox.isStalled?.(String(delivery.id)));
      await Promise.all(live.map(({ delivery }) => this.options.store.renewLease(delivery.id, delivery.leaseToken, until)));
      await this.options.store.releaseExpiredLeases(this.now());
      // The safety net: whatever became due without a wake (another instance's work, a clock
      // jump) is found at the latest one sweep later.
      this.dueCheck = true;
      this.suspectDueAt = undefined;
      this.wake();
    } catch (error) {
      this.log.warn({ err: error }, "lease maintenance failed; next sweep retries");
    }
  }

  /**
   * Runs a delivery. Resolves once the outcome is known and its finish is queued: the run's slot
   * is free from then on, while the finish commits with the next group commit. A delivery after
   * it with the same key stays unclaimable until that commit (the claim checks the store), and
   * the commit wakes the dispatcher to claim it.
   */
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
            ...(isAction || delivery.event.payloadJson === undefined ? {} : { payloadJson: delivery.event.payloadJson }),
            meta: {
              eventId: delivery.event.id,
              eventName: delivery.event.name,
              receivedAt: delivery.event.receivedAt,
              attempt: delivery.attempt,
              depth: delivery.event.depth,
              ...(delivery.event.source === undefined ? {} : { source: delivery.event.source }),
            },
          };
    const unreadable = this.unreadable(delivery, isAction);
    const startedAt = this.now();
    const activity = this.options.activity;
    await activity?.begin(String(delivery.id), plugin ?? delivery.plugin, delivery);
    const outcome: RunOutcome = boundError(
      unreadable !== undefined
        ? { ok: false, retriable: false, durationMs: 0, error: { code: "HOOKD_STORE_UNREADABLE", message: `delivery ${delivery.id}: ${unreadable}` } }
        : await this.attempt(delivery, request, plugin),
      this.options.maxErrorChars?.() ?? DEFAULT_MAX_TEXT_CHARS,
    );
    const result = this.decide(delivery, plugin ?? delivery.plugin, outcome);
    if (activity) {
      const attempt = this.attemptRecord(delivery, plugin ?? delivery.plugin, outcome, startedAt, activity);
      if (attemptWorthStoring(attempt)) result.attempt = attempt;
    }
    if (result.suspect) this.suspectDueAt = undefined;
    const finishing = this.options.store
      .finishDelivery(delivery.id, delivery.leaseToken, result)
      .then(
        (kept) => this.recordFinish(delivery, plugin ?? delivery.plugin, outcome, result, kept),
        (error: unknown) => this.log.error({ err: error, runId: String(delivery.id) }, "recording a run failed; its lease expires and it runs again"),
      )
      .finally(() => this.finishing.delete(finishing));
    this.finishing.add(finishing);
  }

  /** The attempt as run detail stores it: its time, outcome, error with source context, activity. */
  private attemptRecord(delivery: ClaimedDelivery, plugin: string, outcome: RunOutcome, startedAt: number, sink: RunActivitySink): RunAttemptRecord {
    const activity = sink.take(String(delivery.id), outcome);
    let error: RunAttemptError | null = null;
    if (!outcome.ok) {
      try {
        error = sink.describeError ? sink.describeError(plugin, outcome.error) : outcome.error;
      } catch {
        error = outcome.error;
      }
    }
    return { attempt: delivery.attempt, startedAt, durationMs: outcome.durationMs, status: outcome.ok ? "done" : "failed", code: outcome.ok ? null : outcome.error.code, error, activity };
  }

  /** Why a claimed delivery cannot be handed to a run (it is dead-lettered), if it cannot. */
  private unreadable(delivery: ClaimedDelivery, isAction: boolean): string | undefined {
    if (delivery.unreadable !== undefined) return delivery.unreadable;
    const maxDepth = this.options.maxPayloadDepth?.();
    if (maxDepth === undefined) return undefined;
    const value = isAction ? delivery.input : delivery.event.payload;
    return valueTooDeep(value, maxDepth) ? `its ${isAction ? "input" : "payload"} nests deeper than ${maxDepth} levels (server.maxDepth)` : undefined;
  }

  /**
   * One attempt. A sandbox or webhook sender that throws instead of answering with an outcome
   * still settles the delivery (a retriable failure): left unsettled, it stayed `running`
   * until its lease expired, and ran into the same throw again.
   */
  private async attempt(delivery: ClaimedDelivery, request: RunRequest | undefined, plugin: string | undefined): Promise<RunOutcome> {
    try {
      if (delivery.kind === "webhook" && this.options.webhooks) return await this.options.webhooks.run(delivery);
      if (request) return await this.options.sandbox.run(request);
      return {
        ok: false,
        retriable: true,
        durationMs: 0,
        error: { code: "HOOKD_PLUGIN_NOT_LOADED", message: `plugin ${plugin ?? delivery.plugin} is not loaded` },
      };
    } catch (error) {
      return { ok: false, retriable: true, durationMs: 0, error: { code: "HOOKD_DAEMON_INTERNAL", message: `the run could not be started: ${error instanceof Error ? error.message : String(error)}` } };
    }
  }

  private recordFinish(delivery: ClaimedDelivery, plugin: string, outcome: RunOutcome, result: DeliveryResult, kept: boolean): void {
    // A suspect's state changed only now that its finish committed: look at the store again.
    if (kept && (result.suspect || delivery.suspect)) this.suspectDueAt = undefined;
    if (kept && result.status === "pending") this.wakeAt(result.nextAt!);
    // Deliveries waiting for this one's key (or a crash suspect) can go now.
    if (kept) this.wakeAfterRun();
    // A run that went well is logged at debug only: its line's fields are not even built otherwise.
    if (kept && outcome.ok && !this.log.isLevelEnabled("debug")) {
      this.options.onRunFinished?.({ delivery, plugin, outcome, status: result.status });
      return;
    }
    const fields = {
      plugin,
      event: delivery.event.name,
      eventId: delivery.event.id,
      runId: String(delivery.id),
      attempt: delivery.attempt,
      durationMs: Math.round(outcome.durationMs * 10) / 10,
    };
    if (!kept) {
      // At stop, the leases of runs cut short were released on purpose: not worth a warning.
      this.log[this.stopped ? "debug" : "warn"]({ ...fields, code: "HOOKD_STORE_LEASE_LOST" }, "run finished after its lease was lost; its outcome is discarded");
      return;
    }
    if (outcome.ok) this.log.debug(fields, "run done");
    else if (result.refundAttempt) {
      this.log[result.suspect ? "warn" : "debug"](
        { ...fields, code: outcome.error.code, suspect: result.suspect ?? delivery.suspect },
        result.suspect ? "run lost with the sandbox process; it runs again alone, attempt not counted" : `run not started: ${outcome.error.message}; it runs again, attempt not counted`,
      );
    } else {
      const level = result.status === "dead" ? "error" : "warn";
      this.log[level](
        { ...fields, code: outcome.error.code, location: outcome.error.location, status: result.status, nextAt: result.status === "pending" ? new Date(result.nextAt!).toISOString() : undefined },
        result.status === "dead" ? `run dead-lettered: ${outcome.error.message}` : `run failed, will retry: ${outcome.error.message}`,
      );
    }
    this.options.onRunFinished?.({ delivery, plugin, outcome, status: result.status });
  }

  private decide(delivery: ClaimedDelivery, plugin: string, outcome: RunOutcome): DeliveryResult {
    const now = this.now();
    if (outcome.ok) return { status: "done", now, durationMs: outcome.durationMs };
    const { durationMs, error } = outcome;
    if (NOT_THE_HANDLERS_FAULT.has(error.code)) {
      return { status: "pending", now, durationMs, error, nextAt: now + UNAVAILABLE_RETRY_MS, refundAttempt: true };
    }
    // A hung sandbox process, killed by its heartbeat, loses its runs as a crash does: which run
    // hung it is unknown, so each runs again alone, its attempt refunded.
    if ((error.code === "HOOKD_SANDBOX_CRASHED" || error.code === "HOOKD_SANDBOX_UNRESPONSIVE") && !delivery.suspect) {
      return { status: "pending", now, durationMs, error, nextAt: now, refundAttempt: true, suspect: true };
    }
    if (!outcome.retriable || delivery.attempt >= delivery.maxAttempts) return { status: "dead", now, durationMs, error };
    const policy = this.retryPolicy(plugin);
    const nextAt = now + (outcome.retryAfterMs ?? retryDelayMs(delivery.attempt, policy.backoffMs, policy.maxBackoffMs));
    return { status: "pending", now, durationMs, error, nextAt };
  }

  private retryPolicy(plugin: string): RetryPolicy {
    const policy = this.options.retryPolicy?.(plugin);
    if (policy) return policy;
    const { maxAttempts, backoffMs, maxBackoffMs } = this.options.delivery();
    return { maxAttempts, backoffMs, maxBackoffMs };
  }

  /** Work becomes due at `at` (a delayed event): the dispatcher wakes then, not by polling. */
  wakeAtTime(at: number): void {
    this.wakeAt(at);
  }

  /** Wakes the dispatcher at `at` (the earliest of the times asked for wins). */
  private wakeAt(at: number): void {
    if (this.stopped || (this.dueTimer !== undefined && this.dueTimerAt <= at)) return;
    clearTimeout(this.dueTimer);
    this.dueTimerAt = at;
    this.dueTimer = setTimeout(() => {
      this.dueTimer = undefined;
      this.dueTimerAt = Number.POSITIVE_INFINITY;
      // Only the earliest time had a timer: ask the store for the one after it.
      this.dueCheck = true;
      this.wake();
    }, Math.min(Math.max(at - this.now(), 0), 2 ** 31 - 1)).unref();
  }
}

/** The outcome with its error message (and stack) cut to the bound, saying so. */
function boundError(outcome: RunOutcome, maxChars: number): RunOutcome {
  if (outcome.ok) return outcome;
  const { error } = outcome;
  if (error.message.length <= maxChars && (error.stack === undefined || error.stack.length <= maxChars)) return outcome;
  return {
    ...outcome,
    error: { ...error, message: truncateText(error.message, maxChars), ...(error.stack === undefined ? {} : { stack: truncateText(error.stack, maxChars) }) },
  };
}

function sameKeys(a: readonly string[], b: readonly string[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((key, i) => key === b[i]);
}
