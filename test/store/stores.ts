/**
 * The stores the behaviour matrix runs against: SQLite in a temporary folder, and PostgreSQL on
 * 127.0.0.1 in a schema of its own (`hookd_test_<random>`), dropped afterwards.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterEach, beforeEach, describe, it } from "vitest";
import { PostgresStore } from "../../core/store/postgres.ts";
import { SqliteStore } from "../../core/store/sqlite.ts";
import type { DeliveryTarget, NewEvent, Store } from "../../core/store/types.ts";

/** The test server (trust auth, database `test`); HOOKD_TEST_PG_URL overrides it. */
export const PG_URL = process.env.HOOKD_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Why PostgreSQL cannot be used here, or null when it answers. Checked once per file. */
export async function postgresUnavailable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (error) {
    return `PostgreSQL at ${PG_URL} cannot be reached (${(error as Error).message}); start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function testSchemaName(): string {
  return `hookd_test_${randomBytes(6).toString("hex")}`;
}

/** The URL of a schema of the test database. */
export function schemaUrl(schema: string): string {
  const url = new URL(PG_URL);
  url.searchParams.set("schema", schema);
  return url.toString();
}

export async function dropSchema(schema: string): Promise<void> {
  if (!/^hookd_test_[0-9a-f]+$/.test(schema)) throw new Error(`refusing to drop ${schema}`);
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** A fresh, empty store; `open` again gives another instance on the same data; `dispose` removes it all. */
export interface StoreFixture {
  store: Store;
  open(): Promise<Store>;
  dispose(): Promise<void>;
}

export interface StoreFactory {
  name: "sqlite" | "postgres";
  create(): Promise<StoreFixture>;
}

export const sqliteFactory: StoreFactory = {
  name: "sqlite",
  async create() {
    const dir = mkdtempSync(path.join(tmpdir(), "hookd-store-"));
    const file = path.join(dir, "hookd.db");
    const opened: Store[] = [];
    const open = async () => {
      const store = new SqliteStore({ file });
      opened.push(store);
      return store;
    };
    const store = await open();
    return {
      store,
      open,
      async dispose() {
        for (const s of opened) await s.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export const postgresFactory: StoreFactory = {
  name: "postgres",
  async create() {
    const schema = testSchemaName();
    const opened: Store[] = [];
    const open = async () => {
      const store = await PostgresStore.open({ url: schemaUrl(schema), maxConnections: 4 });
      opened.push(store);
      return store;
    };
    try {
      const store = await open();
      return {
        store,
        open,
        async dispose() {
          for (const s of opened) await s.close();
          await dropSchema(schema);
        },
      };
    } catch (error) {
      await dropSchema(schema);
      throw error;
    }
  },
};

/**
 * The stores a matrix file runs against: SQLite always, PostgreSQL when it answers. Without it,
 * the file says so in a skipped block named after `matrix` rather than passing quietly.
 */
export async function matrixFactories(matrix: string): Promise<StoreFactory[]> {
  const postgresDown = await postgresUnavailable();
  if (postgresDown) describe.skip(`postgres ${matrix} skipped: ${postgresDown}`, () => it("needs PostgreSQL", () => undefined));
  return postgresDown ? [sqliteFactory] : [sqliteFactory, postgresFactory];
}

/** A describe block's store: a fresh one per test, and the events and deliveries the tests accept. */
export interface StoreUnderTest {
  readonly fixture: StoreFixture;
  readonly store: Store;
  /** The next event `ev-1`, `ev-2`, ... (numbered per test), received at `t0`, with overrides. */
  event(overrides?: Partial<NewEvent>): NewEvent;
  /** A handler delivery of `deal.close` for `plugin`, three attempts, with overrides. */
  handler(plugin: string, overrides?: Partial<DeliveryTarget>): DeliveryTarget;
}

/** `opened` gets each test's fresh fixture (for a describe block's own `store` and `fixture` variables). */
export function useStore(factory: StoreFactory, t0: number, opened?: (fixture: StoreFixture) => void): StoreUnderTest {
  let fixture: StoreFixture | undefined;
  let nextEvent = 0;
  beforeEach(async () => {
    nextEvent = 0;
    fixture = await factory.create();
    opened?.(fixture);
  });
  afterEach(async () => {
    await fixture?.dispose();
    fixture = undefined;
  });
  const current = (): StoreFixture => {
    if (!fixture) throw new Error("the store exists only inside a test");
    return fixture;
  };
  return {
    get fixture() {
      return current();
    },
    get store() {
      return current().store;
    },
    event(overrides = {}) {
      nextEvent++;
      return { id: `ev-${nextEvent}`, name: "deal.close", payload: { did: nextEvent }, receivedAt: t0, source: "http", depth: 0, ...overrides };
    },
    handler: (plugin, overrides = {}) => ({ kind: "handler", plugin, target: "deal.close", maxAttempts: 3, ...overrides }),
  };
}
