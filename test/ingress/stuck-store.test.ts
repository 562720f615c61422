// A store that stops answering (here: PostgreSQL with the deliveries table locked by another
// session). Its calls time out (store.statementTimeoutMs) and the dispatcher retries them, and
// a SIGTERM is not held by calls that still wait: the daemon exits within delivery.drainMs plus
// its stop margin, saying what it abandoned.
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, PG_URL, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const config = (statementTimeoutMs: number) => `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: { ...catalog, "test.ping": z.object({ n: z.number().int() }) },
  delivery: { drainMs: 1000 },
  store: { statementTimeoutMs: ${statementTimeoutMs} },
});
`;
const PLUGIN = `import { on } from "hookd";\non("test.ping", (ping, ctx) => { ctx.log.info({ n: ping.n }, "ping handled"); });\n`;
const DRAIN_MS = 1000;
const STOP_MARGIN_MS = 5000;
const pgDown = await postgresUnavailable();

describe.skipIf(pgDown !== null)("a stuck store", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A daemon on a fresh schema that has run one event; then its deliveries table is locked. */
  async function lockedDaemon(statementTimeoutMs: number) {
    const schema = testSchemaName();
    const project = new TestProject({ config: config(statementTimeoutMs), files: { "pinger.js": PLUGIN } });
    const daemon = new TestDaemon(project);
    const locker = new pg.Client({ connectionString: PG_URL });
    cleanups.push(async () => dropSchema(schema), async () => project.remove(), async () => void (await daemon.stop()), async () => locker.end().catch(() => undefined));
    await daemon.start({ env: { HOOKD_STORE_URL: schemaUrl(schema) } });
    expect((await daemon.post("test.ping", { n: 1 })).status).toBe(202);
    await waitUntil(async () => ((await daemon.getJson("/api/runs?status=done")) as { runs: unknown[] }).runs.length > 0, { timeoutMs: 10_000, intervalMs: 50, what: "the first run recorded done" });
    await locker.connect();
    await locker.query("BEGIN");
    await locker.query(`LOCK TABLE "${schema}".deliveries IN ACCESS EXCLUSIVE MODE`);
    return { daemon, locker };
  }

  it("the dispatcher's store calls time out and are retried instead of waiting for good", async () => {
    const { daemon, locker } = await lockedDaemon(1000);
    // The lease sweep (every 5 s) and the claim for this event wait on the lock, then time out.
    const hanging = daemon.post("test.ping", { n: 2 });
    const timedOut = await daemon.waitForLog((l) => l.component === "delivery" && JSON.stringify(l.err ?? "").includes("statement timeout"), 15_000);
    expect(timedOut.level).toBeGreaterThanOrEqual(40);
    // The accept waited on the lock too: a 5xx the sender retries, not a request hanging for good.
    expect((await hanging).status).toBeGreaterThanOrEqual(500);
    await locker.query("ROLLBACK");
    expect((await daemon.post("test.ping", { n: 3 })).status).toBe(202);
    await daemon.waitForLog((l) => l.msg === "ping handled" && l.n === 3, 15_000);
  });

  it("SIGTERM exits within delivery.drainMs + the stop margin while store calls hang on a lock", async () => {
    const { daemon, locker } = await lockedDaemon(600_000);
    // This event's store write waits on the lock: a request in flight that does not end.
    const hanging = daemon.post("test.ping", { n: 2 }).catch(() => null);
    await waitUntil(async () => Number((await locker.query<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE NOT granted")).rows[0]!.n) > 0, {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: "a store call of the daemon waiting on the lock",
    });
    const started = Date.now();
    const code = await daemon.stop(30_000);
    expect(Date.now() - started).toBeLessThan(DRAIN_MS + STOP_MARGIN_MS + 3000);
    expect(code).toBe(0);
    expect(daemon.logs.some((l) => l.code === "HOOKD_DAEMON_STOP_TIMEOUT")).toBe(true);
    await locker.query("ROLLBACK");
    await hanging;
  });
});
