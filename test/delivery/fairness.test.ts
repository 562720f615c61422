// Fairness against the real daemon, on both stores (issue 14, item 7): a plugin whose 200 runs
// wait on a slow API (a server here that holds every response until the test lets go) must not
// hold every dispatcher slot or the claim order; a neighbour's events, posted after the backlog,
// are handled while that backlog still waits. Then the slow plugin is deleted with its backlog
// still queued: the neighbour is still served, and the orphaned backlog is never claimed.
// Nothing here is timed: every step waits on the state it needs, and the assertions compare
// counts (held requests, pending runs) taken when the neighbour's work was done.
import { unlinkSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const CONCURRENCY = 8;
const BACKLOG = 200;
const PINGS = 20;

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: {
    "test.ping": z.object({ n: z.number().int() }),
    "slow.job": z.object({ n: z.number().int() }),
    "flood.fanout": z.object({ hop: z.number().int() }),
  },
  delivery: { concurrency: ${CONCURRENCY}, backoffMs: 50, maxBackoffMs: 200 },
  sandbox: { timeoutMs: 300000, fetchTimeoutMs: 300000, fetchAllowHosts: ["127.0.0.1"] },
});
`;

interface Run {
  plugin: string;
  status: string;
  attempts: number;
}

const postgresDown = await postgresUnavailable();
const stores = postgresDown ? ["sqlite"] : ["sqlite", "postgres"];
if (postgresDown) describe.skip(`postgres half skipped: ${postgresDown}`, () => it("needs PostgreSQL", () => undefined));

describe.each(stores)("fair share of the dispatcher (%s store)", (storeKind) => {
  const project = new TestProject({ fixtures: ["containment"], config: CONFIG });
  const daemon = new TestDaemon(project);
  const schema = testSchemaName();
  /** Requests of the slow API not answered yet. */
  const held: ServerResponse[] = [];
  let holding = true;
  const api = createServer((request, response) => {
    request.resume();
    if (holding) held.push(response);
    else response.end("ok");
  });

  const release = () => {
    holding = false;
    for (const response of held.splice(0)) response.end("ok");
  };
  const runsOf = async (plugin: string, status: string): Promise<Run[]> =>
    ((await daemon.getJson(`/api/runs?plugin=${plugin}&status=${status}&limit=1000`)) as { runs: Run[] }).runs;
  const handledPings = () => daemon.logs.filter((l) => l.msg === "bystander handled").length;

  beforeAll(async () => {
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    const { port } = api.address() as { port: number };
    const env: Record<string, string> = { SLOW_API: `http://127.0.0.1:${port}`, HOOKD_LOG_LEVEL: "info" };
    if (storeKind === "postgres") env.HOOKD_STORE_URL = schemaUrl(schema);
    await daemon.start({ env, timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    release();
    await daemon.stop();
    api.closeAllConnections();
    await new Promise((resolve) => api.close(resolve));
    project.remove();
    if (storeKind === "postgres") await dropSchema(schema);
  });

  it(`serves a neighbour posted after ${BACKLOG} slow runs while they all still wait`, { timeout: 240_000 }, async () => {
    for (let n = 0; n < BACKLOG; n += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => daemon.post("slow.job", { n: n + i }).then(({ status }) => expect(status).toBe(202))));
    }
    // The slow plugin borrows every slot the others leave idle, but one: concurrency - 1.
    await waitUntil(() => held.length >= CONCURRENCY - 1, { what: () => `${CONCURRENCY - 1} held slow requests (have ${held.length})` });

    const posted: number[] = [];
    for (let n = 0; n < PINGS; n++) {
      const { status } = await daemon.post("test.ping", { n });
      expect(status).toBe(202);
      posted.push(n);
    }
    await waitUntil(() => handledPings() >= PINGS, { timeoutMs: 120_000, what: () => `${PINGS} pings handled (have ${handledPings()})` });
    // A handler's log line comes from inside its run; the run's outcome is recorded after it, with
    // the next group commit. Wait for the state asserted below, not for the line.
    let pingsDone = 0;
    await waitUntil(async () => (pingsDone = (await runsOf("bystander", "done")).length) >= PINGS, { timeoutMs: 60_000, what: () => `${PINGS} ping runs recorded done (have ${pingsDone})` });

    // Every ping was done while no slow run had finished and the slow plugin never took the kept slot.
    expect(held.length).toBe(CONCURRENCY - 1);
    expect(await runsOf("slowpoke", "done")).toHaveLength(0);
    expect(await runsOf("slowpoke", "pending")).toHaveLength(BACKLOG - (CONCURRENCY - 1));
    expect(await runsOf("bystander", "done")).toHaveLength(PINGS);
  });

  it("keeps serving the neighbour when the slow plugin is deleted with its backlog queued, and never claims that backlog", { timeout: 240_000 }, async () => {
    const pendingBefore = (await runsOf("slowpoke", "pending")).length;
    expect(pendingBefore).toBeGreaterThan(0);
    unlinkSync(path.join(project.pluginsDir, "slowpoke.ts"));
    await daemon.waitForLog((l) => l.msg === "plugin removed" && l.plugin === "slowpoke", 60_000);
    // Its runs in flight end on the old version (the API answers now); the queue stays.
    release();
    await waitUntil(async () => (await runsOf("slowpoke", "running")).length === 0, { what: "the slow plugin's runs in flight to end" });

    const before = handledPings();
    for (let n = 0; n < PINGS; n++) expect((await daemon.post("test.ping", { n: 100 + n })).status).toBe(202);
    await waitUntil(() => handledPings() >= before + PINGS, { timeoutMs: 120_000, what: () => `${PINGS} more pings handled (have ${handledPings() - before})` });

    const orphaned = await runsOf("slowpoke", "pending");
    expect(orphaned).toHaveLength(pendingBefore);
    expect(orphaned.every((run) => run.attempts === 0)).toBe(true);
  });
});
