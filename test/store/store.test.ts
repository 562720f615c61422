// The store contract (core/store/types.ts), run against every store: the same tests, SQLite and
// PostgreSQL. The clock is passed in by hand. SQLite-only behaviour (group commit, fsync levels,
// writer threads, schema upgrades) is in test/store/sqlite.test.ts and sqlite-writer-thread.test.ts.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeliveryTarget, NewEvent, Store } from "../../core/store/types.ts";
import { matrixFactories, type StoreFixture, useStore } from "./stores.ts";

const T0 = Date.parse("2026-11-21T10:00:00Z");
const LEASE = 30_000;

const factories = await matrixFactories("store matrix");

describe.each(factories)("$name store", (factory) => {
  let store: Store;
  let fixture: StoreFixture;
  const { event, handler } = useStore(factory, T0, (opened) => ((fixture = opened), (store = opened.store)));
  const keyed = (plugin: string, key: string, target = "deal.close") => handler(plugin, { orderKey: key, target });
  const claim = (now: number, plugins: string[] = ["a", "b"], limit = 10, on: Store = store) => on.claimDeliveries({ limit, leaseMs: LEASE, now, plugins });
  const byPlugin = <T extends { plugin: string }>(items: T[]) => Object.fromEntries(items.map((i) => [i.plugin, i]));

  describe("accepting events", () => {
    it("stores an event with one delivery per handler, input and order key included", async () => {
      const outcome = await store.acceptEvent(event({ parentId: "ev-0", depth: 1 }), [handler("a"), { kind: "route", plugin: "b", target: "notify", input: { x: 1 }, maxAttempts: 2, orderKey: "k" }]);
      expect(outcome).toEqual({ kind: "stored", id: "ev-1", deliveries: 2 });
      const runs = await store.listRuns({ eventId: "ev-1" });
      expect(runs.map((r) => [r.plugin, r.kind, r.status, r.attempts, r.maxAttempts, r.orderKey])).toEqual([
        ["b", "route", "pending", 0, 2, "k"],
        ["a", "handler", "pending", 0, 3, null],
      ]);
      expect(await store.getEvent("ev-1")).toMatchObject({ id: "ev-1", name: "deal.close", payload: { did: 1 }, receivedAt: T0, source: "http", parentId: "ev-0", depth: 1 });
      const claimed = byPlugin(await claim(T0));
      expect(claimed.b).toMatchObject({ kind: "route", input: { x: 1 }, event: { id: "ev-1", name: "deal.close", payload: { did: 1 }, receivedAt: T0, depth: 1 } });
      expect(claimed.a!.input).toBeUndefined();
    });

    it("returns the first id for a repeated idempotency key and reports a different body as a conflict", async () => {
      const first = await store.acceptEvent(event({ idempotencyKey: "crm-1", bodyHash: "h1" }), [handler("a")]);
      const repeat = await store.acceptEvent(event({ idempotencyKey: "crm-1", bodyHash: "h1" }), [handler("a")]);
      const different = await store.acceptEvent(event({ idempotencyKey: "crm-1", bodyHash: "h2" }), [handler("a")]);
      expect(repeat).toEqual({ kind: "duplicate", id: first.id });
      expect(different).toEqual({ kind: "conflict", id: first.id });
      expect(await store.countByStatus()).toMatchObject({ pending: 1 });
    });

    it("stores one event when repeats of a key arrive at the same time", async () => {
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => store.acceptEvent(event({ idempotencyKey: "same", bodyHash: "h" }), [handler("a")])));
      expect(outcomes.filter((o) => o.kind === "stored")).toHaveLength(1);
      expect(new Set(outcomes.map((o) => o.id)).size).toBe(1);
      expect(await store.countEvents({})).toBe(1);
      expect(await store.countByStatus()).toMatchObject({ pending: 1 });
    });

    it("rejects an event whose id is taken and stores nothing of it, while concurrent events are stored", async () => {
      const writes = Array.from({ length: 30 }, (_, i) => store.acceptEvent(event(i === 7 ? { id: "ev-dup" } : {}), [handler("a")]));
      const failing = store.acceptEvent(event({ id: "ev-dup" }), [handler("a"), handler("b")]);
      const results = await Promise.allSettled([...writes, failing]);
      expect(results.filter((r) => r.status === "rejected")).toHaveLength(1);
      expect(await store.countEvents({})).toBe(30);
      expect(await store.countByStatus()).toMatchObject({ pending: 30 });
    });
  });

  describe("claims and leases", () => {
    it("writes the attempt and the lease when claiming, so a claimed delivery is not claimed twice", async () => {
      await store.acceptEvent(event(), [handler("a")]);
      const [first] = await claim(T0);
      expect(first).toMatchObject({ attempt: 1, maxAttempts: 3, plugin: "a", suspect: false, event: { id: "ev-1", payload: { did: 1 } } });
      expect(first!.leaseToken).toMatch(/^[0-9a-f-]{36}$/);
      expect(await claim(T0 + 1000)).toEqual([]);
      expect((await store.listRuns({ eventId: "ev-1" }))[0]).toMatchObject({ status: "running", attempts: 1 });
      expect(await store.countByStatus()).toEqual({ pending: 0, running: 1, done: 0, dead: 0, cancelled: 0, discarded: 0, skipped: 0 });
    });

    it("claims only deliveries of the given plugins, only when due, and at most the limit", async () => {
      await store.acceptEvent(event({ receivedAt: T0 + 5000 }), [handler("a"), handler("c")]);
      expect(await store.nextDueAt(["a"])).toBe(T0 + 5000);
      expect(await store.nextDueAt(["x"])).toBeNull();
      expect(await claim(T0)).toEqual([]);
      expect((await claim(T0 + 5000)).map((d) => d.plugin)).toEqual(["a"]);
      for (let i = 0; i < 3; i++) await store.acceptEvent(event(), [handler("b")]);
      expect(await claim(T0 + 5000, ["b"], 2)).toHaveLength(2);
    });

    it("lets another claim take over a delivery whose lease expired", async () => {
      await store.acceptEvent(event(), [handler("a")]);
      const [first] = await claim(T0);
      expect(await store.releaseExpiredLeases(T0 + LEASE - 1)).toBe(0);
      expect(await store.releaseExpiredLeases(T0 + LEASE + 1)).toBe(1);
      const [second] = await claim(T0 + LEASE + 2);
      expect(second).toMatchObject({ id: first!.id, attempt: 2 });
      expect(second!.leaseToken).not.toBe(first!.leaseToken);
    });

    it("keeps a renewed lease past its first expiry", async () => {
      await store.acceptEvent(event(), [handler("a")]);
      const [run] = await claim(T0);
      expect(await store.renewLease(run!.id, run!.leaseToken, T0 + 2 * LEASE)).toBe(true);
      expect(await store.releaseExpiredLeases(T0 + LEASE + 1)).toBe(0);
      expect(await store.renewLease(run!.id, "not-the-token", T0 + 3 * LEASE)).toBe(false);
    });

    it("discards the outcome of a run whose lease was lost, and keeps the newer attempt's", async () => {
      await store.acceptEvent(event(), [handler("a")]);
      const [stale] = await claim(T0);
      await store.releaseExpiredLeases(T0 + LEASE + 1);
      const [fresh] = await claim(T0 + LEASE + 2);
      expect(await store.finishDelivery(stale!.id, stale!.leaseToken, { status: "done", now: T0 + LEASE + 3, durationMs: 5 })).toBe(false);
      expect(await store.renewLease(stale!.id, stale!.leaseToken, T0 + 10 * LEASE)).toBe(false);
      expect((await store.listRuns({ eventId: "ev-1" }))[0]).toMatchObject({ status: "running", attempts: 2 });
      expect(await store.finishDelivery(fresh!.id, fresh!.leaseToken, { status: "done", now: T0 + LEASE + 4, durationMs: 5 })).toBe(true);
      expect((await store.listRuns({ eventId: "ev-1" }))[0]).toMatchObject({ status: "done", attempts: 2, finishedAt: T0 + LEASE + 4, durationMs: 5 });
    });

    // PostgreSQL writes results that arrive in one turn by one statement (postgres-finishes.ts):
    // each row is still fenced by its own lease, and each result still reads as its own.
    it("records results that arrive together each by its own lease: done, retried, refunded, suspect, and stale ones refused", async () => {
      for (let i = 0; i < 6; i++) await store.acceptEvent(event(), [handler("a")]);
      const runs = await claim(T0, ["a"]);
      expect(runs).toHaveLength(6);
      const [done, retried, refunded, suspect, stale, dead] = runs as [(typeof runs)[number], ...typeof runs];
      const error = { code: "HOOKD_RUN_FAILED", message: "boom" } as const;
      const answers = await Promise.all([
        store.finishDelivery(done.id, done.leaseToken, { status: "done", now: T0 + 1, durationMs: 7 }),
        store.finishDelivery(retried!.id, retried!.leaseToken, { status: "pending", now: T0 + 2, durationMs: 8, nextAt: T0 + 60_000, error }),
        store.finishDelivery(refunded!.id, refunded!.leaseToken, { status: "pending", now: T0 + 3, durationMs: 0, refundAttempt: true, error }),
        store.finishDelivery(suspect!.id, suspect!.leaseToken, { status: "pending", now: T0 + 4, durationMs: 9, suspect: true, error }),
        store.finishDelivery(stale!.id, "not-its-lease", { status: "done", now: T0 + 5, durationMs: 1 }),
        store.finishDelivery(dead!.id, dead!.leaseToken, { status: "dead", now: T0 + 6, durationMs: 10, error }),
      ]);
      expect(answers).toEqual([true, true, true, true, false, true]);
      const get = async (id: number) => (await store.getRun(id))!;
      expect(await get(done.id)).toMatchObject({ status: "done", attempts: 1, finishedAt: T0 + 1, durationMs: 7, lastError: null });
      expect(await get(retried!.id)).toMatchObject({ status: "pending", attempts: 1, nextAt: T0 + 60_000, finishedAt: null, lastError: { code: "HOOKD_RUN_FAILED" } });
      expect(await get(refunded!.id)).toMatchObject({ status: "pending", attempts: 0, nextAt: T0 + 3 });
      expect(await get(suspect!.id)).toMatchObject({ status: "pending", suspect: true });
      expect(await get(stale!.id)).toMatchObject({ status: "running", attempts: 1 });
      expect(await get(dead!.id)).toMatchObject({ status: "dead", finishedAt: T0 + 6, durationMs: 10 });
      // A finished lease is spent: the same result again changes nothing.
      expect(await store.finishDelivery(done.id, done.leaseToken, { status: "done", now: T0 + 9, durationMs: 1 })).toBe(false);
    });

    it("tells a late result of a lost lease from the current one when both arrive together for one delivery", async () => {
      await store.acceptEvent(event(), [handler("a")]);
      const [stale] = await claim(T0, ["a"]);
      await store.releaseExpiredLeases(T0 + LEASE + 1);
      const [fresh] = await claim(T0 + LEASE + 2, ["a"]);
      expect(fresh!.id).toBe(stale!.id);
      const answers = await Promise.all([
        store.finishDelivery(stale!.id, stale!.leaseToken, { status: "done", now: T0 + LEASE + 3, durationMs: 5 }),
        store.finishDelivery(fresh!.id, fresh!.leaseToken, { status: "done", now: T0 + LEASE + 3, durationMs: 6 }),
      ]);
      expect(answers).toEqual([false, true]);
      expect(await store.getRun(fresh!.id)).toMatchObject({ status: "done", attempts: 2, durationMs: 6 });
    });

    it("dead-letters a delivery whose lease expires on its last attempt", async () => {
      await store.acceptEvent(event(), [handler("a", { maxAttempts: 1 })]);
      await claim(T0);
      expect(await store.releaseExpiredLeases(T0 + LEASE + 1)).toBe(1);
      expect((await store.listRuns({ eventId: "ev-1" }))[0]).toMatchObject({ status: "dead", attempts: 1, lastError: { code: "HOOKD_RUN_ABORTED" } });
    });

    it("gives the attempt back for leases a stopping daemon releases", async () => {
      await store.acceptEvent(event(), [handler("a")]);
      const [run] = await claim(T0);
      expect(await store.releaseDeliveries([{ id: run!.id, leaseToken: "wrong" }], T0 + 1)).toBe(0);
      expect(await store.releaseDeliveries([{ id: run!.id, leaseToken: run!.leaseToken }], T0 + 1)).toBe(1);
      expect((await store.listRuns({}))[0]).toMatchObject({ status: "pending", attempts: 0, nextAt: T0 + 1 });
      expect((await claim(T0 + 2))[0]).toMatchObject({ attempt: 1 });
    });

    it("keeps crash suspects out of regular claims and claims them on request", async () => {
      await store.acceptEvent(event(), [handler("a")]);
      await store.acceptEvent(event(), [handler("a")]);
      const claimed = await claim(T0);
      const victim = claimed.find((d) => d.event.id === "ev-1")!;
      const other = claimed.find((d) => d.event.id === "ev-2")!;
      await store.finishDelivery(victim.id, victim.leaseToken, {
        status: "pending",
        now: T0 + 1,
        nextAt: T0 + 1,
        durationMs: 1,
        error: { code: "HOOKD_SANDBOX_CRASHED", message: "x" },
        refundAttempt: true,
        suspect: true,
      });
      await store.finishDelivery(other.id, other.leaseToken, { status: "done", now: T0 + 1, durationMs: 1 });
      expect(await claim(T0 + 2)).toEqual([]);
      expect(await store.nextDueAt(["a"], true)).toBe(T0 + 1);
      expect(await store.nextDueAt(["a"])).toBeNull();
      const [suspect] = await store.claimDeliveries({ limit: 5, leaseMs: LEASE, now: T0 + 2, plugins: ["a"], suspects: true });
      expect(suspect).toMatchObject({ id: victim.id, suspect: true, attempt: 1 });
    });
  });

  describe("retries and dead letters", () => {
    it("puts a dead delivery back with a fresh budget as large as the last, counting attempts on", async () => {
      await store.acceptEvent(event(), [handler("a", { maxAttempts: 2 })]);
      for (let i = 0; i < 2; i++) {
        const [run] = await claim(T0 + i);
        await store.finishDelivery(run!.id, run!.leaseToken, { status: i === 1 ? "dead" : "pending", now: T0 + i, nextAt: T0 + i, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "no" } });
      }
      const [dead] = await store.listRuns({ status: "dead" });
      expect(dead).toMatchObject({ attempts: 2, maxAttempts: 2, lastError: { code: "HOOKD_RUN_FAILED", message: "no" } });
      const retried = await store.retryDelivery(dead!.id, T0 + 100);
      expect(retried).toMatchObject({ status: "pending", attempts: 2, maxAttempts: 4, nextAt: T0 + 100, finishedAt: null, eventId: "ev-1" });
      expect((await claim(T0 + 100))[0]).toMatchObject({ attempt: 3, maxAttempts: 4 });
    });

    it("runs a failed delivery waiting for its backoff now, and refuses done or unknown runs", async () => {
      await store.acceptEvent(event(), [handler("a"), handler("b")]);
      const { a, b } = byPlugin(await claim(T0));
      await store.finishDelivery(a!.id, a!.leaseToken, { status: "pending", now: T0, nextAt: T0 + 60_000, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "no" } });
      await store.finishDelivery(b!.id, b!.leaseToken, { status: "done", now: T0, durationMs: 1 });
      expect((await store.listRuns({ status: "failed" })).map((r) => r.id)).toEqual([a!.id]);
      expect(await store.retryDelivery(a!.id, T0 + 5)).toMatchObject({ status: "pending", nextAt: T0 + 5 });
      await expect(store.retryDelivery(b!.id, T0 + 5)).rejects.toMatchObject({ code: "HOOKD_RUN_NOT_RETRIABLE" });
      await expect(store.retryDelivery(9999, T0 + 5)).rejects.toMatchObject({ code: "HOOKD_RUN_NOT_FOUND" });
    });

    it("discards only dead letters, keeping them in history, counted, and never claimed again", async () => {
      await store.acceptEvent(event(), [handler("a", { maxAttempts: 1 }), handler("b")]);
      const { a, b } = byPlugin(await claim(T0));
      await store.finishDelivery(a!.id, a!.leaseToken, { status: "dead", now: T0, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "no" } });
      await store.finishDelivery(b!.id, b!.leaseToken, { status: "pending", now: T0, nextAt: T0, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "no" } });
      expect(await store.discardDeliveries([b!.id, a!.id, 9999], T0 + 5)).toEqual([a!.id]);
      expect(await store.listRuns({ status: "discarded" })).toMatchObject([{ id: a!.id, status: "discarded", attempts: 1, lastError: { code: "HOOKD_RUN_FAILED" } }]);
      expect(await store.countByStatus()).toMatchObject({ discarded: 1, dead: 0, pending: 1 });
      expect((await claim(T0 + 10)).map((run) => run.id)).toEqual([b!.id]);
      expect(await store.discardDeliveries([a!.id], T0 + 20)).toEqual([]);
    });
  });

  describe("per-key order", () => {
    it("hands a plugin the deliveries of one key one at a time, in acceptance order; other keys run beside them", async () => {
      await store.acceptEvent(event({ name: "deal.add" }), [keyed("a", "deal.*=1", "deal.add"), keyed("b", "deal.*=1", "deal.add")]);
      await store.acceptEvent(event(), [keyed("a", "deal.*=1")]);
      await store.acceptEvent(event(), [keyed("a", "deal.*=2")]);
      await store.acceptEvent(event(), [handler("a")]);
      const first = await claim(T0);
      expect(first.map((d) => [d.plugin, d.event.id]).sort()).toEqual([["a", "ev-1"], ["a", "ev-3"], ["a", "ev-4"], ["b", "ev-1"]]);
      const a1 = first.find((d) => d.plugin === "a" && d.event.id === "ev-1")!;
      await store.finishDelivery(a1.id, a1.leaseToken, { status: "done", now: T0 + 1, durationMs: 1 });
      expect((await claim(T0 + 2)).map((d) => d.event.id)).toEqual(["ev-2"]);
    });

    it("keeps the key while an earlier delivery waits for its retry, and frees it once that one is dead", async () => {
      await store.acceptEvent(event(), [keyed("a", "k")]);
      await store.acceptEvent(event(), [keyed("a", "k")]);
      const [first] = await claim(T0);
      await store.finishDelivery(first!.id, first!.leaseToken, { status: "pending", now: T0, nextAt: T0 + 1000, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "no" } });
      expect(await claim(T0 + 10)).toEqual([]);
      const [again] = await claim(T0 + 1000);
      expect(again!.event.id).toBe("ev-1");
      await store.finishDelivery(again!.id, again!.leaseToken, { status: "dead", now: T0 + 1001, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "no" } });
      expect((await claim(T0 + 1002)).map((d) => d.event.id)).toEqual(["ev-2"]);
    });
  });

  describe("several instances on one store", () => {
    it("never hands one delivery to two instances claiming at the same time", async () => {
      const second = await fixture.open();
      for (let i = 0; i < 40; i++) await store.acceptEvent(event(), [handler("a"), keyed("b", `k${i % 4}`)]);
      const seen = new Map<number, number>();
      for (let round = 0; round < 40; round++) {
        const batches = await Promise.all([claim(T0, ["a", "b"], 3), claim(T0, ["a", "b"], 3, second)]);
        const claimed = batches.flat();
        if (claimed.length === 0) break;
        for (const d of claimed) seen.set(d.id, (seen.get(d.id) ?? 0) + 1);
        // Keyed deliveries in flight at once: never two of one key.
        const keys = claimed.filter((d) => d.plugin === "b").map((d) => d.event.payload as { did: number }).map(({ did }) => (did - 1) % 4);
        expect(new Set(keys).size).toBe(keys.length);
        await Promise.all(claimed.map((d, i) => (i % 2 ? second : store).finishDelivery(d.id, d.leaseToken, { status: "done", now: T0, durationMs: 1 })));
      }
      expect(seen.size).toBe(80);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      expect(await second.countByStatus()).toEqual({ pending: 0, running: 0, done: 80, dead: 0, cancelled: 0, discarded: 0, skipped: 0 });
    });
  });

  describe("replay and retention", () => {
    it("adds deliveries to stored events under a replay id and counts them by status", async () => {
      await store.acceptEvent(event(), [handler("a")]);
      await store.acceptEvent(event(), [handler("a")]);
      const added = await store.addDeliveries(
        [
          { eventId: "ev-1", targets: [handler("a")] },
          { eventId: "ev-2", targets: [handler("a"), handler("b")] },
          { eventId: "gone", targets: [handler("a")] },
        ],
        T0 + 10,
        "replay-1",
      );
      expect(added).toBe(3);
      expect(await store.countByStatus({ replayId: "replay-1" })).toEqual({ pending: 3, running: 0, done: 0, dead: 0, cancelled: 0, discarded: 0, skipped: 0 });
      expect((await store.listRuns({ replayId: "replay-1" })).every((r) => r.replayId === "replay-1")).toBe(true);
      expect(await store.countByStatus()).toMatchObject({ pending: 5 });
      expect(await store.oldestPendingAt()).toBe(T0);
    });

    it("pages events both ways and counts a time window", async () => {
      for (let i = 0; i < 5; i++) await store.acceptEvent(event({ receivedAt: T0 + i * 1000 }), []);
      expect(await store.countEvents({ name: "deal.close", since: T0 + 1000, until: T0 + 4000 })).toBe(3);
      const page = await store.listEvents({ since: T0 + 1000, after: 0, limit: 2 });
      expect(page.map((e) => e.id)).toEqual(["ev-2", "ev-3"]);
      const next = await store.listEvents({ since: T0 + 1000, after: page[1]!.seq, limit: 10 });
      expect(next.map((e) => e.id)).toEqual(["ev-4", "ev-5"]);
      const newest = await store.listEvents({ limit: 2 });
      expect(newest.map((e) => e.id)).toEqual(["ev-5", "ev-4"]);
      expect((await store.listEvents({ before: newest[1]!.seq, limit: 10 })).map((e) => e.id)).toEqual(["ev-3", "ev-2", "ev-1"]);
    });

    it("prunes old finished events with their deliveries, keeps dead letters longer and unfinished ones always", async () => {
      const DAY = 86_400_000;
      const finish = async (status: "done" | "dead") => {
        const [run] = await claim(T0 + 10 * DAY, ["a"], 1);
        await store.finishDelivery(run!.id, run!.leaseToken, { status, now: T0, durationMs: 1 });
      };
      await store.acceptEvent(event({ id: "old-done" }), [handler("a")]);
      await finish("done");
      await store.acceptEvent(event({ id: "old-dead" }), [handler("a")]);
      await finish("dead");
      await store.acceptEvent(event({ id: "old-none" }), []);
      await store.acceptEvent(event({ id: "old-pending" }), [handler("b")]);
      await store.acceptEvent(event({ id: "new-done", receivedAt: T0 + 5 * DAY }), [handler("a")]);
      await finish("done");
      await store.kvSet("a", "k", 1);
      const now = T0 + 8 * DAY;
      expect(await store.pruneEvents({ doneBefore: now - 7 * DAY, deadBefore: now - 30 * DAY, limit: 1000 })).toBe(2);
      expect((await store.listEvents({})).map((e) => e.id).sort()).toEqual(["new-done", "old-dead", "old-pending"]);
      expect((await store.listRuns({})).map((r) => r.eventId).sort()).toEqual(["new-done", "old-dead", "old-pending"]);
      expect(await store.pruneEvents({ doneBefore: now - 7 * DAY, deadBefore: now - 1 * DAY, limit: 1 })).toBe(1);
      expect((await store.listEvents({})).map((e) => e.id).sort()).toEqual(["new-done", "old-pending"]);
      expect(await store.kvGet("a", "k")).toBe(1);
    });
  });

  describe("plugin kv", () => {
    it("keeps values per plugin, lists keys by literal prefix in order, deletes", async () => {
      await store.kvSet("a", "deal:2", { closed: true });
      await store.kvSet("a", "deal:1", [1, "x"]);
      await store.kvSet("a", "deal%", 3);
      await store.kvSet("b", "deal:9", "other plugin");
      await store.kvSet("a", "deal:1", [2]);
      expect(await store.kvGet("a", "deal:1")).toEqual([2]);
      expect(await store.kvGet("a", "missing")).toBeUndefined();
      expect(await store.kvList("a", "deal:", 10)).toEqual(["deal:1", "deal:2"]);
      expect(await store.kvList("a", "deal%", 10)).toEqual(["deal%"]);
      expect(await store.kvList("a", "", 2)).toEqual(["deal%", "deal:1"]);
      expect(await store.kvDelete("a", "deal:1")).toBe(true);
      expect(await store.kvDelete("a", "deal:1")).toBe(false);
      expect(await store.kvList("a", "deal:", 10)).toEqual(["deal:2"]);
    });

    it("answers that it can take writes", async () => {
      await expect(store.checkWritable()).resolves.toBeUndefined();
    });
  });
});
