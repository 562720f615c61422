/**
 * Runs schedules: plugins' `schedule(cron, { tz, catchUp }, handler)` and the config's
 * `schedules: [{ cron, tz, emit, payload }]`. A tick is stored like an accepted event (its event
 * and deliveries in one transaction), so it retries, dead-letters and shows in the history like
 * any other run; the store's claim of the tick is part of that transaction and only moves a
 * schedule's last tick forward, so a tick is stored once however many instances reach it
 * (PostgreSQL) and however often this one restarts.
 *
 * One timer for the earliest next tick of all schedules (1,000 schedules cost one timer, not
 * 1,000), on an injectable clock so tests move time by hand. A tick missed while the daemon was
 * down (the store's last tick is older than the latest tick due) follows the schedule's
 * `catchUp`: `"one"` runs the latest missed tick once at start, `"none"` skips, `"all"` runs each
 * (bounded, see cron.ts). A tick that comes late while running (a busy event loop) still runs.
 * When the set of schedules changes (a plugin reloaded or removed, a config reload) the next
 * `refresh()` takes effect at once: a removed schedule never ticks again.
 */
import type { Logger } from "../base/log.ts";
import type { DeliveryTarget, NewEvent, Store } from "../store/types.ts";
import { compileCron, ticksDue, type CatchUp, type CompiledCron } from "./cron.ts";

/** A schedule as the scheduler runs it, whoever declared it. */
export interface ScheduleDefinition {
  /** Stable across restarts and instances (the store keys its last tick on it). */
  id: string;
  source: "plugin" | "config";
  /** Plugin schedules: the plugin, and the handler's key in it. */
  plugin?: string | undefined;
  key?: string | undefined;
  /** Config schedules: the event each tick emits, with this payload. */
  emit?: string | undefined;
  payload?: unknown;
  cron: string;
  tz: string;
  catchUp: CatchUp;
  /** A calendar's name: ticks on its closed days are skipped (see `isClosed`). */
  calendar?: string | undefined;
}

/** What one tick stores: built by the daemon (a plugin's handler, or the config's event through the catalog). */
export interface TickRecord {
  event: NewEvent;
  deliveries: DeliveryTarget[];
}

/** Time, for the scheduler: the real clock, or a test's clock moved by hand. */
export interface SchedulerClock {
  now(): number;
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const REAL_CLOCK: SchedulerClock = {
  now: () => Date.now(),
  setTimer: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface SchedulerOptions {
  store: Pick<Store, "claimScheduleTick" | "lastScheduleTicks">;
  /** The schedules in force now (read at every refresh). */
  definitions: () => readonly ScheduleDefinition[];
  /** The event and deliveries of one tick at `at`. */
  tickFor: (definition: ScheduleDefinition, at: number) => TickRecord;
  /** After a tick this instance stored (the dispatcher wakes, metrics count it). */
  onTick?: (info: { definition: ScheduleDefinition; at: number; eventId: string }) => void;
  logger: Logger;
  clock?: SchedulerClock;
  /**
   * Whether a tick at `at` falls on a closed day of the schedule's calendar (skipped, not stored);
   * throws when the calendar is unknown (the schedule then shows `failing`).
   */
  isClosed?: (definition: ScheduleDefinition, at: number) => boolean;
}

/** What `GET /api/schedules` shows for one schedule. */
export interface ScheduleStatus {
  id: string;
  source: "plugin" | "config";
  plugin: string | null;
  emit: string | null;
  cron: string;
  tz: string;
  catchUp: CatchUp;
  calendar: string | null;
  /** `scheduled`, or `failing` while storing its ticks fails (retried every second). */
  state: "scheduled" | "failing";
  nextTick: string | null;
  /** The last tick stored, by this instance or another. */
  lastTick: string | null;
  lastError: string | null;
}

interface Entry {
  definition: ScheduleDefinition;
  cron: CompiledCron;
  /** Ticks after this instant are still to be considered. */
  since: number;
  nextAt: number | null;
  lastTick: number | null;
  lastError: string | null;
}

/** A failed claim (the store not answering) is tried again this soon. */
const RETRY_MS = 1000;
/** setTimeout's longest delay; a later tick re-arms from the store of times when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: SchedulerClock;
  private readonly log: Logger;
  private chain: Promise<void> = Promise.resolve();
  private timer: unknown;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = true;

  constructor(private readonly options: SchedulerOptions) {
    this.clock = options.clock ?? REAL_CLOCK;
    this.log = options.logger.child({ component: "schedules" });
  }

  /** Loads the schedules (running what was missed while down) and arms the timer. */
  start(): Promise<void> {
    this.stopped = false;
    return this.refresh();
  }

  /** The set of schedules may have changed: adds new ones (with their catch-up), drops removed ones. */
  refresh(): Promise<void> {
    return this.serially(() => this.reconcile());
  }

  /** No tick after this; a tick being stored finishes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disarm();
    await this.chain;
  }

  /** Waits for the work queued so far (tests). */
  settled(): Promise<void> {
    return this.chain;
  }

  list(): ScheduleStatus[] {
    return [...this.entries.values()].map(({ definition: d, nextAt, lastTick, lastError }) => ({
      id: d.id,
      source: d.source,
      plugin: d.plugin ?? null,
      emit: d.emit ?? null,
      cron: d.cron,
      tz: d.tz,
      catchUp: d.catchUp,
      calendar: d.calendar ?? null,
      state: lastError === null ? "scheduled" : "failing",
      nextTick: nextAt === null ? null : new Date(nextAt).toISOString(),
      lastTick: lastTick === null ? null : new Date(lastTick).toISOString(),
      lastError,
    }));
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const next = this.chain.then(work).catch((error: unknown) => this.log.error({ err: error }, "schedules: unexpected failure"));
    this.chain = next;
    return next;
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const wanted = new Map<string, ScheduleDefinition>();
    for (const definition of this.options.definitions()) if (!wanted.has(definition.id)) wanted.set(definition.id, definition);
    for (const id of [...this.entries.keys()]) if (!wanted.has(id)) this.entries.delete(id);
    const added: Entry[] = [];
    for (const [id, definition] of wanted) {
      const known = this.entries.get(id);
      if (known) {
        // Same id, same cron and zone: what else changed (payload, catchUp) applies from the next tick.
        known.definition = definition;
        continue;
      }
      let cron: CompiledCron;
      try {
        cron = compileCron(definition, definition.plugin ?? "the config");
      } catch (error) {
        // Checked when the plugin or the config loaded; a schedule that slips past is left out, loudly.
        this.log.error({ schedule: id, code: "HOOKD_SCHEDULE_INVALID" }, (error as Error).message);
        continue;
      }
      const entry: Entry = { definition, cron, since: this.clock.now(), nextAt: null, lastTick: null, lastError: null };
      this.entries.set(id, entry);
      added.push(entry);
    }
    if (added.length > 0) {
      // What was missed while this schedule was not running anywhere: ticks after the store's last one.
      const last = await this.options.store.lastScheduleTicks().catch((error: unknown) => {
        this.log.warn({ err: error }, "reading the schedules' last ticks failed; missed ticks are not caught up");
        return new Map<string, number>();
      });
      const now = this.clock.now();
      await Promise.all(
        added.map(async (entry) => {
          entry.lastTick = last.get(entry.definition.id) ?? null;
          const missed = ticksDue(entry.cron, entry.lastTick, now, entry.definition.catchUp, (at) => !this.closed(entry, at));
          entry.since = now;
          entry.nextAt = entry.cron.next(now);
          for (const at of missed) if (!(await this.store(entry, at, "caught up"))) break;
        }),
      );
    }
    this.arm();
  }

  /** The timer fired: every schedule whose next tick is due stores it. */
  private async fire(): Promise<void> {
    if (this.stopped) return;
    const now = this.clock.now();
    const due = [...this.entries.values()].filter((entry) => entry.nextAt !== null && entry.nextAt <= now);
    await Promise.all(
      due.map(async (entry) => {
        // Normally one tick; after a stall of the event loop, the latest (or all, bounded) since the last look.
        const ticks = entry.cron
          .previous(now, entry.definition.catchUp === "all" ? 100 : 1)
          .filter((at) => at > entry.since && !this.closed(entry, at))
          .reverse();
        let ok = true;
        for (const at of ticks) if (!(ok = await this.store(entry, at, "due"))) break;
        if (ok) {
          entry.since = now;
          entry.nextAt = entry.cron.next(now);
        } else entry.nextAt = now + RETRY_MS;
      }),
    );
    this.arm();
  }

  /** Stores one tick (its claim, event and deliveries together); false when the store failed. */
  private async store(entry: Entry, at: number, why: "due" | "caught up"): Promise<boolean> {
    if (!this.entries.has(entry.definition.id) || this.stopped) return true;
    const { definition } = entry;
    try {
      const tick = this.options.tickFor(definition, at);
      const stored = await this.options.store.claimScheduleTick(definition.id, at, tick.event, tick.deliveries);
      entry.lastTick = Math.max(entry.lastTick ?? at, at);
      entry.lastError = null;
      if (stored) {
        this.log[why === "due" ? "debug" : "info"]({ schedule: definition.id, plugin: definition.plugin, tick: new Date(at).toISOString(), eventId: tick.event.id }, why === "due" ? "schedule ticked" : "missed schedule tick caught up");
        this.options.onTick?.({ definition, at, eventId: tick.event.id });
      }
      return true;
    } catch (error) {
      entry.lastError = error instanceof Error ? error.message : String(error);
      this.log.warn({ err: error, schedule: definition.id }, "storing a schedule tick failed; retrying shortly");
      return false;
    }
  }

  /** A tick on a closed day of the schedule's calendar; an unknown calendar skips every tick, loudly. */
  private closed(entry: Entry, at: number): boolean {
    if (entry.definition.calendar === undefined || !this.options.isClosed) return false;
    try {
      return this.options.isClosed(entry.definition, at);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (entry.lastError !== message) this.log.error({ schedule: entry.definition.id, calendar: entry.definition.calendar }, message);
      entry.lastError = message;
      return true;
    }
  }

  private arm(): void {
    if (this.stopped) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const entry of this.entries.values()) if (entry.nextAt !== null && entry.nextAt < earliest) earliest = entry.nextAt;
    if (earliest === this.timerAt && this.timer !== undefined) return;
    this.disarm();
    if (!Number.isFinite(earliest)) return;
    this.timerAt = earliest;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      void this.serially(() => this.fire());
    }, Math.min(Math.max(earliest - this.clock.now(), 0), MAX_TIMER_MS));
  }

  private disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }
}
