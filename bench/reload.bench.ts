/**
 * Reload latency: from writing a plugin file to the first event handled by the new version,
 * while events flow without pause, over many edits of one file. esbuild's own compile time for
 * the same file is measured in the same run, as the floor the rest is compared with.
 *
 *   node --no-node-snapshot --import tsx bench/reload.bench.ts [--quick]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { compilePlugin } from "../core/compile/compile-plugin.ts";
import { loadConfig } from "../core/config/load.ts";
import { Daemon } from "../core/daemon.ts";
import { createLogger } from "../core/base/log.ts";
import { pause } from "../test/helpers/wait.ts";
import { percentile, round } from "./lib/stats.ts";

export interface ReloadBenchOptions {
  quick: boolean;
}

/** The targets for the write-to-first-event latency on the reference machine. */
const TARGET_P50_MS = 50;
const TARGET_P99_MS = 200;
/** An event is sent this often while the plugin is edited, so the first run on a new version is seen. */
const EVENT_INTERVAL_MS = 2;

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: { "bench.ping": z.object({ n: z.number().int() }) },
  server: { port: 0 },
  delivery: { backoffMs: 10, maxBackoffMs: 50 },
});
`;

function pluginSource(version: number): string {
  return `import { on } from "hookd";

const VERSION = ${version};

on("bench.ping", (event, ctx) => {
  ctx.log.info({ rev: VERSION, n: event.n }, "bench handled");
});
`;
}

interface Sample {
  /** Write to the first event handled by the new version. */
  firstEventMs: number;
  /** Write to the moment the new version took new runs. */
  swapMs: number;
  daemonCompileMs: number;
  daemonLoadMs: number;
  esbuildMs: number;
}

export async function run(opts: ReloadBenchOptions): Promise<Record<string, unknown>> {
  const edits = opts.quick ? 20 : 60;
  const dir = mkdtempSync(path.join(tmpdir(), "hookd-bench-reload-"));
  const pluginsDir = path.join(dir, "plugins");
  const pluginFile = path.join(pluginsDir, "bench.ts");
  mkdirSync(pluginsDir);
  writeFileSync(path.join(dir, "events.config.ts"), CONFIG);
  writeFileSync(pluginFile, pluginSource(0));

  const lines = new LogTap();
  const env: NodeJS.ProcessEnv = { ...process.env, HOOKD_PORT: "0", HOOKD_HOST: "127.0.0.1" };
  delete env.HOOKD_TOKEN;
  const config = await loadConfig({ configFile: path.join(dir, "events.config.ts"), env });
  const daemon = await Daemon.start({ config, logger: createLogger({ level: "info", destination: lines }), watch: true });
  const samples: Sample[] = [];
  let n = 0;
  const ticker = setInterval(() => {
    daemon.intake.accept({ name: "bench.ping", body: { n: n++ }, source: "http" }).catch(() => undefined);
  }, EVENT_INTERVAL_MS);
  try {
    // Warm up: the first compile and isolate of a process are slower than the steady state.
    for (let version = 1; version <= edits + 3; version++) {
      const handled = lines.next((l) => l.msg === "bench handled" && l.rev === version, 10_000);
      const swapped = lines.next((l) => l.msg === "plugin reloaded" && l.plugin === "bench", 10_000);
      const written = performance.now();
      writeFileSync(pluginFile, pluginSource(version));
      const [first, swap] = await Promise.all([handled, swapped]);
      const started = performance.now();
      await compilePlugin(pluginFile, { root: dir });
      const esbuildMs = performance.now() - started;
      if (version > 3) {
        samples.push({
          firstEventMs: first.at - written,
          swapMs: swap.at - written,
          daemonCompileMs: Number(swap.line.compileMs),
          daemonLoadMs: Number(swap.line.loadMs),
          esbuildMs,
        });
      }
      // A pause between two saves, as by hand (the old version retires meanwhile; it logs no line to wait on).
      await pause(20);
    }
  } finally {
    clearInterval(ticker);
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const stat = (pick: (s: Sample) => number) => {
    const values = samples.map(pick);
    return { p50: round(percentile(values, 50)), p99: round(percentile(values, 99)), max: round(Math.max(...values)), n: values.length, unit: "ms" };
  };
  const firstEvent = stat((s) => s.firstEventMs);
  return {
    edits: samples.length,
    eventIntervalMs: EVENT_INTERVAL_MS,
    writeToFirstEventMs: firstEvent,
    writeToSwapMs: stat((s) => s.swapMs),
    daemonCompileMs: stat((s) => s.daemonCompileMs),
    daemonLoadMs: stat((s) => s.daemonLoadMs),
    esbuildCompileMs: stat((s) => s.esbuildMs),
    target: { p50Ms: TARGET_P50_MS, p99Ms: TARGET_P99_MS, met: firstEvent.p50 <= TARGET_P50_MS && firstEvent.p99 <= TARGET_P99_MS },
  };
}

interface TappedLine {
  line: Record<string, unknown>;
  /** performance.now() when the daemon wrote it. */
  at: number;
}

/** The daemon's JSON log, read back line by line as it is written, with the time of each. */
class LogTap extends Writable {
  private waiters: Array<{ match: (line: Record<string, unknown>) => boolean; resolve: (tapped: TappedLine) => void }> = [];
  private partial = "";

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    const at = performance.now();
    this.partial += chunk.toString("utf8");
    let newline: number;
    while ((newline = this.partial.indexOf("\n")) >= 0) {
      const text = this.partial.slice(0, newline);
      this.partial = this.partial.slice(newline + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve({ line, at }), false) : true));
    }
    done();
  }

  /** The next line (from now on) that matches. */
  next(match: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<TappedLine> {
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve: (tapped: TappedLine) => (clearTimeout(timer), resolve(tapped)) };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = await run({ quick: process.argv.includes("--quick") });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
