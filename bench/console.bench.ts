/**
 * The console's pages with 100,000 runs in the store (SQLite, as the daemon opens it): how long
 * the queries behind each page take to answer, through the same functions the API serves them
 * with. The store is filled in one transaction of plain inserts (100,000 events, each with one
 * handler run of one or two recorded attempts, 1 in 50 dead), then every page is asked for in
 * interleaved rounds. Also the cost of the run detail when traces are off: the dispatcher's
 * per-attempt work (open an attempt, record a log line, a fetch and a kv write, take it), which
 * the daemon does for every run, timed per attempt.
 *
 *   node --import tsx bench/console.bench.ts [--quick]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { eventDetail } from "../core/api/event-detail.ts";
import { runDetail } from "../core/api/run-detail.ts";
import { matchingDeadLetters } from "../core/api/repair.ts";
import { stats } from "../core/api/stats.ts";
import { RunActivityRecorder } from "../core/runs/activity.ts";
import { SqliteStore } from "../core/store/sqlite.ts";
import { figure } from "./lib/stats.ts";

const RUNS = 100_000;
const PLUGINS = 20;

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(tmpdir(), "hookd-console-bench-"));
  const file = path.join(dir, "hookd.db");
  try {
    // The schema as hookd makes it, then the rows straight in (acceptEvent per row would take minutes).
    await new SqliteStore({ file, writer: "inline" }).close();
    const now = Date.now();
    const fillStarted = performance.now();
    const ids = fill(file, now);
    const fillMs = performance.now() - fillStarted;
    process.stderr.write(`filled ${RUNS} runs in ${Math.round(fillMs)} ms\n`);

    const store = new SqliteStore({ file });
    const rounds = opts.quick ? 15 : 60;
    const pages: Record<string, () => Promise<unknown>> = {
      runsNewest: () => store.listRuns({ limit: 100 }),
      runsOfPluginPage50: () => store.listRuns({ plugin: "p7", limit: 100, before: ids.lastRun - 50 * PLUGINS * 100 }),
      deadLetters: () => store.listRuns({ status: "dead", limit: 200 }),
      deadLettersByCode: () => matchingDeadLetters(store, { event: "bench.ping", code: "HOOKD_RUN_FAILED" }, 1000),
      eventsNewest: () => store.listEvents({ limit: 200, maxPayloadBytes: 64 * 1024 }),
      runDetail: () => runDetail(store, ids.sampleRun()),
      eventDetail: () => eventDetail({ store }, ids.sampleEvent()),
      statsLastHour: () => stats(store, 60, now),
    };
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(pages).map((name) => [name, []]));
    for (const page of Object.values(pages)) await page(); // warm the statements and the page cache
    for (let round = 0; round < rounds; round++) {
      for (const [name, page] of Object.entries(pages)) {
        const started = performance.now();
        await page();
        samples[name]!.push(performance.now() - started);
      }
    }
    await store.close();

    // The recorder's per-attempt cost, as every run pays it (tracing off: nothing else is added).
    const recorder = new RunActivityRecorder(() => ({ maxLogLines: 1000, maxEmits: 100, maxFieldChars: 16 * 1024 }));
    const attempts = opts.quick ? 20_000 : 100_000;
    const recordSamples: number[] = [];
    for (let round = 0; round < 5; round++) {
      const started = performance.now();
      for (let i = 0; i < attempts; i++) {
        const runId = String(i);
        recorder.begin(runId, "p");
        recorder.log(runId, "info", "handled", { did: i });
        recorder.fetch(runId, { at: now, method: "GET", url: "https://api.example.com/x?token=abc", status: 200, durationMs: 3, bytes: 120 });
        recorder.kvWrite(runId, "set", "k", 12);
        recorder.take(runId);
      }
      recordSamples.push(((performance.now() - started) * 1000) / attempts);
    }

    return {
      settings: { runs: RUNS, plugins: PLUGINS, rounds, store: "sqlite (WAL, synchronous=FULL)" },
      console: {
        ...Object.fromEntries(Object.entries(samples).map(([name, values]) => [`${name}Ms`, figure(values, "ms")])),
        recordAttemptUs: figure(recordSamples, "µs"),
      },
      details: { fillMs: Math.round(fillMs) },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 100,000 events with one handler run each (attempts recorded), spread over the last two hours. */
function fill(file: string, now: number): { lastRun: number; sampleRun: () => number; sampleEvent: () => string } {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  const insertEvent = db.prepare("INSERT INTO events (id, name, payload, received_at, source, depth) VALUES (?, 'bench.ping', ?, ?, 'http', 0)");
  const insertRun = db.prepare(
    `INSERT INTO deliveries (event_seq, kind, plugin, target, status, attempts, max_attempts, next_at, last_error, created_at, updated_at, finished_at, duration_ms)
     VALUES (?, 'handler', ?, 'bench.ping', ?, ?, 3, ?, ?, ?, ?, ?, ?)`,
  );
  const insertAttempt = db.prepare("INSERT INTO run_attempts (delivery_id, attempt, started_at, duration_ms, status, code, error, activity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  const activity = JSON.stringify({ logs: [{ at: now, level: "info", msg: "handled", fields: { did: 1 } }], fetches: [{ at: now, method: "GET", url: "https://api.example.com/x?token=…", status: 200, durationMs: 3, bytes: 120 }], emits: [], kvWrites: [{ at: now, op: "set", key: "k", bytes: 12 }], dropped: 0 });
  const error = JSON.stringify({ code: "HOOKD_RUN_FAILED", message: "boom" });
  let lastRun = 0;
  db.transaction(() => {
    for (let i = 0; i < RUNS; i++) {
      const at = now - 2 * 3_600_000 + Math.floor((i * 2 * 3_600_000) / RUNS);
      const seq = Number(insertEvent.run(`ev-${i}`, JSON.stringify({ did: i, pad: "x".repeat(200) }), at).lastInsertRowid);
      const dead = i % 50 === 0;
      const attempts = dead ? 3 : i % 10 === 0 ? 2 : 1;
      lastRun = Number(insertRun.run(seq, `p${i % PLUGINS}`, dead ? "dead" : "done", attempts, at, dead ? error : null, at, at + 5, at + 5, 4).lastInsertRowid);
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const failed = dead || attempt < attempts;
        insertAttempt.run(lastRun, attempt, at + attempt, 4, failed ? "failed" : "done", failed ? "HOOKD_RUN_FAILED" : null, failed ? error : null, activity);
      }
    }
  })();
  db.close();
  let n = 0;
  return { lastRun, sampleRun: () => 1 + ((n++ * 7919) % RUNS), sampleEvent: () => `ev-${(n++ * 7919) % RUNS}` };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = await run({ quick: process.argv.includes("--quick") });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
