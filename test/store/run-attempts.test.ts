// Run detail in the store contract, on SQLite and PostgreSQL: an attempt's activity is written
// with its finish and only when the lease held, a repeated (refunded) attempt number replaces
// its row, the attempts go with their event when retention prunes it, and an event's children
// are found by parent.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeliveryResult, NewEvent, RunAttemptRecord, Store } from "../../core/store/types.ts";
import { matrixFactories, type StoreFixture } from "./stores.ts";

const T0 = Date.parse("2026-11-21T10:00:00Z");

const factories = await matrixFactories("half");

describe.each(factories)("run attempts ($name store)", (factory) => {
  let fixture: StoreFixture;
  let store: Store;

  beforeEach(async () => {
    fixture = await factory.create();
    store = fixture.store;
  });
  afterEach(async () => {
    await fixture.dispose();
  });

  const event = (id: string, overrides: Partial<NewEvent> = {}): NewEvent => ({ id, name: "deal.close", payload: { id }, receivedAt: T0, source: "http", depth: 0, ...overrides });
  const attempt = (n: number, status: RunAttemptRecord["status"], msg: string): RunAttemptRecord => ({
    attempt: n,
    startedAt: T0 + n * 1000,
    durationMs: 12.6,
    status,
    code: status === "done" ? null : "HOOKD_RUN_FAILED",
    error: status === "done" ? null : { code: "HOOKD_RUN_FAILED", message: "boom", source: { file: "a.ts", line: 3, lines: [{ line: 3, text: "throw x" }] } },
    activity: { logs: [{ at: T0, level: "info", msg }], fetches: [], emits: [{ at: T0, name: "x", eventId: "child" }], kvWrites: [{ at: T0, op: "set", key: "k", bytes: 3 }], dropped: 0 },
  });
  const claimOne = async (now: number) => (await store.claimDeliveries({ limit: 1, leaseMs: 30_000, now, plugins: ["a"] }))[0]!;
  const finish = (id: number, token: string, result: Omit<DeliveryResult, "durationMs">) => store.finishDelivery(id, token, { durationMs: 12.6, ...result });

  it("writes each attempt with its finish, replaces a repeated attempt, and keeps nothing of a lost lease", async () => {
    await store.acceptEvent(event("ev-1"), [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }]);
    const first = await claimOne(T0);
    expect(await finish(first.id, first.leaseToken, { status: "pending", now: T0 + 10, nextAt: T0 + 10, error: { code: "HOOKD_RUN_FAILED", message: "boom" }, attempt: attempt(1, "failed", "one") })).toBe(true);
    // A finish with a token that no longer owns the delivery stores no attempt.
    expect(await finish(first.id, "stale-token", { status: "done", now: T0 + 11, attempt: attempt(9, "done", "ghost") })).toBe(false);
    const second = await claimOne(T0 + 20);
    // Refunded (the sandbox was down): the same attempt number comes again and replaces the row.
    expect(await finish(second.id, second.leaseToken, { status: "pending", now: T0 + 30, nextAt: T0 + 30, refundAttempt: true, error: { code: "HOOKD_SANDBOX_UNAVAILABLE", message: "down" }, attempt: attempt(2, "failed", "refunded") })).toBe(true);
    const third = await claimOne(T0 + 40);
    expect(third.attempt).toBe(2);
    expect(await finish(third.id, third.leaseToken, { status: "done", now: T0 + 50, attempt: attempt(2, "done", "two") })).toBe(true);

    const attempts = await store.listRunAttempts(first.id);
    expect(attempts.map((a) => [a.attempt, a.status, a.code, a.activity.logs[0]!.msg])).toEqual([
      [1, "failed", "HOOKD_RUN_FAILED", "one"],
      [2, "done", null, "two"],
    ]);
    expect(attempts[0]).toEqual({ ...attempt(1, "failed", "one"), durationMs: 13 });
    expect(await store.getRun(first.id)).toMatchObject({ id: first.id, status: "done", attempts: 2, eventId: "ev-1" });
    expect(await store.getRun(first.id + 1000)).toBeNull();
    expect(await store.listRunAttempts(first.id + 1000)).toEqual([]);
  });

  it("lists an event's children by parent and prunes attempts with their event", async () => {
    await store.acceptEvent(event("root"), [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 1 }]);
    for (const id of ["c1", "c2"]) await store.acceptEvent(event(id, { parentId: "root", depth: 1, source: "emit" }), []);
    await store.acceptEvent(event("other"), []);
    expect((await store.listChildEvents("root", 10)).map((e) => [e.id, e.source, e.parentId])).toEqual([
      ["c1", "emit", "root"],
      ["c2", "emit", "root"],
    ]);
    expect((await store.listChildEvents("root", 1)).map((e) => e.id)).toEqual(["c1"]);

    const run = await claimOne(T0);
    await finish(run.id, run.leaseToken, { status: "done", now: T0 + 5, attempt: attempt(1, "done", "kept") });
    expect(await store.listRunAttempts(run.id)).toHaveLength(1);
    expect(await store.pruneEvents({ doneBefore: T0 + 1, deadBefore: T0 + 1, limit: 100 })).toBeGreaterThanOrEqual(1);
    expect(await store.getEvent("root")).toBeNull();
    expect(await store.listRunAttempts(run.id)).toEqual([]);
  });

  it("counts attempts and failures per plugin and minute, accepted events and dead letters, for the charts", async () => {
    await store.acceptEvent(event("s1"), [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 1 }]);
    await store.acceptEvent(event("s2", { receivedAt: T0 + 60_000 }), [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 1 }]);
    const first = await claimOne(T0);
    await finish(first.id, first.leaseToken, { status: "done", now: T0 + 5, attempt: { ...attempt(1, "done", "x"), startedAt: T0, durationMs: 40 } });
    const second = await claimOne(T0 + 60_000);
    await finish(second.id, second.leaseToken, { status: "dead", now: T0 + 60_010, error: { code: "HOOKD_RUN_FAILED", message: "boom" }, attempt: { ...attempt(1, "failed", "y"), startedAt: T0 + 60_000, durationMs: 90 } });
    const stats = await store.runStats(T0);
    const minute = T0 / 60_000;
    expect(stats.perMinute.sort((x, y) => x.minute - y.minute)).toEqual([
      { plugin: "a", minute, runs: 1, failed: 0 },
      { plugin: "a", minute: minute + 1, runs: 1, failed: 1 },
    ]);
    expect(stats.durations.map((d) => d.durationMs).sort()).toEqual([40, 90]);
    expect(stats.accepted.sort((x, y) => x.minute - y.minute)).toEqual([{ minute, n: 1 }, { minute: minute + 1, n: 1 }]);
    expect(stats.dead).toEqual([{ minute: minute + 1, n: 1 }]);
    expect((await store.runStats(T0 + 120_000)).perMinute).toEqual([]);
  });
});
