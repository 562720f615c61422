// The SQLite store's delivery rules, on a real database file with the clock passed in by hand.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RetentionPruner } from "../../core/delivery/retention.ts";
import { createLogger } from "../../core/log.ts";
import { SqliteStore } from "../../core/store/sqlite.ts";
import type { DeliveryTarget, NewEvent } from "../../core/store/types.ts";

const T0 = Date.parse("2026-11-21T10:00:00Z");
const LEASE = 30_000;

let dir: string;
let store: SqliteStore;
let nextEvent = 0;

beforeEach(() => {
  nextEvent = 0;
  dir = mkdtempSync(path.join(tmpdir(), "hookd-store-"));
  store = new SqliteStore({ file: path.join(dir, "hookd.db") });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function event(overrides: Partial<NewEvent> = {}): NewEvent {
  nextEvent++;
  return { id: `ev-${nextEvent}`, name: "deal.close", payload: { did: nextEvent }, receivedAt: T0, source: "http", depth: 0, ...overrides };
}

function handler(plugin: string, overrides: Partial<DeliveryTarget> = {}): DeliveryTarget {
  return { kind: "handler", plugin, target: "deal.close", maxAttempts: 3, ...overrides };
}

const claim = (now: number, plugins: string[] = ["a", "b"], limit = 10) => store.claimDeliveries({ limit, leaseMs: LEASE, now, plugins });

describe("accepting events", () => {
  it("stores an event with one delivery per handler in one transaction", async () => {
    const outcome = await store.acceptEvent(event(), [handler("a"), handler("b")]);
    expect(outcome).toEqual({ kind: "stored", id: "ev-1", deliveries: 2 });
    const runs = await store.listRuns({ eventId: "ev-1" });
    expect(runs.map((r) => [r.plugin, r.status, r.attempts])).toEqual([
      ["b", "pending", 0],
      ["a", "pending", 0],
    ]);
  });

  it("returns the first id for a repeated idempotency key and reports a different body as a conflict", async () => {
    const first = await store.acceptEvent(event({ idempotencyKey: "crm-1", bodyHash: "h1" }), [handler("a")]);
    const repeat = await store.acceptEvent(event({ idempotencyKey: "crm-1", bodyHash: "h1" }), [handler("a")]);
    const different = await store.acceptEvent(event({ idempotencyKey: "crm-1", bodyHash: "h2" }), [handler("a")]);
    expect(repeat).toEqual({ kind: "duplicate", id: first.id });
    expect(different).toEqual({ kind: "conflict", id: first.id });
    expect(await store.countByStatus()).toMatchObject({ pending: 1 });
  });

  it("stores one event when repeats of a key arrive in the same group commit", async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => store.acceptEvent(event({ idempotencyKey: "same", bodyHash: "h" }), [handler("a")])),
    );
    expect(outcomes.filter((o) => o.kind === "stored")).toHaveLength(1);
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(1);
    expect(await store.countEvents({})).toBe(1);
  });

  it("commits concurrent writes together, and one failing write does not undo the others", async () => {
    const commitsBefore = store.commits;
    const writes = Array.from({ length: 50 }, (_, i) => store.acceptEvent(event(i === 7 ? { id: "ev-dup" } : {}), [handler("a")]));
    // The same event id twice: the second insert fails on the UNIQUE constraint, alone.
    const failing = store.acceptEvent(event({ id: "ev-dup" }), [handler("a")]);
    const results = await Promise.allSettled([...writes, failing]);
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(1);
    expect(await store.countEvents({})).toBe(50);
    // One commit did all the work: the writes shared one transaction (one WAL fsync).
    expect(store.commits - commitsBefore).toBe(1);
    expect(store.lastCommit).toEqual({ writes: 51, synchronous: "FULL" });
  });

  it("uses synchronous=FULL unless told otherwise", async () => {
    await store.acceptEvent(event(), []);
    expect(store.lastCommit?.synchronous).toBe("FULL");
    const normal = new SqliteStore({ file: path.join(dir, "normal.db"), synchronous: "NORMAL" });
    await normal.acceptEvent(event(), []);
    expect(normal.lastCommit?.synchronous).toBe("NORMAL");
    expect(normal.db.pragma("journal_mode", { simple: true })).toBe("wal");
    await normal.close();
  });

  it("fsyncs the commits that carry an accepted event, not those that only claim or finish runs", async () => {
    await store.acceptEvent(event(), [handler("a")]);
    expect(store.lastCommit?.synchronous).toBe("FULL");
    const [run] = await claim(T0);
    expect(store.lastCommit?.synchronous).toBe("NORMAL");
    // A batch with both: the promised write wins.
    await Promise.all([store.finishDelivery(run!.id, run!.leaseToken, { status: "done", now: T0, durationMs: 1 }), store.acceptEvent(event(), [handler("a")])]);
    expect(store.lastCommit).toEqual({ writes: 2, synchronous: "FULL" });
  });
});

describe("claims and leases", () => {
  it("writes the attempt and the lease when claiming, so a claimed delivery is not claimed twice", async () => {
    await store.acceptEvent(event(), [handler("a")]);
    const [first] = await claim(T0);
    expect(first).toMatchObject({ attempt: 1, maxAttempts: 3, plugin: "a", suspect: false, event: { id: "ev-1", payload: { did: 1 } } });
    expect(first!.leaseToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(await claim(T0 + 1000)).toEqual([]);
    const [run] = await store.listRuns({ eventId: "ev-1" });
    expect(run).toMatchObject({ status: "running", attempts: 1 });
  });

  it("claims only deliveries of the given plugins, and only when due", async () => {
    await store.acceptEvent(event({ receivedAt: T0 + 5000 }), [handler("a"), handler("c")]);
    expect(await claim(T0)).toEqual([]);
    const claimed = await claim(T0 + 5000);
    expect(claimed.map((d) => d.plugin)).toEqual(["a"]);
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
    // The stale run finishes late: nothing changes, and it cannot renew either.
    expect(await store.finishDelivery(stale!.id, stale!.leaseToken, { status: "done", now: T0 + LEASE + 3, durationMs: 5 })).toBe(false);
    expect(await store.renewLease(stale!.id, stale!.leaseToken, T0 + 10 * LEASE)).toBe(false);
    expect((await store.listRuns({ eventId: "ev-1" }))[0]).toMatchObject({ status: "running", attempts: 2 });
    expect(await store.finishDelivery(fresh!.id, fresh!.leaseToken, { status: "done", now: T0 + LEASE + 4, durationMs: 5 })).toBe(true);
    expect((await store.listRuns({ eventId: "ev-1" }))[0]).toMatchObject({ status: "done", attempts: 2, finishedAt: T0 + LEASE + 4 });
  });

  it("dead-letters a delivery whose lease expires on its last attempt", async () => {
    await store.acceptEvent(event(), [handler("a", { maxAttempts: 1 })]);
    await claim(T0);
    expect(await store.releaseExpiredLeases(T0 + LEASE + 1)).toBe(1);
    const [run] = await store.listRuns({ eventId: "ev-1" });
    expect(run).toMatchObject({ status: "dead", attempts: 1, lastError: { code: "HOOKD_RUN_ABORTED" } });
  });

  it("after a restart, frees what a killed process left running, and dead-letters a crash loop's last attempt", async () => {
    await store.acceptEvent(event(), [handler("a", { maxAttempts: 3 })]);
    await store.acceptEvent(event(), [handler("a", { maxAttempts: 1 })]);
    await claim(T0);
    expect(await store.recoverAfterRestart(T0 + 1)).toBe(2);
    const byEvent = Object.fromEntries((await store.listRuns({})).map((r) => [r.eventId, r]));
    expect(byEvent["ev-1"]).toMatchObject({ status: "pending", attempts: 1 });
    expect(byEvent["ev-2"]).toMatchObject({ status: "dead", attempts: 1 });
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
    const [victim, other] = claimed;
    await store.finishDelivery(victim!.id, victim!.leaseToken, {
      status: "pending",
      now: T0 + 1,
      nextAt: T0 + 1,
      durationMs: 1,
      error: { code: "HOOKD_SANDBOX_CRASHED", message: "x" },
      refundAttempt: true,
      suspect: true,
    });
    await store.finishDelivery(other!.id, other!.leaseToken, { status: "done", now: T0 + 1, durationMs: 1 });
    expect(await claim(T0 + 2)).toEqual([]);
    expect(await store.nextDueAt(["a"], true)).toBe(T0 + 1);
    expect(await store.nextDueAt(["a"])).toBeNull();
    const [suspect] = await store.claimDeliveries({ limit: 5, leaseMs: LEASE, now: T0 + 2, plugins: ["a"], suspects: true });
    expect(suspect).toMatchObject({ id: victim!.id, suspect: true, attempt: 1 });
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
    expect(dead).toMatchObject({ attempts: 2, maxAttempts: 2 });
    const retried = await store.retryDelivery(dead!.id, T0 + 100);
    expect(retried).toMatchObject({ status: "pending", attempts: 2, maxAttempts: 4, nextAt: T0 + 100, finishedAt: null });
    expect((await claim(T0 + 100))[0]).toMatchObject({ attempt: 3, maxAttempts: 4 });
  });

  it("runs a failed delivery waiting for its backoff now, and refuses done or unknown runs", async () => {
    await store.acceptEvent(event(), [handler("a"), handler("b")]);
    const [b, a] = await claim(T0);
    await store.finishDelivery(a!.id, a!.leaseToken, { status: "pending", now: T0, nextAt: T0 + 60_000, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "no" } });
    await store.finishDelivery(b!.id, b!.leaseToken, { status: "done", now: T0, durationMs: 1 });
    expect((await store.listRuns({ status: "failed" })).map((r) => r.id)).toEqual([a!.id]);
    expect(await store.retryDelivery(a!.id, T0 + 5)).toMatchObject({ status: "pending", nextAt: T0 + 5 });
    await expect(store.retryDelivery(b!.id, T0 + 5)).rejects.toMatchObject({ code: "HOOKD_RUN_NOT_RETRIABLE" });
    await expect(store.retryDelivery(9999, T0 + 5)).rejects.toMatchObject({ code: "HOOKD_RUN_NOT_FOUND" });
  });
});

describe("per-key order", () => {
  const keyed = (plugin: string, key: string, target = "deal.close") => handler(plugin, { orderKey: key, target });

  it("hands a plugin the deliveries of one key one at a time, in acceptance order; other keys run beside them", async () => {
    await store.acceptEvent(event({ name: "deal.add" }), [keyed("a", "deal.*=1", "deal.add"), keyed("b", "deal.*=1", "deal.add")]);
    await store.acceptEvent(event(), [keyed("a", "deal.*=1")]);
    await store.acceptEvent(event(), [keyed("a", "deal.*=2")]);
    await store.acceptEvent(event(), [handler("a")]);

    const first = await claim(T0);
    // Key 1 of plugin a: only its first delivery (deal.add), though deal.close of key 1 is due.
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
    expect(await store.countByStatus({ replayId: "replay-1" })).toEqual({ pending: 3, running: 0, done: 0, dead: 0 });
    expect((await store.listRuns({ replayId: "replay-1" })).every((r) => r.replayId === "replay-1")).toBe(true);
    expect(await store.countByStatus()).toMatchObject({ pending: 5 });
  });

  it("pages events oldest first and counts a time window", async () => {
    for (let i = 0; i < 5; i++) await store.acceptEvent(event({ receivedAt: T0 + i * 1000 }), []);
    expect(await store.countEvents({ name: "deal.close", since: T0 + 1000, until: T0 + 4000 })).toBe(3);
    const page = await store.listEvents({ since: T0 + 1000, after: 0, limit: 2 });
    expect(page.map((e) => e.id)).toEqual(["ev-2", "ev-3"]);
    const next = await store.listEvents({ since: T0 + 1000, after: page[1]!.seq, limit: 10 });
    expect(next.map((e) => e.id)).toEqual(["ev-4", "ev-5"]);
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
    const left = (await store.listEvents({})).map((e) => e.id).sort();
    expect(left).toEqual(["new-done", "old-dead", "old-pending"]);
    expect((await store.listRuns({})).map((r) => r.eventId).sort()).toEqual(["new-done", "old-dead", "old-pending"]);

    expect(await store.pruneEvents({ doneBefore: now - 7 * DAY, deadBefore: now - 1 * DAY, limit: 1 })).toBe(1);
    expect((await store.listEvents({})).map((e) => e.id).sort()).toEqual(["new-done", "old-pending"]);
    expect(await store.kvGet("a", "k")).toBe(1);
    expect(store.db.pragma("integrity_check", { simple: true })).toBe("ok");
  });
});

describe("retention", () => {
  it("prunes every finished event past the window in batches, and nothing when the window is 0", async () => {
    const DAY = 86_400_000;
    const logger = createLogger({ level: "silent" });
    // 2,500 events without deliveries (finished at once), received 10 days before "now".
    await Promise.all(Array.from({ length: 2500 }, () => store.acceptEvent(event(), [])));
    await store.acceptEvent(event({ id: "recent", receivedAt: T0 + 9 * DAY }), []);
    const keepForever = new RetentionPruner({ store, logger, retention: () => ({ doneMs: 0, deadMs: 0 }), now: () => T0 + 10 * DAY });
    expect(await keepForever.pruneNow()).toBe(0);
    const weekly = new RetentionPruner({ store, logger, retention: () => ({ doneMs: 7 * DAY, deadMs: 30 * DAY }), now: () => T0 + 10 * DAY });
    expect(await weekly.pruneNow()).toBe(2500);
    expect((await store.listEvents({})).map((e) => e.id)).toEqual(["recent"]);
  });
});

describe("writers", () => {
  it("commits on this thread for an in-memory database", async () => {
    const memory = new SqliteStore({ file: ":memory:" });
    await memory.acceptEvent(event(), [handler("a")]);
    const [run] = await memory.claimDeliveries({ limit: 1, leaseMs: LEASE, now: T0, plugins: ["a"] });
    expect(await memory.finishDelivery(run!.id, run!.leaseToken, { status: "done", now: T0, durationMs: 1 })).toBe(true);
    expect(await memory.countByStatus()).toMatchObject({ done: 1 });
    await memory.close();
  });

  it("commits what is queued when closed, and refuses writes after", async () => {
    const pending = store.acceptEvent(event(), [handler("a")]);
    await store.close();
    expect(await pending).toMatchObject({ kind: "stored" });
    await expect(store.acceptEvent(event(), [])).rejects.toThrow(/closed/);
    const reopened = new SqliteStore({ file: path.join(dir, "hookd.db") });
    expect(await reopened.countEvents({})).toBe(1);
    store = reopened;
  });
});

describe("schema", () => {
  it("brings a database of the first schema up to date", async () => {
    const file = path.join(dir, "v1.db");
    const old = new Database(file);
    old.exec(`
      CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, payload TEXT NOT NULL,
        received_at INTEGER NOT NULL, source TEXT NOT NULL, parent_id TEXT, depth INTEGER NOT NULL DEFAULT 0,
        idempotency_key TEXT UNIQUE, body_hash TEXT);
      CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
        kind TEXT NOT NULL, plugin TEXT NOT NULL, target TEXT NOT NULL, input TEXT, order_key TEXT, status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, next_at INTEGER NOT NULL, lease_token TEXT,
        lease_until INTEGER, last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER, duration_ms INTEGER);
      CREATE INDEX deliveries_ready ON deliveries(status, next_at, id);
      INSERT INTO events (id, name, payload, received_at, source) VALUES ('old', 'deal.close', '{}', 1, 'http');
      INSERT INTO deliveries (event_seq, kind, plugin, target, status, max_attempts, next_at, created_at, updated_at)
        VALUES (1, 'handler', 'a', 'deal.close', 'pending', 3, 1, 1, 1);
    `);
    old.close();
    const upgraded = new SqliteStore({ file });
    const [run] = await upgraded.claimDeliveries({ limit: 1, leaseMs: 1000, now: 2, plugins: ["a"] });
    expect(run).toMatchObject({ event: { id: "old" }, attempt: 1, suspect: false });
    await upgraded.close();
  });
});
