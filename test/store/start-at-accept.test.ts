// Deliveries started in the accepting transaction (core/delivery/start-at-accept.ts), on SQLite and
// PostgreSQL alike: stored running under the lease they were given, their first attempt counted,
// fenced by that lease as a claimed delivery is; stored pending instead when the plugin has ready
// deliveries waiting (they go first) or a rule holds the delivery back.
import { describe, expect, it } from "vitest";
import type { DeliveryTarget, Store } from "../../core/store/types.ts";
import { matrixFactories, type StoreFixture, useStore } from "./stores.ts";

const T0 = Date.parse("2026-12-01T10:00:00Z");
const LEASE = 30_000;

const factories = await matrixFactories("start-at-accept matrix");

describe.each(factories)("$name store: deliveries started at accept", (factory) => {
  let store: Store;
  let fixture: StoreFixture;
  const { event, handler } = useStore(factory, T0, (opened) => ((fixture = opened), (store = opened.store)));
  let tokens = 0;
  const leased = (plugin: string, overrides: Partial<DeliveryTarget> = {}): DeliveryTarget =>
    handler(plugin, { lease: { token: `lease-${++tokens}`, until: T0 + LEASE }, ...overrides });
  const claim = (now: number, on: Store = store) => on.claimDeliveries({ limit: 50, leaseMs: LEASE, now, plugins: ["a", "b"] });

  it("stores a leased delivery running, attempt 1, and finishes it only with its lease", async () => {
    const outcome = await store.acceptEvent(event(), [leased("a"), handler("b")]);
    expect(outcome.kind).toBe("stored");
    const started = outcome.kind === "stored" ? outcome.started : undefined;
    expect(started).toHaveLength(1);
    expect(started![0]!.index).toBe(0);
    const run = await store.getRun(started![0]!.id);
    expect(run).toMatchObject({ plugin: "a", status: "running", attempts: 1 });
    // Not claimable again; the other plugin's delivery is.
    const claimed = await claim(T0 + 1);
    expect(claimed.map((d) => d.plugin)).toEqual(["b"]);
    expect(await store.finishDelivery(started![0]!.id, "someone-else", { status: "done", now: T0 + 2, durationMs: 1 })).toBe(false);
    expect(await store.finishDelivery(started![0]!.id, "lease-1", { status: "done", now: T0 + 2, durationMs: 1 })).toBe(true);
    expect(await store.getRun(started![0]!.id)).toMatchObject({ status: "done", attempts: 1 });
  });

  // PostgreSQL leaves this to the dispatcher, which gives no lease while deliveries may wait (see dispatcher.test.ts).
  if (factory.name === "sqlite")
    it("stores it pending when the plugin has ready deliveries waiting: the older one is claimed first", async () => {
    await store.acceptEvent(event({ payload: { did: 1 } }), [handler("a")]);
    const outcome = await store.acceptEvent(event({ payload: { did: 2 } }), [leased("a")]);
    expect(outcome.kind === "stored" && outcome.started).toBeFalsy();
    const first = await claim(T0 + 1);
    expect(first.map((d) => (d.event.payload as { did: number }).did)).toEqual([1, 2]);
    // A retry in backoff is not waiting yet: it does not hold a new event back.
    await store.finishDelivery(first[0]!.id, first[0]!.leaseToken, { status: "pending", now: T0 + 2, durationMs: 1, nextAt: T0 + 60_000, error: { code: "HOOKD_RUN_FAILED", message: "x" } });
    await store.finishDelivery(first[1]!.id, first[1]!.leaseToken, { status: "done", now: T0 + 2, durationMs: 1 });
    const later = await store.acceptEvent(event({ payload: { did: 3 }, receivedAt: T0 + 3 }), [leased("a")]);
    expect(later.kind === "stored" && later.started).toHaveLength(1);
  });

  if (factory.name === "sqlite")
    it("within one commit too: a delivery that became pending earlier in the commit holds the next leased one back", async () => {
      // The writer reads each plugin's earliest pending delivery once per commit; what the
      // commit itself adds or moves back to pending must count all the same.
      await store.acceptEvent(event({ payload: { did: 0 } }), [handler("a")]);
      const [running] = await claim(T0);
      // In this order, in one commit: b stored pending after b's front was read, a's running
      // delivery back to pending, then a leased delivery of each behind them.
      const sameCommit = await Promise.all([
        store.acceptEvent(event({ payload: { did: 1 }, receivedAt: T0 + 1 }), [leased("a"), leased("b")]),
        store.acceptEvent(event({ payload: { did: 2 }, receivedAt: T0 + 1 }), [handler("b")]),
        store.acceptEvent(event({ payload: { did: 3 }, receivedAt: T0 + 1 }), [leased("b")]),
        store.finishDelivery(running!.id, running!.leaseToken, { status: "pending", now: T0 + 1, durationMs: 1, nextAt: T0 + 1, refundAttempt: true, error: { code: "HOOKD_SANDBOX_UNAVAILABLE", message: "x" } }),
        store.acceptEvent(event({ payload: { did: 4 }, receivedAt: T0 + 2 }), [leased("a")]),
      ]);
      // All five in one commit (the writes of one turn go together).
      expect((store as unknown as { lastCommit?: { writes: number } }).lastCommit?.writes).toBe(5);
      const started = (outcome: unknown) => ((outcome as { started?: unknown[] }).started ?? []).length;
      expect(sameCommit.map(started)).toEqual([2, 0, 0, 0, 0]);
      expect(sameCommit[3]).toBe(true);
      // What waits is claimed oldest first, the ones held back after it.
      const next = await claim(T0 + 3);
      expect(next.map((d) => `${d.plugin}${(d.event.payload as { did: number }).did}`)).toEqual(["a0", "b2", "b3", "a4"]);
    });

  it("never starts a delivery a rule holds back: an order key, flow control, a delayed event", async () => {
    const held = [
      await store.acceptEvent(event(), [leased("a", { orderKey: "deal-1" })]),
      await store.acceptEvent(event(), [leased("b", { flow: { concurrency: { scope: "deal.close=1", limit: 1 } } })]),
      await store.acceptEvent(event({ deliverAt: T0 + 60_000 }), [leased("a")]),
    ];
    for (const outcome of held) expect(outcome.kind === "stored" && outcome.started).toBeFalsy();
    expect((await store.countByStatus()).running).toBe(0);
    expect((await store.countByStatus()).pending).toBe(3);
  });

  it("runs a started delivery again when its lease expires (a crash between accept and finish)", async () => {
    const outcome = await store.acceptEvent(event(), [leased("a")]);
    const id = outcome.kind === "stored" ? outcome.started![0]!.id : -1;
    expect(await store.releaseExpiredLeases(T0 + LEASE + 1)).toBe(1);
    const again = await claim(T0 + LEASE + 2);
    expect(again.map((d) => ({ id: d.id, attempt: d.attempt }))).toEqual([{ id, attempt: 2 }]);
  });

  it("holds for a second instance: a delivery started by one is not claimed by the other", async () => {
    const other = await fixture.open();
    await store.acceptEvent(event(), [leased("a")]);
    expect(await claim(T0 + 1, other)).toEqual([]);
    // And the second instance's own leased accept sees nothing waiting either.
    const second = await other.acceptEvent(event(), [leased("a")]);
    expect(second.kind === "stored" && second.started).toHaveLength(1);
  });

  it("starts nothing for a repeated idempotency key", async () => {
    const first = await store.acceptEvent(event({ idempotencyKey: "k-1" }), [leased("a")]);
    const repeat = await store.acceptEvent({ ...event({ idempotencyKey: "k-1" }), id: "ev-other" }, [leased("a")]);
    expect(first.kind === "stored" && first.started).toHaveLength(1);
    expect(repeat.kind).toBe("duplicate");
    expect((await store.countByStatus()).running).toBe(1);
  });
  // An event with one delivery must be stored as one with several (on PostgreSQL both go in the
  // accepts' batch statement here; postgres.test.ts compares that with the statements for one event).
  it("stores an event with one delivery as it stores one with several: the same columns, started or not", async () => {
    const shape = (n: number) =>
      event({ payload: { deal: 7 }, idempotencyKey: `key-${n}`, bodyHash: "hash", sourceUser: "operator", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", source: "oktell" });
    const targets = (lease: boolean): DeliveryTarget[] => [
      { kind: "action", plugin: "a", target: "crm.note", input: { text: "hi", n: 1 }, maxAttempts: 5, ...(lease ? { lease: { token: `lease-${++tokens}`, until: T0 + LEASE } } : {}) },
    ];
    // Started ones first: on SQLite a pending delivery of "a" would keep the next one from starting.
    const startedOnes = [await store.acceptEvent(shape(1), targets(true)), await store.acceptEvent(shape(3), [...targets(true), handler("b")])];
    const pendingOnes = [await store.acceptEvent(shape(2), targets(false)), await store.acceptEvent(shape(4), [...targets(false), handler("b")])];
    const alone = [startedOnes[0], pendingOnes[0]];
    const beside = [startedOnes[1], pendingOnes[1]];
    const runOf = async (outcome: Awaited<ReturnType<Store["acceptEvent"]>>) => {
      expect(outcome.kind).toBe("stored");
      const id = outcome.kind === "stored" ? outcome.id : "";
      const runs = await store.listRuns({ eventId: id, limit: 10 });
      const run = runs.find((r) => r.plugin === "a")!;
      const { id: _run, eventId: _event, leaseToken: _token, ...rest } = run as typeof run & { leaseToken?: unknown };
      const record = await store.getEvent(id);
      const { id: _id, seq: _seq, ...stored } = record!;
      return { started: outcome.kind === "stored" ? (outcome.started ?? []).map((s) => s.index) : null, run: rest, event: stored, traceparent: await store.eventTraceparent(id) };
    };
    const [startedAlone, pendingAlone, startedBeside, pendingBeside] = [await runOf(alone[0]!), await runOf(alone[1]!), await runOf(beside[0]!), await runOf(beside[1]!)];
    expect(startedAlone).toEqual(startedBeside);
    expect(pendingAlone).toEqual(pendingBeside);
    expect(startedAlone.run).toMatchObject({ status: "running", attempts: 1, kind: "action", target: "crm.note" });
    expect(pendingAlone.run).toMatchObject({ status: "pending", attempts: 0 });
    expect(startedAlone.event).toMatchObject({ source: "oktell", payload: { deal: 7 }, origin: { user: "operator" } });
    expect(startedAlone.traceparent).toMatch(/^00-0af7/);
    // A repeat of the key under the one-delivery statement starts nothing and stores nothing.
    expect(await store.acceptEvent(shape(1), targets(true))).toMatchObject({ kind: "duplicate" });
    expect((await store.listRuns({ plugin: "a", limit: 10 })).length).toBe(4);
  });
});
