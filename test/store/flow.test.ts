// Flow control in the store, on SQLite and PostgreSQL alike, on a clock the tests set (every
// claim and accept takes its `now`): concurrency per scope, throttle (nothing dropped, each
// waiting delivery given its turn), rate limit (the rest skipped and recorded), debounce (a
// burst runs once, with its last event), each holding for a second instance on the same data.
import { describe, expect, it } from "vitest";
import type { ClaimedDelivery, DeliveryFlow, Store } from "../../core/store/types.ts";
import { matrixFactories, type StoreFixture, useStore } from "./stores.ts";

const T0 = Date.parse("2026-12-01T10:00:00Z");
const LEASE = 30_000;
const MINUTE = 60_000;

const factories = await matrixFactories("flow-control matrix");

describe.each(factories)("$name store: flow control", (factory) => {
  let store: Store;
  let fixture: StoreFixture;
  const { event, handler } = useStore(factory, T0, (opened) => ((fixture = opened), (store = opened.store)));
  const claim = (now: number, on: Store = store, limit = 50) =>
    on.claimDeliveries({ limit, leaseMs: LEASE, now, plugins: ["a", "b"], flowControlled: true });
  const finish = (d: ClaimedDelivery, now: number, on: Store = store) => on.finishDelivery(d.id, d.leaseToken, { status: "done", now, durationMs: 1 });
  const accept = (flow: DeliveryFlow, overrides: Parameters<typeof event>[0] = {}, plugin = "a") =>
    store.acceptEvent(event(overrides), [handler(plugin, { flow })]);
  const dids = (claimed: readonly ClaimedDelivery[]) => claimed.map((d) => (d.event.payload as { did: number }).did).sort((x, y) => x - y);

  it("runs at most `limit` deliveries of a concurrency scope at once, and the next one as a slot frees", async () => {
    for (let i = 0; i < 4; i++) await accept({ concurrency: { scope: "deal.close=7", limit: 2 } });
    await accept({ concurrency: { scope: "deal.close=8", limit: 2 } });
    const first = await claim(T0);
    expect(dids(first)).toEqual([1, 2, 5]);
    expect(await claim(T0 + 1)).toEqual([]);
    // Shown as waiting on the scope, and the other plugin's runs are untouched by it.
    const waiting = await store.listRuns({ status: "pending" });
    expect(waiting.map((run) => run.waiting)).toEqual(["concurrency", "concurrency"]);
    await finish(first[0]!, T0 + 2);
    const next = await claim(T0 + 3);
    expect(dids(next)).toEqual([3]);
    expect((await store.getRun(next[0]!.id))!.waiting).toBeUndefined();
  });

  it("holds a concurrency scope for a second instance claiming beside the first", async () => {
    const other = await fixture.open();
    for (let i = 0; i < 6; i++) await accept({ concurrency: { scope: "deal.close", limit: 1 } });
    const [mine, theirs] = await Promise.all([claim(T0), claim(T0, other)]);
    expect(mine.length + theirs.length).toBe(1);
    const held = mine[0] ?? theirs[0]!;
    expect(await claim(T0 + 1, other)).toEqual([]);
    await finish(held, T0 + 2);
    expect((await claim(T0 + 3, other)).length).toBe(1);
  });

  it("throttles: `limit` starts per period, the rest each given its turn in order, none dropped", async () => {
    for (let i = 0; i < 7; i++) await accept({ throttle: { scope: "deal.close", limit: 2, periodMs: MINUTE } });
    const first = await claim(T0);
    expect(dids(first)).toEqual([1, 2]);
    const waiting = await store.listRuns({ status: "pending" });
    expect(waiting.every((run) => run.waiting === "throttled")).toBe(true);
    // Two per minute: 3 and 4 at T0+1m, 5 and 6 at T0+2m, 7 at T0+3m.
    expect(waiting.map((run) => run.nextAt).sort((x, y) => x - y)).toEqual([T0 + MINUTE, T0 + MINUTE, T0 + 2 * MINUTE, T0 + 2 * MINUTE, T0 + 3 * MINUTE]);
    expect(await claim(T0 + MINUTE - 1)).toEqual([]);
    expect(await store.nextDueAt(["a"])).toBe(T0 + MINUTE);
    expect(dids(await claim(T0 + MINUTE))).toEqual([3, 4]);
    // 5 and 6 start late, at 3m: 7's turn (3m) would make three starts in a minute, so it waits.
    expect(dids(await claim(T0 + 3 * MINUTE))).toEqual([5, 6]);
    expect(dids(await claim(T0 + 4 * MINUTE))).toEqual([7]);
    expect((await store.countByStatus()).skipped).toBe(0);
  });

  it("throttles per key, and a retry does not count against the throttle again", async () => {
    await accept({ throttle: { scope: "deal.close=1", limit: 1, periodMs: MINUTE } });
    await accept({ throttle: { scope: "deal.close=2", limit: 1, periodMs: MINUTE } });
    await accept({ throttle: { scope: "deal.close=1", limit: 1, periodMs: MINUTE } });
    const first = await claim(T0);
    expect(dids(first)).toEqual([1, 2]);
    const one = first.find((d) => (d.event.payload as { did: number }).did === 1)!;
    await store.finishDelivery(one.id, one.leaseToken, { status: "pending", nextAt: T0 + 1000, now: T0 + 10, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "x" } });
    // The retry runs at its backoff, not a minute later; the third event waits its turn.
    expect(dids(await claim(T0 + 1000))).toEqual([1]);
    expect(dids(await claim(T0 + MINUTE))).toEqual([3]);
  });

  it("rate limits: `limit` runs per period, the rest skipped and recorded, the window sliding on", async () => {
    for (let i = 0; i < 5; i++) await accept({ rateLimit: { scope: "deal.close=9", limit: 2, periodMs: MINUTE } });
    expect(dids(await claim(T0))).toEqual([1, 2]);
    const counts = await store.countByStatus();
    expect(counts).toMatchObject({ running: 2, skipped: 3, pending: 0 });
    const skipped = await store.listRuns({ status: "skipped" });
    expect(skipped.map((run) => run.lastError?.code)).toEqual(["HOOKD_FLOW_RATE_LIMITED", "HOOKD_FLOW_RATE_LIMITED", "HOOKD_FLOW_RATE_LIMITED"]);
    expect(skipped[0]!.finishedAt).toBe(T0);
    // A minute on, the window has room again.
    await accept({ rateLimit: { scope: "deal.close=9", limit: 2, periodMs: MINUTE } }, { receivedAt: T0 + MINUTE });
    expect(dids(await claim(T0 + MINUTE + 1))).toEqual([6]);
  });

  it("debounces: a burst keeps only its last event, due a period after it; another key is apart", async () => {
    const debounce = (key: string) => ({ debounce: { scope: `deal.close=${key}`, periodMs: 10_000 } });
    await accept(debounce("x"), { receivedAt: T0 });
    await accept(debounce("x"), { receivedAt: T0 + 3000 });
    await accept(debounce("y"), { receivedAt: T0 + 4000 });
    await accept(debounce("x"), { receivedAt: T0 + 6000 });
    expect(await claim(T0 + 12_000)).toEqual([]);
    const pending = await store.listRuns({ status: "pending" });
    expect(pending.map((run) => [run.eventId, run.waiting, run.nextAt])).toEqual([
      ["ev-4", "debounced", T0 + 16_000],
      ["ev-3", "debounced", T0 + 14_000],
    ]);
    const skipped = await store.listRuns({ status: "skipped" });
    expect(skipped.map((run) => [run.eventId, run.lastError?.code])).toEqual([
      ["ev-2", "HOOKD_FLOW_DEBOUNCED"],
      ["ev-1", "HOOKD_FLOW_DEBOUNCED"],
    ]);
    expect(skipped[0]!.lastError!.message).toContain("ev-4");
    expect((await claim(T0 + 14_000)).map((d) => d.event.id)).toEqual(["ev-3"]);
    expect((await claim(T0 + 16_000)).map((d) => d.event.id)).toEqual(["ev-4"]);
  });

  it("debounces only what has not started: a running delivery finishes, the new one still comes", async () => {
    const flow = { debounce: { scope: "deal.close", periodMs: 1000 } };
    await accept(flow, { receivedAt: T0 });
    const [running] = await claim(T0 + 1000);
    expect(running?.event.id).toBe("ev-1");
    await accept(flow, { receivedAt: T0 + 1500 });
    expect((await store.getRun(running!.id))!.status).toBe("running");
    expect((await claim(T0 + 2500)).map((d) => d.event.id)).toEqual(["ev-2"]);
  });

  it("does not let a repeated idempotency key debounce the event it repeats", async () => {
    const flow = { debounce: { scope: "deal.close", periodMs: 1000 } };
    await accept(flow, { idempotencyKey: "k-1", bodyHash: "h" });
    const again = await store.acceptEvent({ ...event({ idempotencyKey: "k-1", bodyHash: "h" }) }, [handler("a", { flow })]);
    expect(again.kind).toBe("duplicate");
    expect((await store.countByStatus()).skipped).toBe(0);
    expect((await claim(T0 + 1000)).map((d) => d.event.id)).toEqual(["ev-1"]);
  });

  it("keeps its throttle windows across a restart and for a second instance", async () => {
    const flow = { throttle: { scope: "deal.close", limit: 1, periodMs: MINUTE } };
    await accept(flow);
    expect((await claim(T0)).length).toBe(1);
    const other = await fixture.open();
    await accept(flow, { receivedAt: T0 + 1000 });
    // The second instance sees the first one's start: the new delivery waits a whole period.
    expect(await claim(T0 + 1000, other)).toEqual([]);
    expect((await other.listRuns({ status: "pending" }))[0]).toMatchObject({ waiting: "throttled", nextAt: T0 + MINUTE });
    expect((await claim(T0 + MINUTE, other)).length).toBe(1);
  });

  it("checks a throttle turn taken late against the starts that happened, so a backlog after a pause does not run at once", async () => {
    for (let i = 0; i < 6; i++) await accept({ throttle: { scope: "deal.close", limit: 1, periodMs: MINUTE } });
    expect(dids(await claim(T0))).toEqual([1]);
    // Nothing claimed for ten minutes (a restart, a full dispatcher): every booked turn has passed.
    expect(dids(await claim(T0 + 10 * MINUTE))).toEqual([2]);
    expect(await claim(T0 + 10 * MINUTE + 1000)).toEqual([]);
    expect(dids(await claim(T0 + 11 * MINUTE))).toEqual([3]);
  });

  it("gives each fair share at most its limit of flow-controlled deliveries", async () => {
    for (let i = 0; i < 3; i++) await accept({ concurrency: { scope: `deal.close=${i}`, limit: 1 } }, {}, "a");
    for (let i = 0; i < 3; i++) await accept({ concurrency: { scope: `deal.close=${i}`, limit: 1 } }, {}, "b");
    const claimed = await store.claimDeliveries({
      limit: 2,
      leaseMs: LEASE,
      now: T0,
      plugins: ["a", "b"],
      flowControlled: true,
      shares: [
        { plugins: ["a"], limit: 1 },
        { plugins: ["b"], limit: 1 },
      ],
    });
    expect(claimed.map((d) => d.plugin).sort()).toEqual(["a", "b"]);
  });

  it("leaves delayed events and replays out of a debounce: neither skips a burst nor is skipped by it", async () => {
    const flow = { debounce: { scope: "deal.close", periodMs: 1000 } };
    await accept(flow, { deliverAt: T0 + 3600_000 });
    await accept(flow);
    await store.addDeliveries([{ eventId: "ev-1", targets: [handler("a", { flow })] }], T0 + 10);
    expect((await store.countByStatus()).skipped).toBe(0);
    expect((await claim(T0 + 1000)).map((d) => d.event.id).sort()).toEqual(["ev-1", "ev-2"]);
  });

  it("keeps a throttle's booked turns through a prune until they are a period past", async () => {
    const DAY = 24 * 3600_000;
    const flow = { throttle: { scope: "deal.close", limit: 1, periodMs: DAY } };
    for (let i = 0; i < 3; i++) await accept(flow);
    expect((await claim(T0)).length).toBe(1);
    await store.pruneEvents({ doneBefore: 0, deadBefore: 0, limit: 10, now: T0 + 1.5 * DAY });
    await accept(flow, { receivedAt: T0 + 1.5 * DAY });
    // ev-2's turn (a day in) has come; ev-4 is booked after ev-3's, not at once.
    expect((await claim(T0 + 1.5 * DAY)).map((d) => d.event.id)).toEqual(["ev-2"]);
    expect((await store.listRuns({ eventId: "ev-4" }))[0]).toMatchObject({ waiting: "throttled", nextAt: T0 + 3 * DAY });
  });

  it("holds a rate limit and a debounce between two instances working at once", async () => {
    const other = await fixture.open();
    const limited = { rateLimit: { scope: "deal.close", limit: 3, periodMs: MINUTE } };
    for (let i = 0; i < 10; i++) await accept(limited);
    const [mine, theirs] = await Promise.all([claim(T0), claim(T0, other)]);
    expect(mine.length + theirs.length).toBe(3);
    expect((await store.countByStatus()).skipped).toBe(7);
    // Eight edits of one deal accepted by both instances at once: one of them is left to run.
    const debounced = { debounce: { scope: "deal.close=x", periodMs: 1000 } };
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? store : other).acceptEvent(event(), [handler("b", { flow: debounced })])),
    );
    const left = (await store.listRuns({ plugin: "b" })).filter((run) => run.status === "pending");
    expect(left).toHaveLength(1);
    expect((await store.listRuns({ plugin: "b", status: "skipped" })).length).toBe(7);
  });

  it("leaves deliveries without rules as they were, beside flow-controlled ones of the same plugin", async () => {
    for (let i = 0; i < 3; i++) await accept({ concurrency: { scope: "deal.close", limit: 1 } });
    await store.acceptEvent(event(), [handler("a")]);
    await store.acceptEvent(event(), [handler("b")]);
    expect(dids(await claim(T0))).toEqual([1, 4, 5]);
  });
});
