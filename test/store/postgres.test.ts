// What only a shared store does: instances starting together, waking each other, restarting
// without stealing the live leases of the others.
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { PostgresStore } from "../../core/store/postgres.ts";
import { openStore } from "../../core/store/open.ts";
import type { Store } from "../../core/store/types.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, PG_URL, postgresUnavailable, schemaUrl, testSchemaName } from "./stores.ts";

const T0 = Date.parse("2026-11-21T10:00:00Z");
const postgresDown = await postgresUnavailable();
const suite = postgresDown ? describe.skip : describe;
if (postgresDown) describe.skip(`postgres store skipped: ${postgresDown}`, () => it("needs PostgreSQL", () => undefined));

suite("postgres store with several instances", () => {
  let schema: string;
  let stores: Store[] = [];
  const open = async () => {
    const store = await openStore({ url: schemaUrl(schema), synchronous: "FULL" });
    stores.push(store);
    return store;
  };

  afterEach(async () => {
    for (const store of stores) await store.close();
    stores = [];
    if (schema) await dropSchema(schema);
  });

  it("holds at most store.maxConnections accepts in flight; the others wait for a connection, then commit", async () => {
    schema = testSchemaName();
    const store = await openStore({ url: schemaUrl(schema), synchronous: "FULL", maxConnections: 3 });
    stores.push(store);
    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    try {
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE "${schema}".events IN ACCESS EXCLUSIVE MODE`);
      const accepts = Array.from({ length: 10 }, (_, i) =>
        store.acceptEvent({ id: `held-${i}`, name: "deal.close", payload: { i }, receivedAt: T0, source: "http", depth: 0 }, [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }]),
      );
      const waitingOnLock = async () =>
        Number((await locker.query<{ n: string }>(`SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND relation = '"${schema}".events'::regclass`)).rows[0]!.n);
      // Three statements reach the server and wait on the lock; seven wait in the pool for a connection.
      const pool = (store as unknown as { pool: pg.Pool }).pool;
      await waitUntil(async () => (await waitingOnLock()) === 3 && pool.waitingCount === 7, { timeoutMs: 10_000, intervalMs: 20, what: "3 accepts on the lock and 7 waiting for a connection" });
      expect(pool.totalCount).toBe(3);
      await locker.query("ROLLBACK");
      expect((await Promise.all(accepts)).map((o) => o.kind)).toEqual(Array(10).fill("stored"));
      expect(await store.countEvents({})).toBe(10);
    } finally {
      await locker.end();
    }
  });

  it("creates the schema once when instances start together, and reopens it", async () => {
    schema = testSchemaName();
    const opened = await Promise.all([open(), open(), open()]);
    await opened[0]!.acceptEvent({ id: "e1", name: "deal.close", payload: {}, receivedAt: T0, source: "http", depth: 0 }, []);
    expect(await opened[2]!.countEvents({})).toBe(1);
    const again = await open();
    expect(await again.getEvent("e1")).toMatchObject({ id: "e1" });
  });

  it("wakes the other instances when one stores work", async () => {
    schema = testSchemaName();
    const [a, b] = await Promise.all([open(), open()]);
    let woken = 0;
    let wake: () => void = () => undefined;
    b.onRemoteWork!(() => {
      woken++;
      wake();
    });
    const wokenUp = new Promise<void>((resolve) => (wake = resolve));
    await a.acceptEvent({ id: "e1", name: "deal.close", payload: {}, receivedAt: T0, source: "http", depth: 0 }, [{ kind: "handler", plugin: "p", target: "deal.close", maxAttempts: 1 }]);
    await wokenUp;
    expect(woken).toBeGreaterThanOrEqual(1);
  });

  it("frees only expired leases at start: another instance's live run keeps its lease", async () => {
    schema = testSchemaName();
    const a = await open();
    await a.acceptEvent({ id: "e1", name: "deal.close", payload: {}, receivedAt: T0, source: "http", depth: 0 }, [{ kind: "handler", plugin: "p", target: "deal.close", maxAttempts: 3 }]);
    await a.acceptEvent({ id: "e2", name: "deal.close", payload: {}, receivedAt: T0, source: "http", depth: 0 }, [{ kind: "handler", plugin: "q", target: "deal.close", maxAttempts: 3 }]);
    const now = Date.now();
    const [live] = await a.claimDeliveries({ limit: 1, leaseMs: 600_000, now, plugins: ["p"] });
    await a.claimDeliveries({ limit: 1, leaseMs: 1, now: now - 10_000, plugins: ["q"] });
    const b = (await open()) as PostgresStore;
    const runs = Object.fromEntries((await b.listRuns({})).map((r) => [r.plugin, r]));
    expect(runs.p).toMatchObject({ status: "running" });
    expect(runs.q).toMatchObject({ status: "pending", attempts: 1 });
    expect(await a.finishDelivery(live!.id, live!.leaseToken, { status: "done", now, durationMs: 1 })).toBe(true);
  });

  it("shares plugin kv between instances", async () => {
    schema = testSchemaName();
    const [a, b] = await Promise.all([open(), open()]);
    await a.kvSet("crm", "token", { value: "t1" });
    expect(await b.kvGet("crm", "token")).toEqual({ value: "t1" });
  });

  it("refuses a schema name that is not a plain identifier", async () => {
    schema = "";
    await expect(PostgresStore.open({ url: schemaUrl("x; drop table y") })).rejects.toMatchObject({ code: "HOOKD_STORE_UNSUPPORTED" });
  });
});
