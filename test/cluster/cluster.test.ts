// Three daemons on one PostgreSQL schema share the work; one is killed with SIGKILL mid-run and
// restarted. Every accepted event is handled at least once, no run is recorded done by two
// instances, and the events of one deal reach the handler in acceptance order.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sink } from "../delivery/sink.ts";
import { TestDaemon, TestProject, type LogLine } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, PG_URL, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const CONFIG = `
import { defineConfig } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: catalog,
  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 5 },
  // A short run timeout keeps the lease short (2 x timeout + 10 s): the killed instance's runs come back sooner.
  sandbox: { timeoutMs: 500, fetchAllowHosts: process.env.SINK_URL ? [new URL(process.env.SINK_URL).host] : [] },
});
`;

const PLUGIN = `
import { on, plugin } from "hookd";
plugin({ fetch: ["http://127.0.0.1:*/*"], secrets: ["SINK_URL", "CLUSTER_NODE"], maxConcurrentRuns: 16 });
on("deal.close", async (deal, ctx) => {
  const response = await ctx.fetch(ctx.secrets.SINK_URL + "/cluster", {
    method: "POST",
    body: JSON.stringify({ did: deal.did, n: deal.autor, node: ctx.secrets.CLUSTER_NODE, attempt: ctx.event.attempt }),
  });
  if (!response.ok) throw new Error("sink answered " + response.status);
});
`;

const DEALS = 6;
const PER_DEAL = 15;

const postgresDown = await postgresUnavailable();
const suite = postgresDown ? describe.skip : describe;
if (postgresDown) describe.skip(`cluster test skipped: ${postgresDown}`, () => it("needs PostgreSQL", () => undefined));

suite("three instances on one PostgreSQL", () => {
  const schema = testSchemaName();
  const url = schemaUrl(schema);
  const project = new TestProject({ config: CONFIG, files: { "deals.ts": PLUGIN } });
  const sink = new Sink();
  const daemons: TestDaemon[] = [];
  let dying = false;
  /** Every daemon ever started, the killed one included: their logs are the evidence. */
  const everyDaemon: TestDaemon[] = [];

  const startNode = async (node: number) => {
    const daemon = new TestDaemon(project);
    everyDaemon.push(daemon);
    await daemon.start({ env: { HOOKD_STORE_URL: url, SINK_URL: sink.url, CLUSTER_NODE: `node-${node}`, HOOKD_INSTANCE_ID: `node-${node}` }, timeoutMs: 60_000 });
    daemons[node] = daemon;
    return daemon;
  };

  beforeAll(async () => {
    await sink.start();
    // Some slowness at the sink keeps runs busy; node-1's runs hang once it is about to die.
    sink.behaviour = (record) => (dying && record.body.node === "node-1" ? { hang: true } : { delayMs: 15 });
    await Promise.all([0, 1, 2].map(startNode));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(everyDaemon.map((d) => d.kill()));
    await sink.close();
    project.remove();
    await dropSchema(schema);
  });

  it("shares the work, survives a SIGKILL mid-run, and keeps per-key order", async () => {
    // Each instance names itself in GET /api/plugins.
    const answers = await Promise.all(daemons.map((d) => d.getJson("/api/plugins")));
    expect(answers.map((a) => a.instance)).toEqual(["node-0", "node-1", "node-2"]);
    expect(answers.every((a) => a.plugins.some((p: { name: string }) => p.name === "deals"))).toBe(true);

    const accepted = new Map<string, string>(); // `${did}:${n}` -> event id
    let killed = false;
    let restarted: Promise<TestDaemon> | undefined;
    let hung: { did: number; n: number } | undefined;
    let killedAt = 0;
    let posted = 0;
    /** Posts the events of one deal one after another (acceptance order), rotating over the instances. */
    const postDeal = async (did: number) => {
      for (let n = 1; n <= PER_DEAL; n++) {
        const body = { did, autor: n, summa: String(n * 10), status: "won" };
        // A post to the dying instance may have been stored without an answer: the same
        // Idempotency-Key to another instance finds it instead of storing it twice.
        for (let node = (did + n) % 3, tries = 0; ; node = (node + 1) % 3, tries++) {
          const daemon = daemons[node]!;
          const answer = await daemon.post("deal.close", body, { "idempotency-key": `deal-${did}-${n}` }).catch(() => undefined);
          if (answer?.status === 202) {
            accepted.set(`${did}:${n}`, answer.body.id as string);
            break;
          }
          if (tries > 20) throw new Error(`event ${did}:${n} not accepted: ${JSON.stringify(answer)}`);
        }
        posted++;
        if (!killed && posted === Math.floor((DEALS * PER_DEAL) / 3)) {
          killed = true;
          // Mid-run: node-1 is inside a run (its request hangs at the sink) when it dies, so it
          // leaves a lease it will never finish.
          const from = sink.records.length;
          dying = true;
          await sink.waitFor((records) => records.slice(from).some((r) => r.body.node === "node-1"), 20_000);
          hung = sink.records.slice(from).find((r) => r.body.node === "node-1")!.body as { did: number; n: number };
          await daemons[1]!.kill();
          killedAt = performance.now();
          dying = false;
          restarted = startNode(1);
        }
      }
    };
    await Promise.all(Array.from({ length: DEALS }, (_, i) => postDeal(i + 1)));
    expect(accepted.size).toBe(DEALS * PER_DEAL);
    expect(restarted).toBeDefined();
    await restarted;

    // Every accepted event handled at least once (the killed instance's leases expire and are taken over).
    const handled = (records: typeof sink.records) => new Set(records.filter((r) => r.path === "/cluster").map((r) => `${r.body.did}:${r.body.n}`));
    await sink.waitFor((records) => handled(records).size === accepted.size, 90_000);
    for (const key of accepted.keys()) expect(handled(sink.records).has(key)).toBe(true);

    // The run node-1 died in was taken over once its lease expired, and counted as a new attempt.
    const takenOver = sink.records.filter((r) => r.path === "/cluster" && r.body.did === hung!.did && r.body.n === hung!.n && r.at > killedAt);
    expect(takenOver.length).toBeGreaterThanOrEqual(1);
    expect(takenOver.every((r) => r.body.attempt >= 2)).toBe(true);

    // Per-key order: per deal, the handler saw n never go backwards (a run the killed instance
    // did not get to record is repeated before the next event of its deal, so n may repeat).
    for (let did = 1; did <= DEALS; did++) {
      const seen = sink.records.filter((r) => r.path === "/cluster" && r.body.did === did).map((r) => r.body.n as number);
      const sorted = [...seen].sort((a, b) => a - b);
      expect(seen).toEqual(sorted);
    }

    // The store agrees: every delivery done, once per accepted event.
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    let statuses: Array<{ status: string; n: string }>;
    try {
      const read = async () => (await client.query(`SELECT status, count(*) AS n FROM "${schema}".deliveries GROUP BY status`)).rows as Array<{ status: string; n: string }>;
      // All done within the bound, or the counts as they stand then (asserted below).
      statuses = await waitUntil(async () => {
        const rows = await read();
        return rows.length === 1 && rows[0]!.status === "done" && rows;
      }, { timeoutMs: 30_000, intervalMs: 100 }).catch(read);
    } finally {
      await client.end();
    }
    expect(statuses!).toEqual([{ status: "done", n: String(DEALS * PER_DEAL) }]);

    // No delivery was recorded done by two instances: a finish after a lost lease is discarded.
    const doneBy = new Map<string, number>();
    for (const daemon of everyDaemon) {
      for (const line of daemon.logs.filter((l: LogLine) => l.msg === "run done")) doneBy.set(String(line.runId), (doneBy.get(String(line.runId)) ?? 0) + 1);
    }
    // (A SIGKILL may cut the killed instance's last log lines: fewer lines than runs is allowed, a repeat is not.)
    expect(doneBy.size).toBeGreaterThan(DEALS * PER_DEAL / 2);
    expect(doneBy.size).toBeLessThanOrEqual(DEALS * PER_DEAL);
    expect([...doneBy.values()].every((n) => n === 1)).toBe(true);
    // Every instance did some of the work.
    const nodes = new Set(sink.records.map((r) => r.body.node));
    expect(nodes).toEqual(new Set(["node-0", "node-1", "node-2"]));
  }, 180_000);
});
