/**
 * Durable delivery end to end: events per second from the HTTP request to the handler's
 * completion recorded in the store, with `synchronous=FULL` (the default), for 1 and for 10
 * plugins subscribed to the event, beside a bare fastify route that parses the JSON and answers
 * 202 without storing anything. The three are measured in interleaved rounds in one run, with
 * autocannon on loopback in its own process.
 *
 *   node --no-node-snapshot --import tsx bench/delivery.bench.ts [--quick]
 *
 * Targets: at least 5,000 events/s with one plugin, and at least half the bare route's rate.
 */
import { availableParallelism, loadavg } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { BENCH_CONFIG, BENCH_EVENT, benchEvent, HANDLER_BODY, measureCompletion, startHookd, type BenchHookd } from "./lib/hookd.ts";
import { runLoad } from "./lib/load.ts";
import { pause } from "../test/helpers/wait.ts";
import { interleave } from "./lib/repeat.ts";
import { startBareFastify, type RunningServer } from "./lib/servers.ts";
import { median, ratio, round } from "./lib/stats.ts";

const SETTINGS = {
  quick: { rounds: 2, loadSec: 3, warmupSec: 1, connections: 64 },
  // Every accepted event is waited for until its handlers finished: with 10 plugins, 8 s of load
  // left a backlog that took the module past the harness's 180 s bound. 4 s rounds keep the same
  // steady state (rates settle within the first second) and fit.
  full: { rounds: 3, loadSec: 4, warmupSec: 1, connections: 64 },
};

const TARGET_EVENTS_PER_SEC = 5000;
const TARGET_VS_BARE = 0.5;

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const settings = SETTINGS[opts.quick ? "quick" : "full"];
  // Other work on the machine slows hookd's many hops far more than one busy fastify loop.
  const loadBefore = loadavg()[0]!;
  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    const bare = await startBareFastify();
    started.push(bare);
    const one = await startSubscribedHookd(1);
    started.push(one);
    const ten = await startSubscribedHookd(10);
    started.push(ten);

    // Warm up every server (JIT, SQLite page cache, isolates) before anything counts.
    await bareLoad(bare, settings.warmupSec, settings.connections);
    await measureCompletion(one, { connections: settings.connections, durationSec: settings.warmupSec });
    await measureCompletion(ten, { connections: settings.connections, durationSec: settings.warmupSec });

    const accepted: Record<"one" | "ten", number[]> = { one: [], ten: [] };
    const latencyP99: Record<"one" | "ten", number[]> = { one: [], ten: [] };
    const rates = await interleave(settings.rounds, {
      bareFastify: { unit: "req/s", measure: async () => (await bareLoad(bare, settings.loadSec, settings.connections)).rps },
      onePlugin: { unit: "events/s", measure: () => eventsPerSec(one, "one") },
      tenPlugins: { unit: "events/s", measure: () => eventsPerSec(ten, "ten") },
    });

    async function eventsPerSec(hookd: BenchHookd, key: "one" | "ten"): Promise<number> {
      await pause(200); // a breather between two measurements, not a state
      const measured = await measureCompletion(hookd, { connections: settings.connections, durationSec: settings.loadSec }, 120_000);
      if (measured.drainTimedOut) throw new Error(`${hookd.plugins} plugin(s): the backlog did not drain within 120 s`);
      accepted[key].push(measured.acceptRate);
      latencyP99[key].push(measured.load.latencyMs.p99);
      // Each event runs once per subscribed plugin: completions / plugins = events fully handled.
      return measured.completionRate / hookd.plugins;
    }

    const result: Record<string, unknown> = {
      settings: {
        ...settings,
        synchronous: "FULL",
        event: BENCH_EVENT,
        eventBytes: JSON.stringify(benchEvent()).length,
        loadAverage: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2), cpus: availableParallelism() },
      },
      rates,
      accept: {
        onePluginRps: round(median(accepted.one)),
        tenPluginsRps: round(median(accepted.ten)),
        onePluginP99Ms: round(median(latencyP99.one)),
        tenPluginsP99Ms: round(median(latencyP99.ten)),
      },
      ratios: {
        onePluginVsBareFastify: ratio(rates.onePlugin, rates.bareFastify, "hookd 1 plugin e2e / bare fastify"),
        tenPluginsVsOnePlugin: ratio(rates.tenPlugins, rates.onePlugin, "hookd 10 plugins e2e / 1 plugin"),
      },
      targets: {
        [`onePlugin >= ${TARGET_EVENTS_PER_SEC} events/s`]: rates.onePlugin.median >= TARGET_EVENTS_PER_SEC,
        [`onePlugin >= ${TARGET_VS_BARE} x bare fastify`]: rates.onePlugin.median >= TARGET_VS_BARE * rates.bareFastify.median,
      },
    };
    return result;
  } finally {
    for (const server of started.reverse()) await server.stop().catch(() => undefined);
  }
}

/** The bench event's plugin, subscribed `count` times over (each its own plugin and isolate). */
function startSubscribedHookd(count: number): Promise<BenchHookd> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) files[`handler-${i}.ts`] = `import { on } from "hookd";\non("${BENCH_EVENT}", async (event) => { ${HANDLER_BODY} });\n`;
  // The watcher is off: a benchmark does not edit plugins.
  const config = BENCH_CONFIG.replace("events: {", "plugins: { watch: false },\n  events: {");
  return startHookd({ plugins: count, files, config, timeoutMs: 60_000 });
}

function bareLoad(bare: RunningServer, durationSec: number, connections: number) {
  return runLoad({ url: bare.url, path: `${bare.eventsPath}${BENCH_EVENT}`, body: JSON.stringify(benchEvent()), connections, durationSec });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const quick = process.argv.includes("--quick");
  const result = await run({ quick });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.exit(0);
}
