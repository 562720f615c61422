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
 *
 * Beside each PostgreSQL rate, the CPU time the server's own processes spent per event handled
 * (`serverCpuPerEventUs`, from /proc, see lib/pg-server-cpu.ts) and what it implies for one
 * server behind N instances: events per second one server core can take
 * (`eventsPerServerCoreSecond`), and how many instances at the one-instance rate that is.
 *
 * Quick mode (the harness gives it 60 s): one round of 2 s loads, each step once, with tighter
 * bounds on start-up and drain so that a stuck step fails with its reason instead of the whole
 * module timing out; the full mode repeats the rounds three times with 6 s loads.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { dropSchema, PG_URL, postgresUnavailable, schemaUrl, testSchemaName } from "../test/store/stores.ts";
import { TestDaemon, TestProject } from "../test/helpers/daemon.ts";
import { ACTIVE_PLUGIN, BENCH_CONFIG, BENCH_EVENT, CompletionView, stampedBenchBody } from "./lib/hookd.ts";
import { runLoad, type LoadResult } from "./lib/load.ts";
import { pause, waitUntil } from "../test/helpers/wait.ts";
import { serverCpuBetween, serverCpuUnavailable, snapshotServerCpu, type ServerCpuWindow } from "./lib/pg-server-cpu.ts";
import { descendants, reapFamily } from "./lib/proc.ts";
import { figure, ratio, round, type Figure } from "./lib/stats.ts";
import { progressFor } from "./lib/progress.ts";

const progress = progressFor("postgres");

/**
 * `budgetMs` counts from the module's start: a step that would begin later is skipped and said
 * so, leaving the instances' graceful stop inside the harness's bound (60 s quick, 180 s full).
 */
const SETTINGS = {
  quick: { rounds: 1, loadSec: 2, warmupSec: 1, connections: 48, drainBoundMs: 15_000, startBoundMs: 30_000, budgetMs: 40_000 },
  full: { rounds: 3, loadSec: 6, warmupSec: 2, connections: 48, drainBoundMs: 60_000, startBoundMs: 60_000, budgetMs: 140_000 },
};

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
  const deadline = performance.now() + settings.budgetMs;
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
    progress("starting hookd on SQLite");
    sqlite = await startInstance(project, {}, settings.startBoundMs);
    const sqliteView = sqliteCompletions(path.join(project.dir, "data", "hookd.db"));
    views.push(sqliteView);
    const pgView = await postgresCompletions(schema);
    views.push(pgView);
    // The server's CPU is read only where its processes are this machine's and visible.
    const cpuUnavailable = await serverCpuUnavailable(pgView.client, PG_URL);
    const serverPort = Number(new URL(PG_URL).port || 5432);
    // Started together (the migration lock makes the others wait for the first): faster than one by one.
    const startPg = async (n: number) => {
      const more = Array.from({ length: n - running.length }, (_, i) => `bench-${running.length + i}`);
      if (more.length === 0) return;
      progress(`starting ${more.length} instance(s) on PostgreSQL`);
      const launched = await Promise.allSettled(
        more.map((id) => startInstance(project, { HOOKD_STORE_URL: schemaUrl(schema), HOOKD_INSTANCE_ID: id }, settings.startBoundMs)),
      );
      for (const result of launched) if (result.status === "fulfilled") running.push(result.value);
      const failed = launched.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
      progress(`${running.length} instance(s) on PostgreSQL ready`);
    };
    const stopPgDownTo = async (n: number) => {
      while (running.length > n) await stopInstance(running.pop()!);
    };

    // Warm up (JIT, page caches, isolates) before anything counts.
    progress("warming up");
    await measure([sqlite], sqliteView, { ...settings, loadSec: settings.warmupSec });
    await startPg(1);
    await measure(running, pgView, { ...settings, loadSec: settings.warmupSec });

    const samples: Record<Step, number[]> = { sqlite1: [], postgres1: [], postgres2: [], postgres3: [] };
    const accepted: Record<Step, number[]> = { sqlite1: [], postgres1: [], postgres2: [], postgres3: [] };
    const serverCpu: Record<PostgresStep, number[]> = { postgres1: [], postgres2: [], postgres3: [] };
    const serverWindows: ServerCpuWindow[] = [];
    const cpuProbe = cpuUnavailable === null ? { serverPort } : undefined;
    const measuredAt = performance.now();
    const errors: string[] = [];
    for (let r = 0; r < settings.rounds; r++) {
      // Three instances first, then one stopped (gracefully) before each smaller step.
      const steps: Array<[Step, () => Promise<Measured>]> = [
        ["sqlite1", () => measure([sqlite!], sqliteView, settings)],
        ["postgres3", async () => (await startPg(3), measure(running, pgView, settings, cpuProbe))],
        ["postgres2", async () => (await stopPgDownTo(2), measure(running, pgView, settings, cpuProbe))],
        ["postgres1", async () => (await stopPgDownTo(1), measure(running, pgView, settings, cpuProbe))],
      ];
      for (const [step, go] of steps) {
        if (performance.now() > deadline) {
          samples[step].push(Number.NaN);
          errors.push(`${step} round ${r + 1}: skipped, the module's ${settings.budgetMs / 1000} s budget was used up`);
          progress(`round ${r + 1} ${step}: skipped (budget used up)`);
          continue;
        }
        try {
          await pause(200); // a breather between two measurements, not a state
          const measured = await go();
          samples[step].push(measured.completionRate);
          accepted[step].push(measured.acceptRate);
          let cpuLine = "";
          if (step !== "sqlite1" && measured.serverCpu) {
            const window = measured.serverCpu;
            serverWindows.push(window);
            const perEvent = window.attributed ? (window.hookdMs * 1000) / Math.max(measured.completed, 1) : Number.NaN;
            if (!window.attributed) errors.push(`${step} round ${r + 1}: no connection of the hookd instances to the server was found in /proc; its server CPU is left out`);
            serverCpu[step].push(perEvent);
            cpuLine = `, server ${round(perEvent)} µs CPU/event`;
          }
          progress(`round ${r + 1} ${step}: ${round(measured.completionRate)} events/s (${measured.completed} events)${cpuLine}`);
        } catch (error) {
          samples[step].push(Number.NaN);
          errors.push(`${step} round ${r + 1}: ${(error as Error).message}`);
          progress(`round ${r + 1} ${step} failed: ${(error as Error).message.split("\n")[0]}`);
        }
      }
    }

    const rates = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, figure(v, "events/s")])) as Record<Step, Figure>;
    const result: Record<string, unknown> = {
      settings: {
        ...settings,
        postgres: PG_URL.replace(/\/\/[^@]*@/, "//"),
        synchronousCommit: await serverSetting("synchronous_commit"),
        sqliteSynchronous: "FULL",
        quickMeasures: opts.quick ? "one round: each step once, 2 s loads" : undefined,
      },
      rates,
      accept: Object.fromEntries(Object.entries(accepted).map(([k, v]) => [k, figure(v, "req/s")])),
      ratios: {
        postgres1VsSqlite1: ratio(rates.postgres1, rates.sqlite1, "1 instance on PostgreSQL / 1 on SQLite"),
        postgres2VsPostgres1: ratio(rates.postgres2, rates.postgres1, "2 instances / 1 instance on PostgreSQL"),
        postgres3VsPostgres1: ratio(rates.postgres3, rates.postgres1, "3 instances / 1 instance on PostgreSQL"),
      },
      ...serverCpuFigures(cpuUnavailable, serverCpu, serverWindows, rates.postgres1),
      measuredSec: round((performance.now() - measuredAt) / 1000, 1),
      ...(errors.length > 0 ? { errors } : {}),
    };
    process.stdout.write(
      `postgres bench: sqlite x1 ${round(rates.sqlite1.median)} | postgres x1 ${round(rates.postgres1.median)} | x2 ${round(rates.postgres2.median)} | x3 ${round(rates.postgres3.median)} events/s\n`,
    );
    return result;
  } finally {
    progress("stopping");
    for (const instance of running.splice(0).reverse()) await stopInstance(instance).catch(() => undefined);
    if (sqlite) await stopInstance(sqlite).catch(() => undefined);
    for (const view of views) await view.close().catch(() => undefined);
    project.remove();
    await dropSchema(schema).catch(() => undefined);
  }
}

type PostgresStep = Exclude<Step, "sqlite1">;

/**
 * The server's CPU per event handled, over every PostgreSQL window (1, 2 and 3 instances), and
 * what it implies for one server behind N instances; or why it was not measured.
 */
function serverCpuFigures(
  unavailable: string | null,
  perStep: Record<PostgresStep, number[]>,
  windows: readonly ServerCpuWindow[],
  onePerInstance: Figure,
): Record<string, unknown> {
  if (unavailable !== null) {
    const why = { unavailable: `PostgreSQL's server CPU not measured: ${unavailable}` };
    return { serverCpuPerEventUs: why, eventsPerServerCoreSecond: why };
  }
  const all = figure([...perStep.postgres1, ...perStep.postgres2, ...perStep.postgres3], "µs server CPU/event");
  if (all.n === 0) {
    const why = { unavailable: "PostgreSQL's server CPU not measured: no PostgreSQL step finished with its connections found (see errors)" };
    return { serverCpuPerEventUs: why, eventsPerServerCoreSecond: why };
  }
  const perCore = 1e6 / all.median;
  const sum = (key: "totalMs" | "benchMs" | "otherClientsMs" | "hookdMs") => round(windows.reduce((s, w) => s + w[key], 0));
  const otherMs = sum("otherClientsMs");
  return {
    serverCpuPerEventUs: all,
    eventsPerServerCoreSecond: round(perCore),
    serverCpu: {
      perEventByInstances: {
        "1": figure(perStep.postgres1, "µs server CPU/event"),
        "2": figure(perStep.postgres2, "µs server CPU/event"),
        "3": figure(perStep.postgres3, "µs server CPU/event"),
      },
      // One server core keeps up with this many instances, each at the one-instance rate measured here.
      instancesPerServerCore: Number.isFinite(onePerInstance.median) && onePerInstance.median > 0 ? round(perCore / onePerInstance.median, 2) : undefined,
      windowsMs: { total: sum("totalMs"), hookd: sum("hookdMs"), benchPolling: sum("benchMs"), otherClients: otherMs },
      ...(otherMs > 0
        ? { note: `other clients of the server used ${otherMs} ms of its CPU during the windows (left out; their share of the WAL writer's and checkpointer's work is not)` }
        : {}),
    },
  };
}

interface Measured {
  completionRate: number;
  acceptRate: number;
  /** Events handled in the window. */
  completed: number;
  /** The PostgreSQL server's CPU during the window, when asked for. */
  serverCpu?: ServerCpuWindow;
}

/**
 * Loads every instance at once (connections split evenly) and waits for all runs to be recorded
 * done. With `cpu`, also reads the server's CPU from just before the load to the last count.
 */
async function measure(
  instances: readonly Instance[],
  view: Completions,
  settings: { loadSec: number; connections: number; drainBoundMs: number },
  cpu?: { serverPort: number },
): Promise<Measured> {
  const afterId = await view.lastDeliveryId();
  const per = Math.max(1, Math.floor(settings.connections / instances.length));
  const pids = instances.map((i) => i.pid);
  const before = cpu ? snapshotServerCpu(pids, cpu.serverPort) : undefined;
  const loads: LoadResult[] = await Promise.all(
    instances.map((instance) =>
      runLoad({ url: instance.daemon.url, path: `/events/${BENCH_EVENT}`, body: stampedBenchBody(), stamp: true, connections: per, durationSec: settings.loadSec }),
    ),
  );
  await waitUntil(async () => (await view.unfinished()) === 0, { timeoutMs: settings.drainBoundMs, intervalMs: 20, what: "the backlog to drain" });
  const { count, lastFinishedAt } = await view.doneSince(afterId);
  const serverCpu = cpu && before ? serverCpuBetween(before, snapshotServerCpu(pids, cpu.serverPort)) : undefined;
  const startedAt = Math.min(...loads.map((l) => l.startedAt));
  const end = lastFinishedAt ?? Date.now();
  return {
    completionRate: count / (Math.max(end - startedAt, 1) / 1000),
    acceptRate: loads.reduce((sum, l) => sum + l.rps, 0),
    completed: count,
    ...(serverCpu ? { serverCpu } : {}),
  };
}

async function startInstance(project: TestProject, env: Record<string, string>, timeoutMs: number): Promise<Instance> {
  const daemon = new TestDaemon(project);
  try {
    // info: the "hookd ready" line is how the helper knows it started; runs log at debug only.
    await daemon.start({ env: { HOOKD_LOG_LEVEL: "info", ...env }, timeoutMs });
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

async function postgresCompletions(schema: string): Promise<Completions & { client: pg.Client }> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const table = `"${schema}".deliveries`;
  // The first instance creates the tables; until then there is nothing to count.
  const exists = async () => (await client.query("SELECT to_regclass($1) AS t", [`"${schema}".deliveries`])).rows[0].t !== null;
  return {
    client,
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
