/**
 * hookd's core dispatch rate, without HTTP: events already in the store, to recorded handler
 * completion. The daemon runs in this process (its sandbox in its own child process, as in
 * production) so the bench can fill the store directly and see each completion as it is
 * recorded.
 *
 * How a round works: N events are stored for a plugin that is not loaded yet (the dispatcher
 * only claims deliveries of loaded plugins, so they wait), then the plugin is loaded and the
 * clock runs from the moment it takes runs until the N-th completion is written.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { randomUUID } from "node:crypto";
import { loadConfig } from "../../core/config/load.ts";
import { Daemon } from "../../core/daemon.ts";
import { createLogger } from "../../core/base/log.ts";
import type { Store } from "../../core/store/types.ts";
import { TestProject } from "../../test/helpers/daemon.ts";
import { BENCH_CONFIG, BENCH_EVENT, benchEvent, HANDLER_BODY } from "./hookd.ts";
import { treeCpu } from "./proc.ts";

export interface CoreDispatch {
  /** Stores N events for a fresh plugin, loads it, and measures their dispatch. */
  measure(events: number): Promise<DispatchMeasurement>;
  stop(): Promise<void>;
}

export interface DispatchMeasurement {
  /** Completions per second. */
  rate: number;
  /** CPU time per event of this process (the daemon: all its threads) and of the sandbox process. */
  cpuMicrosPerEvent: number;
}

export async function startCoreDispatch(): Promise<CoreDispatch> {
  const project = new TestProject({ config: BENCH_CONFIG });
  const config = await loadConfig({
    configFile: path.join(project.dir, "events.config.ts"),
    env: { HOOKD_PORT: "0", HOOKD_HOST: "127.0.0.1", HOOKD_LOG_LEVEL: "warn" },
  });
  // Logs are dropped, not written: the dispatch path logs nothing at warn unless a run fails,
  // and a failure shows up as a missing completion anyway.
  const logger = createLogger({ level: "warn", destination: new Writable({ write: (_chunk, _encoding, done) => done() }) });
  const daemon = await Daemon.start({ config, logger, sandbox: "process", watch: false });
  const store = daemon.store;
  const waiters = new Map<string, { left: number; done: (at: number) => void }>();

  // Completions are counted where the dispatcher records them: the store's finishDelivery.
  // Wrapping the one instance the dispatcher holds costs a map lookup per run and no polling.
  const finish = store.finishDelivery.bind(store);
  store.finishDelivery = async (...args: Parameters<Store["finishDelivery"]>) => {
    const kept = await finish(...args);
    for (const [plugin, waiter] of waiters) {
      if (--waiter.left === 0) {
        waiters.delete(plugin);
        waiter.done(performance.now());
      }
      break; // one plugin is measured at a time
    }
    return kept;
  };

  let round = 0;
  return {
    async measure(events: number): Promise<DispatchMeasurement> {
      const plugin = `dispatch-${++round}`;
      await fillStore(store, plugin, events);
      const file = path.join(project.pluginsDir, `${plugin}.ts`);
      writeFileSync(file, `import { on } from "hookd";\non("${BENCH_EVENT}", async (event) => { ${HANDLER_BODY} });\n`);
      let finishedAt = 0;
      const finished = new Promise<void>((resolve) => {
        waiters.set(plugin, { left: events, done: (at) => ((finishedAt = at), resolve()) });
      });
      const loaded = await daemon.plugins.reload({ name: plugin, file });
      if (!loaded.ok) throw new Error(`bench plugin failed to load: ${loaded.error?.message}`);
      // The swap that lets the dispatcher claim happens just before reload() resolves.
      const startedAt = performance.now();
      const cpu = process.cpuUsage();
      const childrenBefore = childrenCpuMs();
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`core dispatch of ${events} events did not finish within 120 s`)), 120_000).unref());
      await Promise.race([finished, timeout]);
      const used = process.cpuUsage(cpu);
      const sandboxUsedMs = childrenCpuMs() - childrenBefore;
      return {
        rate: (events / Math.max(finishedAt - startedAt, 0.001)) * 1000,
        cpuMicrosPerEvent: (used.user + used.system + sandboxUsedMs * 1000) / events,
      };
    },
    async stop() {
      await daemon.stop();
      project.remove();
    },
  };
}

/** CPU time (ms) of this process's descendants: the sandbox process and esbuild's service. */
function childrenCpuMs(): number {
  return treeCpu(process.pid)
    .filter((p) => p.pid !== process.pid)
    .reduce((sum, p) => sum + p.cpuMs, 0);
}

/** Stores events for `plugin` in batches that share group commits, as concurrent requests do. */
async function fillStore(store: Store, plugin: string, events: number): Promise<void> {
  const payload = benchEvent();
  const batch = 500;
  for (let start = 0; start < events; start += batch) {
    const writes: Array<Promise<unknown>> = [];
    for (let i = start; i < Math.min(start + batch, events); i++) {
      writes.push(
        store.acceptEvent(
          { id: randomUUID(), name: BENCH_EVENT, payload, receivedAt: Date.now(), source: "http", depth: 0 },
          [{ kind: "handler", plugin, target: BENCH_EVENT, maxAttempts: 5 }],
        ),
      );
    }
    await Promise.all(writes);
  }
}
