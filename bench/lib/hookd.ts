/**
 * hookd as the benchmarks run it: the real daemon (`bin/hookd.js start`) as a child process in a
 * temporary project, with a bench event of 1 KB, one active plugin and any number of idle ones,
 * and a read-only view of its SQLite file to count completions.
 *
 * Completions are read from the database rather than from the HTTP API: the store records each
 * finish with its time, so a rate or a latency can be computed to the millisecond without adding
 * requests to the server being measured. The queries name the store's tables; if the schema
 * changes, they are the place to follow it.
 */
import path from "node:path";
import Database from "better-sqlite3";
import { TestDaemon, TestProject } from "../../test/helpers/daemon.ts";
import { runLoad, type LoadOptions, type LoadResult } from "./load.ts";
import { waitUntil } from "../../test/helpers/wait.ts";
import { descendants, reapFamily } from "./proc.ts";

export const BENCH_EVENT = "bench.ping";

/**
 * The bench event: the fields of a CRM deal plus padding to 1 KB, so every system compared
 * parses, copies and hands over the same amount of data.
 */
export const BENCH_CONFIG = `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: {
    ...catalog,
    "${BENCH_EVENT}": z.object({
      sentAt: z.number().optional(),
      did: z.number().int(), autor: z.number().int(), summa: z.string(), status: z.string(), pad: z.string(),
    }),
  },
});
`;

/** The handler's work, the same everywhere in the bench: touch a field, throw on nonsense. */
export const HANDLER_BODY = `if (event.did < 0) throw new Error("negative did");`;

export const ACTIVE_PLUGIN = `import { on } from "hookd";
on("${BENCH_EVENT}", async (event) => { ${HANDLER_BODY} });
`;

/** A plugin that is loaded but never runs for the bench event (it listens to another one). */
export const IDLE_PLUGIN = `import { on } from "hookd";
on("client.add", async (event) => { if (event === null) throw new Error("no event"); });
`;

/** A 1 KB bench event as an object (`sentAt` left out). */
export function benchEvent(did = 1): Record<string, unknown> {
  const base = { did, autor: 3, summa: "1500.00", status: "won", pad: "" };
  const pad = 1024 - JSON.stringify(base).length;
  return { ...base, pad: "x".repeat(Math.max(pad, 0)) };
}

/** The same event as a request body whose `sentAt` the load worker stamps at sending. */
export function stampedBenchBody(): string {
  return `{"sentAt":"@@sentAt@@",${JSON.stringify(benchEvent()).slice(1)}`;
}

export interface BenchHookd {
  daemon: TestDaemon;
  project: TestProject;
  url: string;
  /** Spawn to the "hookd ready" log line. */
  startupMs: number;
  plugins: number;
  /** The daemon's pid; its descendants are the sandbox process and esbuild's service. */
  pid: number;
  db: CompletionView;
  stop(): Promise<void>;
}

export interface StartHookdOptions {
  /** Plugins loaded in total: one active, the rest idle. */
  plugins: number;
  /** Extra environment (NODE_OPTIONS=--cpu-prof ... to profile). */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Plugin files (name -> source) instead of 1 active + plugins-1 idle ones. */
  files?: Record<string, string>;
  /** events.config.ts instead of BENCH_CONFIG. */
  config?: string;
}

/** Starts the daemon with 1 active and plugins-1 idle plugins; resolves once it is ready. */
export async function startHookd(options: StartHookdOptions): Promise<BenchHookd> {
  const files: Record<string, string> = options.files ?? { "active.ts": ACTIVE_PLUGIN };
  if (!options.files) for (let i = 1; i < options.plugins; i++) files[`idle-${String(i).padStart(4, "0")}.ts`] = IDLE_PLUGIN;
  const project = new TestProject({ config: options.config ?? BENCH_CONFIG, files });
  const daemon = new TestDaemon(project);
  const started = performance.now();
  try {
    await daemon.start({ env: { HOOKD_LOG_LEVEL: "info", ...options.env }, timeoutMs: options.timeoutMs ?? 120_000 });
  } catch (error) {
    await daemon.kill().catch(() => undefined);
    project.remove();
    throw error;
  }
  const startupMs = performance.now() - started;
  const pid = daemon.pid!;
  const db = new CompletionView(path.join(project.dir, "data", "hookd.db"));
  return {
    daemon,
    project,
    url: daemon.url,
    startupMs,
    plugins: options.plugins,
    pid,
    db,
    async stop() {
      db.close();
      const family = descendants(pid);
      await daemon.stop(15_000);
      // The sandbox writes its profile first, when profiling: a grace period, then leaks are ended.
      await reapFamily(family, 3000);
      project.remove();
    },
  };
}

/** Read-only queries on a running daemon's SQLite file. */
export class CompletionView {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file, { readonly: true, fileMustExist: true });
  }

  /** The highest delivery id so far: deliveries after it belong to the next measurement. */
  lastDeliveryId(): number {
    return (this.db.prepare("SELECT coalesce(max(id), 0) AS id FROM deliveries").get() as { id: number }).id;
  }

  /** Deliveries still to run (pending or running). */
  unfinished(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM deliveries WHERE status IN ('pending', 'running')").get() as { n: number }).n;
  }

  /** Deliveries after `afterId` that are done, and when the last of them finished (epoch ms). */
  doneSince(afterId: number): { count: number; lastFinishedAt: number | null } {
    const row = this.db
      .prepare("SELECT count(*) AS n, max(finished_at) AS last FROM deliveries WHERE id > ? AND status = 'done'")
      .get(afterId) as { n: number; last: number | null };
    return { count: row.n, lastFinishedAt: row.last };
  }

  /** Request (the stamped `sentAt`) to recorded completion, per delivery done after `afterId`. */
  completionLatenciesMs(afterId: number): number[] {
    const rows = this.db
      .prepare(
        `SELECT json_extract(e.payload, '$.sentAt') AS sent, d.finished_at AS fin
           FROM deliveries d JOIN events e ON e.seq = d.event_seq
          WHERE d.id > ? AND d.status = 'done'`,
      )
      .all(afterId) as Array<{ sent: number | null; fin: number | null }>;
    return rows.filter((r) => typeof r.sent === "number" && typeof r.fin === "number").map((r) => r.fin! - r.sent!);
  }

  close(): void {
    this.db.close();
  }
}

export interface CompletionRun {
  /** Handler completions per second, from the first request to the last recorded completion. */
  completionRate: number;
  /** 202 answers per second while the load ran. */
  acceptRate: number;
  completed: number;
  /** How long after the load ended the last completion was recorded (the backlog it left). */
  drainMs: number;
  /** True when the backlog did not drain within the bound (the rate is then a lower bound). */
  drainTimedOut: boolean;
  load: LoadResult;
  /** First delivery id of this run minus one (for latency queries). */
  afterId: number;
}

/**
 * Posts bench events for a while and waits for every resulting run to finish: the rate at
 * which hookd completes handlers end to end, not the rate at which it merely says 202.
 */
export async function measureCompletion(hookd: BenchHookd, load: Omit<LoadOptions, "url" | "path" | "body">, drainBoundMs = 60_000): Promise<CompletionRun> {
  const afterId = hookd.db.lastDeliveryId();
  const result = await runLoad({ ...load, url: hookd.url, path: `/events/${BENCH_EVENT}`, body: stampedBenchBody(), stamp: true });
  const drainTimedOut = await waitUntil(() => hookd.db.unfinished() === 0, { timeoutMs: drainBoundMs, intervalMs: 20 }).then(
    () => false,
    () => true,
  );
  const { count, lastFinishedAt } = hookd.db.doneSince(afterId);
  const end = lastFinishedAt ?? Date.now();
  return {
    completionRate: count / (Math.max(end - result.startedAt, 1) / 1000),
    acceptRate: result.rps,
    completed: count,
    drainMs: Math.max(end - result.finishedAt, 0),
    drainTimedOut,
    load: result,
    afterId,
  };
}
