// A payload nested thousands deep that got into the store past the ingress (planted directly
// with the store's own API, which validates nothing) is dead-lettered with a code; the other
// deliveries of its batch run, and the daemon stops promptly. Against SQLite and PostgreSQL.
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PostgresStore } from "../../core/store/postgres.ts";
import { SqliteStore } from "../../core/store/sqlite.ts";
import type { Store } from "../../core/store/types.ts";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const RECORDER = `
import { on } from "hookd";
on("client.edit", (event, ctx) => { ctx.log.info({ clid: event.clid }, "edit recorded"); });
`;

const DEEP = 3_250;
const nested = (depth: number): unknown => JSON.parse(`${"[".repeat(depth)}1${"]".repeat(depth)}`);
const pgDown = await postgresUnavailable();

async function plant(store: Store): Promise<void> {
  for (const clid of [1, 2, 3]) {
    const payload = { clid, autor: 1, user: 1, newparam: clid === 2 ? { x: nested(DEEP) } : { x: 1 } };
    await store.acceptEvent(
      { id: `planted-${clid}`, name: "client.edit", payload, receivedAt: Date.now(), source: "http", depth: 0 },
      [{ kind: "handler", plugin: "recorder", target: "client.edit", maxAttempts: 3, orderKey: `clid:${clid}` }],
    );
  }
  await store.close();
}

/** The shared waitUntil, with this file's argument order, bound and pace. */
const waitFor = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> => waitUntil(check, { what, timeoutMs, intervalMs: 50 });

const cases = [
  { name: "sqlite", skip: false },
  { name: "postgres", skip: pgDown !== null },
];

describe.each(cases)("a poisoned row in the $name store", ({ name, skip }) => {
  const schema = testSchemaName();
  const project = new TestProject({ files: { "recorder.js": RECORDER } });
  const daemon = new TestDaemon(project);
  const env: Record<string, string> = name === "postgres" ? { HOOKD_STORE_URL: schemaUrl(schema) } : {};

  afterAll(async () => {
    await daemon.stop();
    project.remove();
    if (name === "postgres" && !skip) await dropSchema(schema);
  });

  it.skipIf(skip)("is dead-lettered with HOOKD_STORE_UNREADABLE, its batch neighbours run, SIGTERM exits", async () => {
    await plant(name === "postgres" ? await PostgresStore.open({ url: schemaUrl(schema), maxConnections: 2 }) : new SqliteStore({ file: path.join(project.dir, "data", "hookd.db") }));
    await daemon.start({ env });
    await daemon.waitForLogs((l) => l.msg === "edit recorded", 2);
    const recorded = daemon.logs.filter((l) => l.msg === "edit recorded").map((l) => l.clid);
    expect(recorded.sort()).toEqual([1, 3]);
    const dead = await waitFor("the planted run to be dead", async () => {
      const { runs } = (await daemon.getJson("/api/runs?status=dead")) as { runs: Array<{ eventId: string; lastError: { code: string } | null }> };
      return runs.find((run) => run.eventId === "planted-2");
    });
    expect(dead.lastError?.code).toBe("HOOKD_STORE_UNREADABLE");
    // The plugin logs during the run; the run is recorded done a commit later.
    const done = await waitFor("both neighbours to be recorded done", async () => {
      const { runs } = (await daemon.getJson("/api/runs?status=done")) as { runs: Array<{ eventId: string }> };
      return runs.length >= 2 ? runs.map((r) => r.eventId).sort() : undefined;
    });
    expect(done).toEqual(["planted-1", "planted-3"]);
    // Nothing is left hanging: the stop ends well inside the drain budget.
    const started = Date.now();
    expect(await daemon.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
