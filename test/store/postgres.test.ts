// What only a shared store does: instances starting together, waking each other, restarting
// without stealing the live leases of the others.
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { PostgresStore } from "../../core/store/postgres.ts";
import { openStore } from "../../core/store/open.ts";
import type { DeliveryTarget, NewEvent, Store } from "../../core/store/types.ts";
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
      // Delayed events: they go one to a statement (the others go together, see the batch tests below).
      const accepts = Array.from({ length: 10 }, (_, i) =>
        store.acceptEvent({ id: `held-${i}`, name: "deal.close", payload: { i }, receivedAt: T0, source: "http", depth: 0, deliverAt: T0 + 60_000 }, [
          { kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 },
        ]),
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

  it("stores accepts that arrive together in one transaction, in their order, each answered as it would be alone", async () => {
    schema = testSchemaName();
    const store = await open();
    const handler = (plugin: string, lease?: string): DeliveryTarget => ({ kind: "handler", plugin, target: "deal.close", maxAttempts: 3, ...(lease ? { lease: { token: lease, until: T0 + 30_000 } } : {}) });
    const event = (id: string, extra: Partial<NewEvent> = {}): NewEvent => ({ id, name: "deal.close", payload: { id }, receivedAt: T0, source: "http", depth: 0, ...extra });
    // One turn of the event loop: every accept is queued before the first statement goes.
    const outcomes = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => store.acceptEvent(event(`plain-${i}`), [handler("a")])),
      store.acceptEvent(event("started"), [handler("a", "lease-1"), handler("b")]),
      store.acceptEvent(event("two-started"), [handler("a"), handler("b", "lease-2"), handler("c", "lease-3")]),
      store.acceptEvent(event("nobody"), []),
      store.acceptEvent(event("keyed", { idempotencyKey: "k-1", bodyHash: "h1" }), [handler("a")]),
      store.acceptEvent(event("keyed-again", { idempotencyKey: "k-1", bodyHash: "h1" }), [handler("a")]),
      store.acceptEvent(event("keyed-other-body", { idempotencyKey: "k-1", bodyHash: "h2" }), [handler("a")]),
    ]);
    expect(outcomes.slice(0, 20).every((o) => o.kind === "stored" && o.deliveries === 1 && o.started === undefined)).toBe(true);
    expect(outcomes[20]).toMatchObject({ kind: "stored", id: "started", deliveries: 2, started: [{ index: 0 }] });
    expect(outcomes[21]).toMatchObject({ kind: "stored", id: "two-started", deliveries: 3 });
    expect((outcomes[21] as { started: Array<{ index: number }> }).started.map((s) => s.index).sort()).toEqual([1, 2]);
    expect(outcomes[22]).toEqual({ kind: "stored", id: "nobody", deliveries: 0 });
    expect(outcomes[23]).toMatchObject({ kind: "stored", id: "keyed" });
    // The second of a key in the same batch is a repeat of the first, as after its commit.
    expect(outcomes[24]).toMatchObject({ kind: "duplicate", id: "keyed" });
    expect(outcomes[25]).toMatchObject({ kind: "conflict" });
    const reader = new pg.Client({ connectionString: PG_URL });
    await reader.connect();
    try {
      const { rows } = await reader.query<{ id: string; seq: string; tx: string }>(`SELECT id, seq, xmin::text AS tx FROM "${schema}".events ORDER BY seq`);
      expect(rows.map((r) => r.id)).toEqual([...Array.from({ length: 20 }, (_, i) => `plain-${i}`), "started", "two-started", "nobody", "keyed"]);
      // One transaction (one WAL flush) holds them all.
      expect(new Set(rows.map((r) => r.tx)).size).toBe(1);
      const { rows: deliveries } = await reader.query<{ event: string; plugin: string; status: string; attempts: number; lease_token: string | null }>(
        `SELECT e.id AS event, d.plugin, d.status, d.attempts, d.lease_token FROM "${schema}".deliveries d JOIN "${schema}".events e ON e.seq = d.event_seq ORDER BY d.id`,
      );
      expect(deliveries).toHaveLength(20 + 2 + 3 + 1);
      expect(deliveries.filter((d) => d.event === "two-started")).toEqual([
        { event: "two-started", plugin: "a", status: "pending", attempts: 0, lease_token: null },
        { event: "two-started", plugin: "b", status: "running", attempts: 1, lease_token: "lease-2" },
        { event: "two-started", plugin: "c", status: "running", attempts: 1, lease_token: "lease-3" },
      ]);
    } finally {
      await reader.end();
    }
    // What started at accept finishes under its lease, as a claimed delivery does.
    const [started] = (outcomes[20] as { started: Array<{ id: number }> }).started;
    expect(await store.finishDelivery(started!.id, "lease-1", { status: "done", now: T0 + 5, durationMs: 5 })).toBe(true);
    expect(await store.getRun(started!.id)).toMatchObject({ plugin: "a", status: "done", attempts: 1 });
  });

  it("stores an event in a batch as the statements for one event store it: the same columns, started or not", async () => {
    schema = testSchemaName();
    const store = await open();
    const shape = (id: string, key: string): NewEvent => ({
      id, name: "deal.close", payload: { deal: 7, note: 'a "quoted" \\ text' }, receivedAt: T0, source: "oktell", depth: 0,
      idempotencyKey: key, bodyHash: "hash", sourceUser: "operator", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    });
    let tokens = 0;
    const targets = (plugins: string[]): DeliveryTarget[] =>
      plugins.map((plugin, i) => ({ kind: "action", plugin, target: "crm.note", input: { text: "hi", n: i }, maxAttempts: 5, ...(i === 0 ? { lease: { token: `lease-${++tokens}`, until: T0 + 30_000 } } : {}) }));
    // In a batch: the accepts of one turn.
    const keyedTargets = (): DeliveryTarget[] => targets(["a", "b"]).map((t, i) => (i === 1 ? { ...t, orderKey: "deal-7" } : t));
    const [one, two] = await Promise.all([
      store.acceptEvent(shape("batched-1", "k1"), targets(["a"])),
      store.acceptEvent(shape("batched-2", "k2"), targets(["a", "b"])),
      store.acceptEvent(shape("batched-3", "k5"), keyedTargets()),
    ]);
    // Alone, in a transaction of their own: a schedule's tick stores its event by the one-delivery
    // statement (one target) or the general one (two, or an order key).
    expect(await store.claimScheduleTick("tick-1", T0, shape("alone-1", "k3"), targets(["a"]))).toBe(true);
    expect(await store.claimScheduleTick("tick-2", T0, shape("alone-2", "k4"), targets(["a", "b"]))).toBe(true);
    expect(await store.claimScheduleTick("tick-3", T0, shape("alone-3", "k6"), keyedTargets())).toBe(true);
    expect(one).toMatchObject({ kind: "stored", deliveries: 1, started: [{ index: 0 }] });
    expect(two).toMatchObject({ kind: "stored", deliveries: 2, started: [{ index: 0 }] });
    const stored = async (id: string) => {
      const { id: _id, seq: _seq, ...event } = (await store.getEvent(id))!;
      const runs = (await store.listRuns({ eventId: id, limit: 10 })).map((run) => {
        const { id: _run, eventId: _event, ...rest } = run as typeof run & { leaseToken?: unknown };
        return rest;
      });
      return { event, runs: runs.sort((x, y) => x.plugin.localeCompare(y.plugin)), traceparent: await store.eventTraceparent(id) };
    };
    expect(await stored("batched-1")).toEqual(await stored("alone-1"));
    expect(await stored("batched-2")).toEqual(await stored("alone-2"));
    expect(await stored("batched-3")).toEqual(await stored("alone-3"));
    expect((await stored("batched-2")).runs.map((r) => [r.plugin, r.status, r.attempts])).toEqual([["a", "running", 1], ["b", "pending", 0]]);
  });

  it("keeps a key's order across batches in flight at once: its deliveries are numbered in the order they came, and claimed one at a time", async () => {
    schema = testSchemaName();
    const store = await open();
    const keyed = (id: string, key: string, lease = false): [NewEvent, DeliveryTarget[]] => [
      { id, name: "deal.close", payload: { id }, receivedAt: T0, source: "http", depth: 0 },
      [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3, orderKey: key, ...(lease ? { lease: { token: `lease-${id}`, until: T0 + 30_000 } } : {}) }],
    ];
    const turn = (from: number) => Array.from({ length: 10 }, (_, i) => store.acceptEvent(...keyed(`e-${from + i}`, i % 2 === 0 ? "deal-1" : "deal-2", i === 0)));
    const first = turn(0);
    await new Promise((resolve) => setImmediate(resolve)); // the first batch is with the server
    const second = turn(10);
    const outcomes = await Promise.all([...first, ...second]);
    // A lease given for a keyed delivery does not start it: the claim takes it in its key's turn.
    expect(outcomes.every((o) => o.kind === "stored" && o.started === undefined)).toBe(true);
    const reader = new pg.Client({ connectionString: PG_URL });
    await reader.connect();
    try {
      const { rows } = await reader.query<{ event: string; order_key: string; status: string }>(
        `SELECT e.id AS event, d.order_key, d.status FROM "${schema}".deliveries d JOIN "${schema}".events e ON e.seq = d.event_seq ORDER BY d.id`,
      );
      const order = (key: string) => rows.filter((r) => r.order_key === key).map((r) => Number(r.event.slice(2)));
      expect(order("deal-1")).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
      expect(order("deal-2")).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
      expect(rows.every((r) => r.status === "pending")).toBe(true);
    } finally {
      await reader.end();
    }
    // One at a time per key: the claim takes each key's earliest only.
    const claimed = await store.claimDeliveries({ limit: 50, leaseMs: 30_000, now: T0 + 1, plugins: ["a"] });
    expect(claimed.map((d) => d.event.id).sort()).toEqual(["e-0", "e-1"]);
  });

  it("fails only the accept that cannot be stored: the others of its batch are stored", async () => {
    schema = testSchemaName();
    const store = await open();
    const target: DeliveryTarget[] = [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }];
    const event = (id: string): NewEvent => ({ id, name: "deal.close", payload: { id }, receivedAt: T0, source: "http", depth: 0 });
    await store.acceptEvent(event("taken"), target);
    // An event id already stored breaks the batch's statement (a unique violation): nothing of it
    // is stored, and each accept is tried again alone.
    const settled = await Promise.allSettled([
      ...Array.from({ length: 5 }, (_, i) => store.acceptEvent(event(`good-${i}`), target)),
      store.acceptEvent(event("taken"), target),
      store.acceptEvent(event("good-5"), target),
    ]);
    expect(settled.map((s) => s.status)).toEqual([...Array(5).fill("fulfilled"), "rejected", "fulfilled"]);
    expect(String((settled[5] as PromiseRejectedResult).reason)).toMatch(/duplicate key|unique/);
    expect(await store.countEvents({})).toBe(7);
    expect((await store.listRuns({ limit: 50 })).length).toBe(7);
  });

  it("stores any text a batch carries as it came: quotes, backslashes, braces, commas, the word NULL", async () => {
    schema = testSchemaName();
    const store = await open();
    const target: DeliveryTarget[] = [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }];
    const tricky = ['NULL', '"', "\\", '{"a":[1,{}]}', "a,b", "{}", "line\nbreak", "tab\tthere", "эмодзи 🚀", "\u0001", ""];
    const events: NewEvent[] = tricky.map((text, i) => ({
      id: `tricky-${i}`, name: "deal.close", payload: { text, list: [text, null], nested: { [text || "empty"]: text } }, receivedAt: T0, source: "http", depth: 0,
      idempotencyKey: i === 0 ? "NULL" : `key ${text} ${i}`, bodyHash: text || null, sourceUser: text,
    } as NewEvent));
    const outcomes = await Promise.all(events.map((e) => store.acceptEvent(e, target)));
    expect(outcomes.map((o) => o.kind)).toEqual(tricky.map(() => "stored"));
    for (const [i, e] of events.entries()) {
      const stored = await store.getEvent(e.id);
      expect(stored?.payload).toEqual(e.payload);
      expect(stored?.origin).toMatchObject(e.sourceUser ? { user: e.sourceUser } : {});
    }
    // The key "NULL" is a key, not a missing one: its repeat is a duplicate.
    expect(await store.acceptEvent({ ...events[0]!, id: "tricky-again" }, target)).toMatchObject({ kind: "duplicate", id: "tricky-0" });
  });

  it("answers repeats of the same keys in two batches in flight at once: each key stored once, the rest duplicates", async () => {
    schema = testSchemaName();
    const store = await open();
    const target: DeliveryTarget[] = [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }];
    const keyed = (id: string, key: string): NewEvent => ({ id, name: "deal.close", payload: { key }, receivedAt: T0, source: "http", depth: 0, idempotencyKey: key, bodyHash: key });
    const keys = Array.from({ length: 12 }, (_, i) => `k-${i}`);
    const first = keys.map((key) => store.acceptEvent(keyed(`first-${key}`, key), target));
    // The next turn: the first batch is with the server, this one goes beside it, its keys in the other order.
    await new Promise((resolve) => setImmediate(resolve));
    const second = [...keys].reverse().map((key) => store.acceptEvent(keyed(`second-${key}`, key), target));
    const outcomes = await Promise.all([...first, ...second]);
    for (const key of keys) {
      const of = outcomes.filter((o) => o.kind === "stored" ? o.id.endsWith(`-${key}`) : o.kind === "duplicate" && o.id.endsWith(`-${key}`));
      expect(of.map((o) => o.kind).sort()).toEqual(["duplicate", "stored"]);
    }
    expect(await store.countEvents({})).toBe(keys.length);
  });

  it("fails alone, at once, an accept whose payload has no JSON text", async () => {
    schema = testSchemaName();
    const store = await open();
    const target: DeliveryTarget[] = [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }];
    const event = (id: string, payload: unknown): NewEvent => ({ id, name: "deal.close", payload, receivedAt: T0, source: "http", depth: 0 });
    const settled = await Promise.allSettled([
      store.acceptEvent(event("fine-1", { a: 1 }), target),
      store.acceptEvent(event("nothing", undefined), target),
      store.acceptEvent(event("bigint", { n: 10n }), target),
      store.acceptEvent(event("fine-2", { a: 2 }), target),
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    expect(await store.countEvents({})).toBe(2);
  });

  it("lets a key that waits on another transaction's uncommitted insert of it fail alone: the rest of its batch is stored", async () => {
    schema = testSchemaName();
    const store = await openStore({ url: schemaUrl(schema), synchronous: "FULL", statementTimeoutMs: 500 });
    stores.push(store);
    const target: DeliveryTarget[] = [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }];
    const event = (id: string, key?: string): NewEvent => ({ id, name: "deal.close", payload: { id }, receivedAt: T0, source: "http", depth: 0, ...(key ? { idempotencyKey: key, bodyHash: key } : {}) });
    const holder = new pg.Client({ connectionString: PG_URL });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`INSERT INTO "${schema}".events (id, name, payload, received_at, source, idempotency_key) VALUES ('held', 'deal.close', '{}', 0, 'http', 'K')`);
      const settled = await Promise.allSettled([
        store.acceptEvent(event("plain-1"), target),
        store.acceptEvent(event("waits", "K"), target),
        store.acceptEvent(event("other-key", "L"), target),
        store.acceptEvent(event("plain-2"), target),
      ]);
      expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
      expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/statement timeout/);
    } finally {
      await holder.query("ROLLBACK");
      await holder.end();
    }
    expect(await store.countEvents({})).toBe(3);
  });

  it("gives a failure of the server to every accept of the batch at once, without trying each again", async () => {
    schema = testSchemaName();
    const store = await openStore({ url: schemaUrl(schema), synchronous: "FULL", statementTimeoutMs: 500 });
    stores.push(store);
    const pool = (store as unknown as { pool: pg.Pool }).pool;
    const statements: string[] = [];
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const config = args[0] as { name?: string } | string;
      statements.push(typeof config === "string" ? config.slice(0, 20) : (config.name ?? "unnamed"));
      return query(...args);
    };
    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    try {
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE "${schema}".events IN ACCESS EXCLUSIVE MODE`);
      const settled = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => store.acceptEvent({ id: `late-${i}`, name: "deal.close", payload: { i }, receivedAt: T0, source: "http", depth: 0 }, [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }])),
      );
      expect(settled.map((s) => s.status)).toEqual(Array(6).fill("rejected"));
      expect(String((settled[0] as PromiseRejectedResult).reason)).toMatch(/statement timeout/);
      // One statement for the six: none of them was tried again alone.
      expect(statements).toEqual(["hookd.accept.batch"]);
    } finally {
      await locker.query("ROLLBACK");
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
