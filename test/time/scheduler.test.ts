// The scheduler on a clock moved by hand, against the real stores (SQLite and PostgreSQL): ticks
// stored once each as durable deliveries, missed ticks caught up by `catchUp`, never twice (not
// across restarts, not across two instances on one store), and a removed schedule silent at once.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../core/base/log.ts";
import type { Store } from "../../core/store/types.ts";
import { isOpenDay, parseCalendar } from "../../core/time/calendar.ts";
import { MAX_CATCH_UP_TICKS } from "../../core/time/cron.ts";
import { Scheduler, type ScheduleDefinition, type SchedulerClock } from "../../core/time/scheduler.ts";
import { configSchedules, pluginSchedules, tickRecord } from "../../core/time/schedules.ts";
import { postgresFactory, postgresUnavailable, sqliteFactory, type StoreFactory, type StoreFixture } from "../store/stores.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Timers fire only when the test moves time, each after the scheduler settled the one before. */
class ManualClock implements SchedulerClock {
  private timers: Array<{ at: number; callback: () => void; id: number }> = [];
  private ids = 0;
  constructor(public time: number) {}
  now(): number {
    return this.time;
  }
  setTimer(callback: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.time + ms, callback, id });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  get pending(): number {
    return this.timers.length;
  }
  /** Moves to `target`, firing each timer due on the way at its own time. */
  async advanceTo(target: number, schedulers: Scheduler[]): Promise<void> {
    for (let guard = 0; guard < 100_000; guard++) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > target) break;
      this.timers.shift();
      this.time = Math.max(this.time, next.at);
      next.callback();
      await Promise.all(schedulers.map((s) => s.settled()));
    }
    this.time = target;
  }
}

const postgresDown = await postgresUnavailable();
const factories: StoreFactory[] = postgresDown ? [sqliteFactory] : [sqliteFactory, postgresFactory];
if (postgresDown) describe.skip(`postgres scheduler matrix skipped: ${postgresDown}`, () => it("needs PostgreSQL", () => undefined));

const plugin = (cron: string, options: { tz?: string; catchUp?: string } = {}) => pluginSchedules([{ plugin: "p", schedules: [{ key: `schedule:${cron}`, cron, ...options }] }]);

describe.each(factories)("$name store: the scheduler", (factory) => {
  let fixture: StoreFixture;
  let store: Store;
  const running: Scheduler[] = [];

  beforeEach(async () => {
    fixture = await factory.create();
    store = fixture.store;
  });
  afterEach(async () => {
    for (const scheduler of running.splice(0)) await scheduler.stop();
    await fixture.dispose();
  });

  function scheduler(clock: ManualClock, definitions: () => readonly ScheduleDefinition[], on: Store = store, isClosed?: (definition: ScheduleDefinition, at: number) => boolean): Scheduler {
    const made = new Scheduler({
      isClosed,
      store: on,
      definitions,
      tickFor: (definition, at) =>
        tickRecord(definition, at, {
          now: () => clock.now(),
          maxAttempts: () => 3,
          emitted: (name, payload) => ({ payload, deliveries: [{ kind: "handler", plugin: "q", target: name, maxAttempts: 2 }] }),
        }),
      logger: createLogger({ level: "silent" }),
      clock,
    });
    running.push(made);
    return made;
  }

  async function ticks(): Promise<string[]> {
    const events = await store.listEvents({ limit: 1000 });
    return events.map((e) => (e.payload as { scheduledAt: string }).scheduledAt).sort();
  }

  it("stores each tick once as an event with a delivery to the schedule's handler", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T12:00:30Z"));
    const s = scheduler(clock, () => plugin("* * * * *"));
    await s.start();
    expect(s.list()[0]).toMatchObject({ id: "plugin:p:schedule:* * * * *", nextTick: "2026-12-01T12:01:00.000Z", lastTick: null, state: "scheduled" });
    await clock.advanceTo(Date.parse("2026-12-01T12:03:30Z"), [s]);
    expect(await ticks()).toEqual(["2026-12-01T12:01:00.000Z", "2026-12-01T12:02:00.000Z", "2026-12-01T12:03:00.000Z"]);
    const [event] = await store.listEvents({ limit: 1 });
    expect(event).toMatchObject({ name: "schedule:* * * * *", source: "schedule", payload: { cron: "* * * * *", tz: "UTC" } });
    const runs = await store.listRuns({ eventId: event!.id });
    expect(runs.map((r) => [r.kind, r.plugin, r.target, r.status, r.maxAttempts])).toEqual([["handler", "p", "schedule:* * * * *", "pending", 3]]);
    expect(s.list()[0]).toMatchObject({ lastTick: "2026-12-01T12:03:00.000Z", nextTick: "2026-12-01T12:04:00.000Z" });
    // One timer for the earliest tick, whatever the number of schedules.
    expect(clock.pending).toBe(1);
  });

  it("reads the cron in its zone: 09:00 in Moscow on weekdays is 06:00 UTC, the weekend skipped", async () => {
    // Friday 2026-12-04, 10:00 Moscow.
    const clock = new ManualClock(Date.parse("2026-12-04T07:00:00Z"));
    const s = scheduler(clock, () => plugin("0 9 * * 1-5", { tz: "Europe/Moscow" }));
    await s.start();
    await clock.advanceTo(Date.parse("2026-12-08T12:00:00Z"), [s]);
    expect(await ticks()).toEqual(["2026-12-07T06:00:00.000Z", "2026-12-08T06:00:00.000Z"]);
  });

  it.each([
    ["one", ["2026-12-01T15:00:00.000Z"]],
    ["none", []],
    ["all", ["2026-12-01T13:00:00.000Z", "2026-12-01T14:00:00.000Z", "2026-12-01T15:00:00.000Z"]],
  ])("catchUp %s: ticks missed while down, at the next start, once", async (catchUp, expected) => {
    const before = new ManualClock(Date.parse("2026-12-01T11:59:00Z"));
    const first = scheduler(before, () => plugin("0 * * * *", { catchUp }));
    await first.start();
    await before.advanceTo(Date.parse("2026-12-01T12:10:00Z"), [first]);
    await first.stop();
    expect(await ticks()).toEqual(["2026-12-01T12:00:00.000Z"]);
    // Down from 12:10 to 15:30: 13:00, 14:00 and 15:00 were missed.
    const after = new ManualClock(Date.parse("2026-12-01T15:30:00Z"));
    const second = scheduler(after, () => plugin("0 * * * *", { catchUp }));
    await second.start();
    expect(await ticks()).toEqual(["2026-12-01T12:00:00.000Z", ...expected]);
    // Started again at the same moment (a crash loop, another instance): nothing more.
    const third = scheduler(new ManualClock(after.now()), () => plugin("0 * * * *", { catchUp }));
    await third.start();
    expect(await ticks()).toEqual(["2026-12-01T12:00:00.000Z", ...expected]);
    // And the next tick comes on time.
    await after.advanceTo(Date.parse("2026-12-01T16:00:00Z"), [second]);
    expect((await ticks()).at(-1)).toBe("2026-12-01T16:00:00.000Z");
  });

  it("bounds catchUp all: a per-second cron down for a day runs its latest ticks only", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T12:00:00.500Z"));
    const s = scheduler(clock, () => plugin("* * * * * *", { catchUp: "all" }));
    await s.start();
    await clock.advanceTo(Date.parse("2026-12-01T12:00:01.500Z"), [s]);
    await s.stop();
    const next = scheduler(new ManualClock(Date.parse("2026-12-02T12:00:00.500Z")), () => plugin("* * * * * *", { catchUp: "all" }));
    await next.start();
    const stored = await ticks();
    expect(stored).toHaveLength(1 + MAX_CATCH_UP_TICKS);
    expect(stored.at(-1)).toBe("2026-12-02T12:00:00.000Z");
  });

  it("two instances on one store store each tick once", async () => {
    const other = await fixture.open();
    const start = Date.parse("2026-12-01T12:00:00.500Z");
    const clockA = new ManualClock(start);
    const clockB = new ManualClock(start);
    const a = scheduler(clockA, () => plugin("* * * * * *"));
    const b = scheduler(clockB, () => plugin("* * * * * *"), other);
    await Promise.all([a.start(), b.start()]);
    for (let second = 1; second <= 10; second++) {
      await Promise.all([clockA.advanceTo(start + second * 1000, [a]), clockB.advanceTo(start + second * 1000, [b])]);
    }
    const stored = await ticks();
    expect(stored).toHaveLength(10);
    expect(new Set(stored).size).toBe(10);
  });

  it("stops a removed schedule at once, and an edited cron is a new schedule that starts from now", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T12:00:30Z"));
    let current = plugin("* * * * *");
    const s = scheduler(clock, () => current);
    await s.start();
    await clock.advanceTo(Date.parse("2026-12-01T12:01:30Z"), [s]);
    current = [];
    await s.refresh();
    expect(s.list()).toEqual([]);
    expect(clock.pending).toBe(0);
    await clock.advanceTo(Date.parse("2026-12-01T12:05:30Z"), [s]);
    expect(await ticks()).toEqual(["2026-12-01T12:01:00.000Z"]);
    current = plugin("*/10 * * * *");
    await s.refresh();
    // Nothing "caught up" for a cron that never ran.
    expect(await ticks()).toEqual(["2026-12-01T12:01:00.000Z"]);
    await clock.advanceTo(Date.parse("2026-12-01T12:10:30Z"), [s]);
    expect(await ticks()).toEqual(["2026-12-01T12:01:00.000Z", "2026-12-01T12:10:00.000Z"]);
  });

  it("skips ticks on a calendar's closed days, caught-up ones included", async () => {
    const office = parseCalendar("office", { tz: "Europe/Moscow", hours: "Mon-Fri 09:00-18:00", holidays: ["2026-12-08"] });
    const definitions = () => plugin("0 10 * * *", { tz: "Europe/Moscow" }).map((d) => ({ ...d, calendar: "office" }));
    // Friday 2026-12-04 08:00 Moscow; through Wednesday 2026-12-09 (the 8th is a holiday).
    const clock = new ManualClock(Date.parse("2026-12-04T05:00:00Z"));
    const s = scheduler(clock, definitions, store, (_d, at) => !isOpenDay(office, at));
    await s.start();
    await clock.advanceTo(Date.parse("2026-12-07T12:00:00Z"), [s]);
    expect(await ticks()).toEqual(["2026-12-04T07:00:00.000Z", "2026-12-07T07:00:00.000Z"]);
    await s.stop();
    // Down over the holiday and Wednesday's tick: the latest missed open-day tick runs once.
    const later = scheduler(new ManualClock(Date.parse("2026-12-09T12:00:00Z")), definitions, store, (_d, at) => !isOpenDay(office, at));
    await later.start();
    expect(await ticks()).toEqual(["2026-12-04T07:00:00.000Z", "2026-12-07T07:00:00.000Z", "2026-12-09T07:00:00.000Z"]);
    expect(later.list()[0]).toMatchObject({ calendar: "office", state: "scheduled" });
  });

  it("a config schedule emits its event with its payload to the event's handlers", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T08:59:00Z"));
    const s = scheduler(clock, () => configSchedules([{ cron: "0 9 * * *", emit: "task.add", payload: { id: 1, autor: 2 } }]));
    await s.start();
    await clock.advanceTo(Date.parse("2026-12-01T09:00:00Z"), [s]);
    const [event] = await store.listEvents({ limit: 10 });
    expect(event).toMatchObject({ name: "task.add", payload: { id: 1, autor: 2 }, source: "schedule" });
    expect((await store.listRuns({ eventId: event!.id })).map((r) => [r.plugin, r.target])).toEqual([["q", "task.add"]]);
    expect(s.list()[0]).toMatchObject({ id: "config:task.add:0 9 * * *@UTC", source: "config", emit: "task.add" });
  });
});
