/**
 * Several instances on PostgreSQL: events per second from the HTTP request to the handler's
 * completion recorded in the store, with 1, 2 and 3 hookd instances sharing one PostgreSQL
 * schema, beside one instance on the embedded SQLite store, in one run. The load is split evenly
 * over the running instances (autocannon on loopback, one load process per instance).
 *
 *   node --no-node-snapshot --import tsx bench/postgres.bench.ts [--quick]
 *
 * All instances and PostgreSQL share this machine's cores, so the growth with instances is the
 * growth on one box (what a second box would add is not measured here). Skipped (with the
 * reason) when PostgreSQL at 127.0.0.1 cannot be reached.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { dropSchema, PG_URL, postgresUnavailable, schemaUrl, testSchemaName } from "../test/store/stores.ts";
import { TestDaemon, TestProject } from "../test/helpers/daemon.ts";
import { ACTIVE_PLUGIN, BENCH_CONFIG, BENCH_EVENT, CompletionView, stampedBenchBody } from "./lib/hookd.ts";
import { runLoad, type LoadResult } from "./lib/load.ts";
import { pause, waitUntil } from "../test/helpers/wait.ts";
import { descendants, reapFamily } from "./lib/proc.ts";
import { figure, ratio, round, type Figure } from "./lib/stats.ts";

const SETTINGS = {
  quick: { rounds: 1, loadSec: 2, warmupSec: 1, connections: 48 },
  full: { rounds: 3, loadSec: 6, warmupSec: 2, connections: 48 },
};

const DRAIN_BOUND_MS = 60_000;

type Step = "sqlite1" | "postgres1" | "postgres2" | "postgres3";

interface Instance {
  daemon: TestDaemon;
  pid: number;
}

/** Counts deliveries in the store the instances share (or the SQLite file). */
interface Completions {
  lastDeliveryId(): Promise<number>;
  unfinished(): Promise<number>;
  doneSince(afterId: number): Promise<{ count: number; lastFinishedAt: number | null }>;
  close(): Promise<void>;
}

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const settings = SETTINGS[opts.quick ? "quick" : "full"];
  const unavailable = await postgresUnavailable();
  if (unavailable) {
    const result = { skipped: unavailable };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result;
  }
  const schema = testSchemaName();
  const config = BENCH_CONFIG.replace("events: {", "plugins: { watch: false },\n  events: {");
  const project = new TestProject({ config, files: { "active.ts": ACTIVE_PLUGIN } });
  const running: Instance[] = [];
  let sqlite: Instance | undefined;
  const views: Completions[] = [];
  try {
    sqlite = await startInstance(project, {});
    const sqliteView = sqliteCompletions(path.join(project.dir, "data", "hookd.db"));
    views.push(sqliteView);
    const pgView = await postgresCompletions(schema);
    views.push(pgView);
    // Started together (the migration lock makes the others wait for the first): faster than one by one.
    const startPg = async (n: number) => {
      const more = Array.from({ length: n - running.length }, (_, i) => `bench-${running.length + i}`);
      const started = await Promise.allSettled(more.map((id) => startInstance(project, { HOOKD_STORE_URL: schemaUrl(schema), HOOKD_INSTANCE_ID: id })));
      for (const result of started) if (result.status === "fulfilled") running.push(result.value);
      const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
    };
    const stopPgDownTo = async (n: number) => {
      while (running.length > n) await stopInstance(running.pop()!);
    };

    // Warm up (JIT, page caches, isolates) before anything counts.
    await measure([sqlite], sqliteView, settings.warmupSec, settings.connections);
    await startPg(1);
    await measure(running, pgView, settings.warmupSec, settings.connections);

    const samples: Record<Step, number[]> = { sqlite1: [], postgres1: [], postgres2: [], postgres3: [] };
    const accepted: Record<Step, number[]> = { sqlite1: [], postgres1: [], postgres2: [], postgres3: [] };
    const startedAt = performance.now();
    const errors: string[] = [];
    for (let round = 0; round < settings.rounds; round++) {
      // Three instances first, then one stopped (gracefully) before each smaller step.
      const steps: Array<[Step, () => Promise<Measured>]> = [
        ["sqlite1", () => measure([sqlite!], sqliteView, settings.loadSec, settings.connections)],
        ["postgres3", async () => (await startPg(3), measure(running, pgView, settings.loadSec, settings.connections))],
        ["postgres2", async () => (await stopPgDownTo(2), measure(running, pgView, settings.loadSec, settings.connections))],
        ["postgres1", async () => (await stopPgDownTo(1), measure(running, pgView, settings.loadSec, settings.connections))],
      ];
      for (const [step, go] of steps) {
        try {
          await pause(200); // a breather between two measurements, not a state
          const measured = await go();
          samples[step].push(measured.completionRate);
          accepted[step].push(measured.acceptRate);
        } catch (error) {
          samples[step].push(Number.NaN);
          errors.push(`${step} round ${round}: ${(error as Error).message}`);
        }
      }
    }

    const rates = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, figure(v, "events/s")])) as Record<Step, Figure>;
    const result: Record<string, unknown> = {
      settings: { ...settings, postgres: PG_URL.replace(/\/\/[^@]*@/, "//"), synchronousCommit: await serverSetting("synchronous_commit"), sqliteSynchronous: "FULL" },
      rates,
      accept: Object.fromEntries(Object.entries(accepted).map(([k, v]) => [k, figure(v, "req/s")])),
      ratios: {
        postgres1VsSqlite1: ratio(rates.postgres1, rates.sqlite1, "1 instance on PostgreSQL / 1 on SQLite"),
        postgres2VsPostgres1: ratio(rates.postgres2, rates.postgres1, "2 instances / 1 instance on PostgreSQL"),
        postgres3VsPostgres1: ratio(rates.postgres3, rates.postgres1, "3 instances / 1 instance on PostgreSQL"),
      },
      measuredSec: round((performance.now() - startedAt) / 1000, 1),
      ...(errors.length > 0 ? { errors } : {}),
    };
    process.stdout.write(
      `postgres bench: sqlite x1 ${round(rates.sqlite1.median)} | postgres x1 ${round(rates.postgres1.median)} | x2 ${round(rates.postgres2.median)} | x3 ${round(rates.postgres3.median)} events/s\n`,
    );
    return result;
  } finally {
    for (const instance of running.splice(0).reverse()) await stopInstance(instance).catch(() => undefined);
    if (sqlite) await stopInstance(sqlite).catch(() => undefined);
    for (const view of views) await view.close().catch(() => undefined);
    project.remove();
    await dropSchema(schema).catch(() => undefined);
  }
}

interface Measured {
  completionRate: number;
  acceptRate: number;
}

/** Loads every instance at once (connections split evenly) and waits for all runs to be recorded done. */
async function measure(instances: readonly Instance[], view: Completions, durationSec: number, connections: number): Promise<Measured> {
  const afterId = await view.lastDeliveryId();
  const per = Math.max(1, Math.floor(connections / instances.length));
  const loads: LoadResult[] = await Promise.all(
    instances.map((instance) => runLoad({ url: instance.daemon.url, path: `/events/${BENCH_EVENT}`, body: stampedBenchBody(), stamp: true, connections: per, durationSec })),
  );
  await waitUntil(async () => (await view.unfinished()) === 0, { timeoutMs: DRAIN_BOUND_MS, intervalMs: 20, what: "the backlog to drain" });
  const { count, lastFinishedAt } = await view.doneSince(afterId);
  const startedAt = Math.min(...loads.map((l) => l.startedAt));
  const end = lastFinishedAt ?? Date.now();
  return { completionRate: count / (Math.max(end - startedAt, 1) / 1000), acceptRate: loads.reduce((sum, l) => sum + l.rps, 0) };
}

async function startInstance(project: TestProject, env: Record<string, string>): Promise<Instance> {
  const daemon = new TestDaemon(project);
  try {
    // info: the "hookd ready" line is how the helper knows it started; runs log at debug only.
    await daemon.start({ env: { HOOKD_LOG_LEVEL: "info", ...env }, timeoutMs: 60_000 });
  } catch (error) {
    await daemon.kill().catch(() => undefined);
    throw error;
  }
  return { daemon, pid: daemon.pid! };
}

async function stopInstance(instance: Instance): Promise<void> {
  const family = descendants(instance.pid);
  await instance.daemon.stop(15_000);
  await reapFamily(family, 3000);
}

function sqliteCompletions(file: string): Completions {
  const view = new CompletionView(file);
  return {
    lastDeliveryId: async () => view.lastDeliveryId(),
    unfinished: async () => view.unfinished(),
    doneSince: async (afterId) => view.doneSince(afterId),
    close: async () => view.close(),
  };
}

async function postgresCompletions(schema: string): Promise<Completions> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const table = `"${schema}".deliveries`;
  // The first instance creates the tables; until then there is nothing to count.
  const exists = async () => (await client.query("SELECT to_regclass($1) AS t", [`"${schema}".deliveries`])).rows[0].t !== null;
  return {
    async lastDeliveryId() {
      if (!(await exists())) return 0;
      return Number((await client.query(`SELECT coalesce(max(id), 0) AS id FROM ${table}`)).rows[0].id);
    },
    async unfinished() {
      return Number((await client.query(`SELECT count(*) AS n FROM ${table} WHERE status IN ('pending', 'running')`)).rows[0].n);
    },
    async doneSince(afterId) {
      const row = (await client.query(`SELECT count(*) AS n, max(finished_at) AS last FROM ${table} WHERE id > $1 AND status = 'done'`, [afterId])).rows[0];
      return { count: Number(row.n), lastFinishedAt: row.last === null ? null : Number(row.last) };
    },
    close: () => client.end(),
  };
}

async function serverSetting(name: string): Promise<string> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return String((await client.query("SELECT current_setting($1) AS v", [name])).rows[0].v);
  } finally {
    await client.end();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const quick = process.argv.includes("--quick");
  const result = await run({ quick });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.exit(0);
}
