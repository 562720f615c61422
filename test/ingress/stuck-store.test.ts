// A store that stops answering (here: PostgreSQL with the deliveries table locked by another
// session, so the daemon's store calls wait on the lock for good) cannot hold a SIGTERM: the
// daemon exits within delivery.drainMs plus its stop margin, saying what it abandoned.
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { dropSchema, PG_URL, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const CONFIG = `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: { ...catalog, "test.ping": z.object({ n: z.number().int() }) },
  delivery: { drainMs: 1000 },
});
`;
const PLUGIN = `import { on } from "hookd";\non("test.ping", (ping, ctx) => { ctx.log.info({ n: ping.n }, "ping handled"); });\n`;
const DRAIN_MS = 1000;
const STOP_MARGIN_MS = 5000;
const pgDown = await postgresUnavailable();

describe.skipIf(pgDown !== null)("a stuck store at stop", () => {
  const schema = testSchemaName();
  const project = new TestProject({ config: CONFIG, files: { "pinger.js": PLUGIN } });
  const daemon = new TestDaemon(project);
  const locker = new pg.Client({ connectionString: PG_URL });

  afterAll(async () => {
    await locker.end().catch(() => undefined);
    await daemon.stop();
    project.remove();
    await dropSchema(schema);
  });

  it("SIGTERM exits within delivery.drainMs + the stop margin while store calls hang on a lock", async () => {
    await daemon.start({ env: { HOOKD_STORE_URL: schemaUrl(schema) } });
    expect((await daemon.post("test.ping", { n: 1 })).status).toBe(202);
    await daemon.waitForLog((l) => l.msg === "ping handled");

    await locker.connect();
    await locker.query("BEGIN");
    await locker.query(`LOCK TABLE "${schema}".deliveries IN ACCESS EXCLUSIVE MODE`);
    // This event's store write now waits on the lock: a request in flight that never ends.
    const hanging = daemon.post("test.ping", { n: 2 }).catch(() => null);
    const waiting = async () => {
      const { rows } = await locker.query<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE NOT granted");
      return Number(rows[0]!.n) > 0;
    };
    const deadline = Date.now() + 10_000;
    while (!(await waiting())) {
      if (Date.now() > deadline) throw new Error("no store call of the daemon ever waited on the lock");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const started = Date.now();
    const code = await daemon.stop(30_000);
    const took = Date.now() - started;
    expect(took).toBeLessThan(DRAIN_MS + STOP_MARGIN_MS + 3000);
    expect(code).toBe(0);
    expect(daemon.logs.some((l) => l.code === "HOOKD_DAEMON_STOP_TIMEOUT")).toBe(true);
    await locker.query("ROLLBACK");
    await hanging;
  });
});
