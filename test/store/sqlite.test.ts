// What only the SQLite store does: group commit, its fsync policy, recovery of a single
// instance after a restart, the writer thread, schema migration and batched pruning. The rules
// every store keeps run against SQLite and PostgreSQL alike in test/store/store.test.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RetentionPruner } from "../../core/delivery/retention.ts";
import { createLogger } from "../../core/base/log.ts";
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

  it("leaves no half of an accept that fails after its event row was written, and stores the rest of its commit", async () => {
    // Hot accepts go without a savepoint each on the commit's first try. This one's event row
    // goes in and its delivery's does not (NOT NULL on target): the first try is undone and the
    // commit goes again a savepoint per write, so the failing accept leaves nothing behind.
    const commitsBefore = store.commits;
    const writes = Array.from({ length: 30 }, (_, i) =>
      store.acceptEvent(event(i === 12 ? { id: "ev-broken" } : {}), [handler("a"), ...(i === 12 ? [handler("b", { target: null as unknown as string })] : [])]),
    );
    const results = await Promise.allSettled(writes);
    const rejected = results.flatMap((r, i) => (r.status === "rejected" ? [{ i, error: r.reason as { code?: string } }] : []));
    expect(rejected).toEqual([{ i: 12, error: expect.objectContaining({ code: "SQLITE_CONSTRAINT_NOTNULL" }) }]);
    expect(await store.getEvent("ev-broken")).toBeNull();
    expect(await store.countEvents({})).toBe(29);
    const runs = await store.listRuns({ limit: 100 });
    expect(runs).toHaveLength(29);
    expect(runs.every((r) => r.plugin === "a" && r.status === "pending")).toBe(true);
    expect(store.commits - commitsBefore).toBe(1);
    expect(store.lastCommit).toEqual({ writes: 30, synchronous: "FULL" });
  });

  it("fails a commit as a whole when SQLite rolls its transaction back by itself, and stores nothing of it", async () => {
    // A full disk or an I/O error makes SQLite roll back the whole transaction, not just the
    // failing statement; RAISE(ROLLBACK) in a trigger does the same on purpose. Writes after it
    // must not run outside the transaction, each committing on its own (half an accept stored).
    store.db.exec(`CREATE TRIGGER stand_in_for_a_full_disk BEFORE INSERT ON kv WHEN NEW.key = 'boom'
                   BEGIN SELECT RAISE(ROLLBACK, 'disk full (stand-in)'); END`);
    const broken = (id: string) => event({ id }) satisfies NewEvent;
    for (const order of ["kv first", "kv between"] as const) {
      const accepts = [
        () => store.acceptEvent(broken(`${order}-1`), [handler("a")]),
        () => store.acceptEvent(broken(`${order}-2`), [handler("a"), handler("b", { target: null as unknown as string })]),
      ];
      const kv = () => store.kvSet("p", "boom", 1);
      const writes = order === "kv first" ? [kv(), accepts[0]!(), accepts[1]!()] : [accepts[0]!(), kv(), accepts[1]!()];
      const results = await Promise.allSettled(writes);
      expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect(results.map((r) => (r as PromiseRejectedResult).reason?.message)).toEqual(Array(3).fill("disk full (stand-in)"));
    }
    expect(await store.countEvents({})).toBe(0);
    expect(await store.listRuns({ limit: 10 })).toEqual([]);
    expect(await store.kvGet("p", "boom")).toBeUndefined();
    // The store goes on once the cause is gone.
    store.db.exec("DROP TRIGGER stand_in_for_a_full_disk");
    expect((await store.acceptEvent(event(), [handler("a")])).kind).toBe("stored");
    expect(await store.countEvents({})).toBe(1);
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
  it("after a restart, frees what a killed process left running, and dead-letters a crash loop's last attempt", async () => {
    await store.acceptEvent(event(), [handler("a", { maxAttempts: 3 })]);
    await store.acceptEvent(event(), [handler("a", { maxAttempts: 1 })]);
    await claim(T0);
    expect(await store.recoverAfterRestart(T0 + 1)).toBe(2);
    const byEvent = Object.fromEntries((await store.listRuns({})).map((r) => [r.eventId, r]));
    expect(byEvent["ev-1"]).toMatchObject({ status: "pending", attempts: 1 });
    expect(byEvent["ev-2"]).toMatchObject({ status: "dead", attempts: 1 });
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
