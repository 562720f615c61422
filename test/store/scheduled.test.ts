// Delayed events in the store, on SQLite and PostgreSQL alike: deliveries due at the event's
// time (not before, found by the due-time query the dispatcher's timer is set from), listed as
// scheduled while they wait, cancelled only before they start, and never both cancelled and run.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isHookdError } from "../../sandbox/contract/errors.ts";
import type { DeliveryTarget, NewEvent, Store } from "../../core/store/types.ts";
import { matrixFactories, type StoreFixture, useStore } from "./stores.ts";

const T0 = Date.parse("2026-12-01T10:00:00Z");
const HOUR = 3600_000;
const LEASE = 30_000;

const factories = await matrixFactories("scheduled-event matrix");

describe.each(factories)("$name store: delayed events", (factory) => {
  let store: Store;
  let fixture: StoreFixture;
  const { event, handler } = useStore(factory, T0, (opened) => ((fixture = opened), (store = opened.store)));
  const claim = (now: number, on: Store = store) => on.claimDeliveries({ limit: 10, leaseMs: LEASE, now, plugins: ["a", "b"] });

  it("holds a delayed event's deliveries until their time, and says when that is", async () => {
    await store.acceptEvent(event({ deliverAt: T0 + 2 * HOUR }), [handler("a"), handler("b")]);
    await store.acceptEvent(event(), [handler("a")]);
    expect((await claim(T0)).map((d) => d.event.id)).toEqual(["ev-2"]);
    expect(await store.nextDueAt(["a", "b"])).toBe(T0 + 2 * HOUR);
    expect(await claim(T0 + 2 * HOUR - 1)).toEqual([]);
    const due = await claim(T0 + 2 * HOUR);
    expect(due.map((d) => [d.plugin, d.event.id, d.attempt]).sort()).toEqual([
      ["a", "ev-1", 1],
      ["b", "ev-1", 1],
    ]);
    const record = await store.getEvent("ev-1");
    expect(record).toMatchObject({ id: "ev-1", receivedAt: T0, deliverAt: T0 + 2 * HOUR });
    expect((await store.getEvent("ev-2"))!.deliverAt).toBeNull();
    // The list for people shows the due time too.
    const listed = await store.listEvents({ maxPayloadBytes: 1024 });
    expect(listed.find((e) => e.id === "ev-1")!.deliverAt).toBe(T0 + 2 * HOUR);
    const runs = await store.listRuns({ eventId: "ev-1" });
    expect(runs.every((run) => run.createdAt === T0)).toBe(true);
  });

  it("lists the delayed events not due yet, soonest first, and leaves out the due, the cancelled and the immediate", async () => {
    await store.acceptEvent(event({ deliverAt: T0 + 3 * HOUR }), [handler("a")]);
    await store.acceptEvent(event({ deliverAt: T0 + 1 * HOUR }), [handler("a")]);
    await store.acceptEvent(event(), [handler("a")]);
    await store.acceptEvent(event({ deliverAt: T0 + 2 * HOUR }), [handler("a")]);
    await store.acceptEvent(event({ deliverAt: T0 + 4 * HOUR }), [handler("a")]);
    await store.cancelScheduledEvent("ev-5", T0);
    expect((await store.listScheduledEvents({ now: T0 })).map((e) => [e.id, e.deliverAt])).toEqual([
      ["ev-2", T0 + HOUR],
      ["ev-4", T0 + 2 * HOUR],
      ["ev-1", T0 + 3 * HOUR],
    ]);
    expect((await store.listScheduledEvents({ now: T0 + HOUR })).map((e) => e.id)).toEqual(["ev-4", "ev-1"]);
    expect((await store.listScheduledEvents({ now: T0, limit: 1 })).map((e) => e.id)).toEqual(["ev-2"]);
    // A large payload is not read for the list: it is marked with its size instead.
    await store.acceptEvent(event({ id: "big", payload: { pad: "x".repeat(5000) }, deliverAt: T0 + 30 * 60_000 }), [handler("a")]);
    const [big] = await store.listScheduledEvents({ now: T0, limit: 1, maxPayloadBytes: 1024 });
    expect(big).toMatchObject({ id: "big", payload: null, payloadTruncated: { bytes: JSON.stringify({ pad: "x".repeat(5000) }).length } });
  });

  it("cancels what has not started, in one step, and refuses what cannot be cancelled", async () => {
    await store.acceptEvent(event({ deliverAt: T0 + HOUR }), [handler("a"), handler("b")]);
    await store.acceptEvent(event(), [handler("a")]);
    expect(await store.cancelScheduledEvent("ev-1", T0 + 10)).toBe(2);
    const runs = await store.listRuns({ eventId: "ev-1" });
    expect(runs.map((r) => [r.status, r.attempts, r.finishedAt])).toEqual([
      ["cancelled", 0, T0 + 10],
      ["cancelled", 0, T0 + 10],
    ]);
    // Cancelled runs never come due, are no dead letters and are not retried.
    expect(await claim(T0 + 2 * HOUR)).toHaveLength(1);
    expect(await store.countByStatus()).toMatchObject({ cancelled: 2, dead: 0 });
    const refusal = async (id: string) => store.cancelScheduledEvent(id, T0).then(() => "cancelled", (error: unknown) => (isHookdError(error) ? error.code : String(error)));
    expect(await refusal("ev-1")).toBe("HOOKD_EVENT_NOT_SCHEDULED");
    expect(await refusal("ev-2")).toBe("HOOKD_EVENT_NOT_SCHEDULED");
    expect(await refusal("no-such-event")).toBe("HOOKD_EVENT_NOT_FOUND");
    expect(await store.retryDelivery(runs[0]!.id, T0).then(() => "retried", (error: unknown) => (isHookdError(error) ? error.code : String(error)))).toBe("HOOKD_RUN_NOT_RETRIABLE");
  });

  it("cancels nothing of an event whose run started, and leaves the started run alone", async () => {
    await store.acceptEvent(event({ deliverAt: T0 + HOUR }), [handler("a")]);
    const [running] = await claim(T0 + HOUR);
    const code = await store.cancelScheduledEvent("ev-1", T0 + HOUR).then(() => "cancelled", (error: unknown) => (isHookdError(error) ? error.code : String(error)));
    expect(code).toBe("HOOKD_EVENT_NOT_SCHEDULED");
    expect(await store.finishDelivery(running!.id, running!.leaseToken, { status: "done", now: T0 + HOUR, durationMs: 1 })).toBe(true);
  });

  it("a delivery is either claimed or cancelled, never both, when the two race (two instances on one store)", async () => {
    const other = await fixture.open();
    for (let round = 0; round < 10; round++) {
      const id = `race-${round}`;
      await store.acceptEvent(event({ id, deliverAt: T0 + HOUR }), [handler("a")]);
      const [claimed, cancelled] = await Promise.all([claim(T0 + HOUR, other), store.cancelScheduledEvent(id, T0 + HOUR).catch(() => 0)]);
      expect(claimed.length + cancelled, `round ${round}`).toBe(1);
      const [run] = await store.listRuns({ eventId: id });
      expect(run!.status).toBe(claimed.length === 1 ? "running" : "cancelled");
    }
  });

  it("counts a delayed delivery's wait from its time: the queue's age ignores what is not due", async () => {
    await store.acceptEvent(event({ receivedAt: T0, deliverAt: T0 + 48 * HOUR }), [handler("a")]);
    expect(await store.oldestPendingAt()).toBe(T0 + 48 * HOUR);
    await store.acceptEvent(event({ receivedAt: T0 + 5 }), [handler("a")]);
    expect(await store.oldestPendingAt()).toBe(T0 + 5);
  });

  it("survives reopening: a delayed event is stored at once and due after a restart", async () => {
    await store.acceptEvent(event({ deliverAt: T0 + HOUR }), [handler("a")]);
    const reopened = await fixture.open();
    expect(await reopened.nextDueAt(["a"])).toBe(T0 + HOUR);
    expect((await claim(T0 + HOUR, reopened)).map((d) => d.event.id)).toEqual(["ev-1"]);
  });
});
