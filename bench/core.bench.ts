/**
 * hookd against its limits and its peers, side by side in one run:
 * 1. the no-op handler through isolated-vm directly, through node:vm, as a plain function, and
 *    hookd's core dispatch (store -> sandbox -> recorded completion, no HTTP), interleaved;
 * 2. start-up time and resident memory with 1, 100 and 1,000 plugins (one active, the rest idle);
 * 3. HTTP rates, interleaved per round: a bare fastify route, Node-RED, and hookd end to end
 *    (request -> stored -> handler completion recorded) with 1, 100 and 1,000 plugins loaded;
 * 4. request-to-completion latency at half of hookd's peak rate (an evenly paced open-loop load, lib/paced-load.ts);
 * 5. with HOOKD_BENCH_PROFILE_DIR set (`npm run bench -- --profile`), CPU profiles of the gaps.
 * Every hookd figure is also given as a ratio to the baseline measured in the same run.
 */
import path from "node:path";
import { ensureNodeRed, startNodeRed, type NodeRedMajor } from "./peers/node-red.ts";
import { startCoreDispatch, type CoreDispatch } from "./lib/dispatch.ts";
import { isolatedVmDirect, nodeVm, plainFunction } from "./lib/handler-baselines.ts";
import { BENCH_EVENT, benchEvent, measureCompletion, startHookd, type BenchHookd } from "./lib/hookd.ts";
import { runLoad } from "./lib/load.ts";
import { treeCpu, treeCpuMs, treeRss } from "./lib/proc.ts";
import { costsByLayer, profileSection, profilingEnv, readProfiles, topCosts, type Cost } from "./lib/profile.ts";
import { pause } from "../test/helpers/wait.ts";
import { closedLoop, interleave } from "./lib/repeat.ts";
import { startBareFastify, type RunningServer } from "./lib/servers.ts";
import { figure, percentile, ratio, round, type Figure } from "./lib/stats.ts";
import { progressFor } from "./lib/progress.ts";

const progress = progressFor("core");

interface Settings {
  rounds: number;
  loadSec: number;
  warmupSec: number;
  connections: number;
  dispatchEvents: number;
  baselineMs: number;
  /** In-flight window of the in-process baselines: hookd's per-plugin maxConcurrentRuns. */
  window: number;
  latencySec: number;
  latencyRepeats: number;
  startupRepeats: (plugins: number) => number;
  /** Quick runs measure the largest plugin count whose predicted start-up fits this. */
  largestStartupAllowanceSec: number;
  /** Measure HTTP rates at every plugin count, or only at 1 and the largest (quick runs). */
  httpAtEveryCount: boolean;
  /** Measure Node-RED 5 beside 4 (full runs: a quick run has no time for a second peer's install and loads). */
  nodeRed5: boolean;
}

const SETTINGS: Record<"quick" | "full", Settings> = {
  quick: {
    rounds: 3,
    loadSec: 2,
    warmupSec: 1,
    connections: 32,
    dispatchEvents: 3000,
    baselineMs: 500,
    window: 16,
    latencySec: 3,
    latencyRepeats: 1,
    startupRepeats: () => 1,
    largestStartupAllowanceSec: 25,
    httpAtEveryCount: false,
    nodeRed5: false,
  },
  full: {
    rounds: 5,
    loadSec: 5,
    warmupSec: 2,
    connections: 32,
    dispatchEvents: 10_000,
    baselineMs: 1000,
    window: 16,
    latencySec: 8,
    latencyRepeats: 3,
    startupRepeats: (plugins) => (plugins >= 1000 ? 2 : 3),
    largestStartupAllowanceSec: Number.POSITIVE_INFINITY,
    httpAtEveryCount: true,
    nodeRed5: true,
  },
};

const LARGEST_COUNTS = [1000, 500, 300, 200];

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const s = SETTINGS[opts.quick ? "quick" : "full"];
  const profileDir = process.env.HOOKD_BENCH_PROFILE_DIR;
  const errors: string[] = [];
  const note = (what: string, error: unknown) => {
    const message = `${what}: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`;
    errors.push(message);
    progress(`error: ${what}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  };
  const profiles: Record<string, unknown> = {};

  // 1. In-process: the isolation baselines and the core dispatch, interleaved per round.
  progress("isolation baselines and core dispatch");
  const inProcess = await measureInProcess(s, profileDir, profiles, note);

  // 2. Servers: the peers, then hookd at each plugin count (start-up time and memory on the way).
  const servers: Array<{ stop: () => Promise<void> }> = [];
  const daemons = new Map<number, BenchHookd>();
  try {
    progress(`starting the bare fastify route and Node-RED${s.nodeRed5 ? " 4 and 5" : ""}`);
    const fastify = await startBareFastify();
    servers.push(fastify);
    // Installed if missing, then started; a peer that fails to start is noted and left out.
    const startPeer = async (major: NodeRedMajor, label: string) => {
      const install = ensureNodeRed(major);
      if (!install.available) return { install, server: undefined };
      try {
        const server = await startNodeRed(major);
        servers.push(server);
        return { install, server };
      } catch (error) {
        note(`${label} start`, error);
        return { install, server: undefined };
      }
    };
    const { install: peer, server: nodeRed } = await startPeer(4, "Node-RED");
    const { install: peer5, server: nodeRed5 } = s.nodeRed5 ? await startPeer(5, "Node-RED 5") : { install: undefined, server: undefined };

    progress("hookd start-up and memory");
    const startup: Record<string, Figure> = {};
    const memory: Record<string, { totalMb: number; byProcess: Record<string, number> }> = {};
    const startAt = async (plugins: number): Promise<number | undefined> => {
      const samples: number[] = [];
      for (let i = 0; i < s.startupRepeats(plugins); i++) {
        let hookd: BenchHookd;
        try {
          hookd = await startHookd({ plugins, timeoutMs: 300_000 });
        } catch (error) {
          note(`hookd start with ${plugins} plugins`, error);
          break;
        }
        samples.push(hookd.startupMs);
        // Let the start-up's garbage go before reading resident memory.
        await pause(opts.quick ? 1000 : 3000);
        memory[String(plugins)] = memoryOf(hookd.pid);
        const previous = daemons.get(plugins);
        daemons.set(plugins, hookd);
        if (previous) await previous.stop();
      }
      if (samples.length > 0) startup[String(plugins)] = figure(samples, "ms");
      return samples.length > 0 ? startup[String(plugins)]!.median : undefined;
    };
    const one = await startAt(1);
    const hundred = await startAt(100);
    const largest = pickLargestCount(one, hundred, s.largestStartupAllowanceSec);
    if (largest !== undefined) await startAt(largest);
    else errors.push(`no plugin count above 100 is predicted to start within ${s.largestStartupAllowanceSec} s in a quick run`);
    const counts = [...daemons.keys()].sort((a, b) => a - b);
    const top = counts[counts.length - 1];
    for (const [plugins, hookd] of [...daemons]) {
      if (s.httpAtEveryCount || plugins === 1 || plugins === top) continue;
      daemons.delete(plugins);
      await hookd.stop();
    }

    if (profileDir) profiles.startup100 = await profileStartup(path.join(profileDir, "startup-100"), 100);

    // 3. HTTP rates, interleaved: every system once per round.
    progress(`HTTP rates: ${s.rounds} rounds of ${s.loadSec} s, ${s.connections} connections`);
    const body = JSON.stringify(benchEvent());
    // Beside each rate, the CPU time the server's process tree spent per event handled.
    const cpu: Record<string, number[]> = {};
    const cpuOf = (key: string) => (cpu[key] ??= []);
    const peerLoad = (server: RunningServer, seconds: number, cpuSamples?: number[]) => async () => {
      const before = treeCpuMs(server.pid);
      const result = await runLoad({ url: server.url, path: `${server.eventsPath}${BENCH_EVENT}`, body, durationSec: seconds, connections: s.connections });
      cpuSamples?.push(((treeCpuMs(server.pid) - before) * 1000) / Math.max(result.ok, 1));
      return result.rps;
    };
    const hookdLoad = (hookd: BenchHookd, seconds: number, accepted?: number[], cpuKey?: string) => async () => {
      const before = cpuByRole(hookd.pid);
      const measured = await measureCompletion(hookd, { durationSec: seconds, connections: s.connections });
      if (cpuKey) {
        // The whole tree, then each process: which side of the process hop the CPU goes to.
        const after = cpuByRole(hookd.pid);
        for (const [role, ms] of Object.entries(after)) {
          const used = ms - (before[role] ?? 0);
          // esbuild's service idles during loads: its crumbs stay in the total only.
          if (role === "total" || (used > 0 && /^(daemon|sandbox)\./.test(role))) cpuOf(role === "total" ? cpuKey : `${cpuKey}.${role}`).push((used * 1000) / Math.max(measured.completed, 1));
        }
      }
      if (measured.drainTimedOut) errors.push(`hookd with ${hookd.plugins} plugins did not drain its backlog within 60 s; its rate is a lower bound`);
      accepted?.push(measured.acceptRate);
      return measured.completionRate;
    };
    const accepted: Record<string, number[]> = {};
    const steps: Record<string, { unit: string; measure: (round: number) => Promise<number> }> = {
      bareFastify: { unit: "req/s", measure: peerLoad(fastify, s.loadSec, cpuOf("bareFastify")) },
    };
    const warmups: Array<() => Promise<number>> = [peerLoad(fastify, s.warmupSec)];
    if (nodeRed) {
      steps.nodeRed = { unit: "req/s", measure: peerLoad(nodeRed, s.loadSec, cpuOf("nodeRed")) };
      warmups.push(peerLoad(nodeRed, s.warmupSec));
    }
    if (nodeRed5) {
      steps.nodeRed5 = { unit: "req/s", measure: peerLoad(nodeRed5, s.loadSec, cpuOf("nodeRed5")) };
      warmups.push(peerLoad(nodeRed5, s.warmupSec));
    }
    for (const [plugins, hookd] of daemons) {
      if (!s.httpAtEveryCount && plugins !== 1 && plugins !== top) continue;
      accepted[String(plugins)] = [];
      steps[`hookd${plugins}`] = { unit: "events/s", measure: hookdLoad(hookd, s.loadSec, accepted[String(plugins)], `hookd${plugins}`) };
      warmups.push(hookdLoad(hookd, s.warmupSec));
    }
    for (const warmup of warmups) await warmup().catch((error: unknown) => note("warm-up", error));
    const http = await interleave(s.rounds, steps, (step, round, error) => note(`${step} round ${round + 1}`, error));

    // 4. Latency from request to recorded handler completion, at half of hookd's peak rate.
    const hookd1 = daemons.get(1);
    const peak = http.hookd1?.median;
    let latency: Record<string, unknown> | undefined;
    if (hookd1 && peak && Number.isFinite(peak)) {
      progress(`latency at half the peak rate (${Math.round(peak / 2)} events/s)`);
      latency = await measureLatency(hookd1, Math.round(peak / 2), s).catch((error: unknown) => (note("latency", error), undefined));
    }

    if (profileDir && hookd1) profiles.endToEnd = await profileEndToEnd(path.join(profileDir, "e2e"), s);

    const e2e = http.hookd1;
    const httpCounts = counts.filter((n) => http[`hookd${n}`] !== undefined);
    const e2eByPlugins = Object.fromEntries(httpCounts.map((n) => [String(n), http[`hookd${n}`]]));
    const acceptByPlugins = Object.fromEntries(httpCounts.map((n) => [String(n), figure(accepted[String(n)] ?? [], "events/s")]));
    const cpuPerEvent = {
      ...inProcess.cpu,
      ...Object.fromEntries(
        Object.entries(cpu)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([key, samples]) => [key, figure(samples, "µs CPU/event")]),
      ),
    };
    const mem1 = memory["1"]?.totalMb;
    const memTop = top !== undefined ? memory[String(top)]?.totalMb : undefined;
    const perPlugin = mem1 !== undefined && memTop !== undefined && top! > 1 ? round((memTop - mem1) / (top! - 1), 2) : undefined;
    const sandboxPerPlugin =
      top !== undefined && top > 1 ? round(((memory[String(top)]?.byProcess.sandbox ?? 0) - (memory["1"]?.byProcess.sandbox ?? 0)) / (top - 1), 2) : undefined;

    return {
      setup:
        `${s.rounds} rounds; HTTP loads of ${s.loadSec} s with ${s.connections} connections; ${s.dispatchEvents} events per dispatch round; ` +
        `${JSON.stringify(benchEvent()).length}-byte event; SQLite synchronous=FULL; plugins ${counts.join("/")}`,
      settings: {
        mode: opts.quick ? "quick" : "full",
        rounds: s.rounds,
        loadSec: s.loadSec,
        connections: s.connections,
        dispatchEvents: s.dispatchEvents,
        inFlightWindow: s.window,
        event: `${BENCH_EVENT}, ${JSON.stringify(benchEvent()).length} bytes of JSON`,
        store: "SQLite WAL, synchronous=FULL (the default)",
        pluginCounts: counts,
        largestPluginCount: top,
      },
      baselines: {
        isolatedVmDirect: inProcess.isolatedVmDirect,
        nodeVm: inProcess.nodeVm,
        plainFunction: inProcess.plainFunction,
        bareFastify: http.bareFastify,
        nodeRed: http.nodeRed ?? { unavailable: peer.available ? "did not start (see errors)" : peer.reason },
        ...(peer.available ? { nodeRedVersion: peer.version, ...(peer.installedNow ? { nodeRedInstallMs: Math.round(peer.installMs) } : {}) } : {}),
        ...(peer5 === undefined
          ? {}
          : {
              nodeRed5: http.nodeRed5 ?? { unavailable: peer5.available ? "did not start (see errors)" : peer5.reason },
              ...(peer5.available ? { nodeRed5Version: peer5.version, ...(peer5.installedNow ? { nodeRed5InstallMs: Math.round(peer5.installMs) } : {}) } : {}),
            }),
      },
      hookd: {
        coreDispatch: inProcess.coreDispatch,
        endToEnd: e2eByPlugins,
        acceptedByPlugins: acceptByPlugins,
        latencyAtHalfPeak: latency,
        startupMs: startup,
        memoryMb: Object.fromEntries(Object.entries(memory).map(([plugins, m]) => [plugins, m.totalMb])),
        memoryPerIdlePluginMb: perPlugin,
        sandboxMemoryPerIdlePluginMb: sandboxPerPlugin,
      },
      cpuPerEvent,
      ratios: {
        dispatchVsIsolatedVm: ratio(inProcess.coreDispatch, inProcess.isolatedVmDirect, "core dispatch / isolated-vm direct"),
        isolatedVmVsNodeVm: ratio(inProcess.isolatedVmDirect, inProcess.nodeVm, "isolated-vm direct / node:vm"),
        isolatedVmVsPlainFunction: ratio(inProcess.isolatedVmDirect, inProcess.plainFunction, "isolated-vm direct / plain function"),
        e2eVsBareFastify: ratio(e2e, http.bareFastify, "hookd end to end (1 plugin) / bare fastify route"),
        e2eVsNodeRed: ratio(e2e, http.nodeRed, "hookd end to end (1 plugin) / Node-RED"),
        e2eVsNodeRed5: nodeRed5 ? ratio(e2e, http.nodeRed5, "hookd end to end (1 plugin) / Node-RED 5") : undefined,
        e2eVsCoreDispatch: ratio(e2e, inProcess.coreDispatch, "hookd end to end / core dispatch"),
        dispatchCpuVsIsolatedVm: ratio(inProcess.cpu?.coreDispatch, inProcess.cpu?.isolatedVmDirect, "core dispatch CPU per event / isolated-vm direct's"),
        cpuPerEventVsBareFastify: ratio(cpuPerEvent.hookd1, cpuPerEvent.bareFastify, "hookd CPU per event (1 plugin) / bare fastify's"),
        cpuPerEventVsNodeRed: ratio(cpuPerEvent.hookd1, cpuPerEvent.nodeRed, "hookd CPU per event (1 plugin) / Node-RED's"),
        cpuPerEventVsNodeRed5: nodeRed5 ? ratio(cpuPerEvent.hookd1, cpuPerEvent.nodeRed5, "hookd CPU per event (1 plugin) / Node-RED 5's") : undefined,
        idle100Rate: ratio(http.hookd100, e2e, "rate with 100 plugins / with 1"),
        idlePluginsRate: top !== undefined && top > 1 ? ratio(http[`hookd${top}`], e2e, `rate with ${top} plugins / with 1`) : undefined,
      },
      ...(errors.length ? { errors } : {}),
      details: { memoryByProcessMb: memory },
      ...(profileDir ? { profiles } : {}),
    };
  } finally {
    for (const hookd of daemons.values()) await hookd.stop().catch(() => undefined);
    for (const server of servers.reverse()) await server.stop().catch(() => undefined);
  }

  async function measureLatency(hookd: BenchHookd, rate: number, settings: Settings): Promise<Record<string, unknown>> {
    const p50: number[] = [];
    const p99: number[] = [];
    const acceptP50: number[] = [];
    const acceptP99: number[] = [];
    const lagP99: number[] = [];
    let samples = 0;
    for (let i = 0; i < settings.latencyRepeats; i++) {
      const measured = await measureCompletion(hookd, { durationSec: settings.latencySec, connections: settings.connections, overallRate: rate });
      const latencies = hookd.db.completionLatenciesMs(measured.afterId);
      samples += latencies.length;
      p50.push(percentile(latencies, 50));
      p99.push(percentile(latencies, 99));
      acceptP50.push(measured.load.latencyMs.p50);
      acceptP99.push(measured.load.latencyMs.p99);
      lagP99.push(measured.load.lagMs?.p99 ?? Number.NaN);
    }
    return {
      rate,
      events: samples,
      completionP50: figure(p50, "ms"),
      completionP99: figure(p99, "ms"),
      answerP50: figure(acceptP50, "ms"),
      answerP99: figure(acceptP99, "ms"),
      // How late the paced sender's requests left against their schedule (bench/lib/paced-load.ts).
      sendLagP99: figure(lagP99, "ms"),
    };
  }

  async function profileStartup(dir: string, plugins: number): Promise<unknown> {
    progress(`profiling start-up with ${plugins} plugins`);
    try {
      const hookd = await startHookd({ plugins, timeoutMs: 300_000, env: profilingEnv(dir) });
      await hookd.stop();
      return summarizeProfiles(dir);
    } catch (error) {
      note("start-up profile", error);
      return undefined;
    }
  }

  async function profileEndToEnd(dir: string, settings: Settings): Promise<unknown> {
    progress("profiling end to end with 1 plugin");
    try {
      const hookd = await startHookd({ plugins: 1, env: profilingEnv(dir) });
      await measureCompletion(hookd, { durationSec: Math.max(settings.loadSec, 5), connections: settings.connections });
      await hookd.stop();
      return summarizeProfiles(dir);
    } catch (error) {
      note("end-to-end profile", error);
      return undefined;
    }
  }
}

type InProcessFigures = Partial<Record<"isolatedVmDirect" | "nodeVm" | "plainFunction" | "coreDispatch", Figure>> & { cpu?: Record<string, Figure> };

/**
 * The three handler baselines and hookd's core dispatch, interleaved per round. If the daemon
 * cannot start (a broken build of hookd), the baselines are still measured and reported.
 */
async function measureInProcess(
  s: Settings,
  profileDir: string | undefined,
  profiles: Record<string, unknown>,
  note: (what: string, error: unknown) => void,
): Promise<InProcessFigures> {
  const direct = await isolatedVmDirect();
  const vmBaseline = nodeVm();
  const plain = plainFunction();
  const sandboxProfileDir = profileDir ? path.join(profileDir, "dispatch-sandbox") : undefined;
  let dispatch: CoreDispatch | undefined;
  try {
    dispatch = await withEnv(sandboxProfileDir ? profilingEnv(sandboxProfileDir) : undefined, () => startCoreDispatch());
  } catch (error) {
    note("core dispatch: the in-process daemon did not start", error);
  }
  // Beside each rate, the CPU time per event (this process, all threads; plus the sandbox
  // process for the dispatch), which a busy machine distorts far less than the rate.
  const cpu: Record<string, number[]> = { isolatedVmDirect: [], nodeVm: [], plainFunction: [], coreDispatch: [] };
  const loop = (key: string, call: () => Promise<unknown>) => async () => {
    const measured = await closedLoop(call, { durationMs: s.baselineMs, window: s.window, warmupMs: s.baselineMs / 4 });
    cpu[key]!.push(measured.cpuMicrosPerCall);
    return measured.rate;
  };
  const steps: Record<string, { unit: string; measure: () => Promise<number> }> = {
    isolatedVmDirect: { unit: "events/s", measure: loop("isolatedVmDirect", direct.call) },
    nodeVm: { unit: "events/s", measure: loop("nodeVm", vmBaseline.call) },
    plainFunction: { unit: "events/s", measure: loop("plainFunction", plain.call) },
  };
  if (dispatch) {
    steps.coreDispatch = {
      unit: "events/s",
      measure: async () => {
        const measured = await dispatch.measure(s.dispatchEvents);
        cpu.coreDispatch!.push(measured.cpuMicrosPerEvent);
        return measured.rate;
      },
    };
  }
  try {
    const figures = await interleave(s.rounds, steps, (step, round, error) => note(`${step} round ${round + 1}`, error));
    const cpuFigures = Object.fromEntries(Object.entries(cpu).filter(([, v]) => v.length > 0).map(([k, v]) => [k, figure(v, "µs CPU/event")]));
    if (profileDir && dispatch) {
      const { profile } = await profileSection(() => dispatch.measure(s.dispatchEvents));
      profiles.coreDispatchDaemon = { top: topCosts(profile, 12), layers: costsByLayer(profile) };
    }
    return { ...figures, cpu: cpuFigures };
  } finally {
    await dispatch?.stop().catch((error: unknown) => note("core dispatch stop", error));
    direct.dispose();
    if (sandboxProfileDir) profiles.coreDispatchSandbox = summarizeProfiles(sandboxProfileDir);
  }
}

/** Top costs of every profile in a folder, named by the process they came from. */
function summarizeProfiles(dir: string): Record<string, { busyMs: number; top: Cost[]; layers: Cost[] }> {
  const summary: Record<string, { busyMs: number; top: Cost[]; layers: Cost[] }> = {};
  for (const { file, profile } of readProfiles(dir)) {
    const top = topCosts(profile, 12);
    const layers = costsByLayer(profile, 10);
    const isSandbox = profile.nodes.some((n) => n.callFrame.url.endsWith("sandbox/worker.ts"));
    const name = `${isSandbox ? "sandbox" : "daemon"}:${path.basename(file)}`;
    summary[name] = { busyMs: layers.reduce((sum, c) => sum + c.selfMs, 0), top, layers };
  }
  return summary;
}

/** The largest plugin count whose start-up, extrapolated from 1 and 100 plugins, fits the allowance. */
function pickLargestCount(one: number | undefined, hundred: number | undefined, allowanceSec: number): number | undefined {
  if (!Number.isFinite(allowanceSec)) return LARGEST_COUNTS[0];
  if (one === undefined || hundred === undefined) return undefined;
  const perPlugin = Math.max(hundred - one, 0) / 99;
  return LARGEST_COUNTS.find((n) => one + perPlugin * (n - 1) <= allowanceSec * 1000);
}

/**
 * CPU time (ms) of a daemon's process tree so far: in total, and per process and thread kind
 * (`daemon.main`, `daemon.threads` — the SQLite writer, libuv, GC helpers —, `sandbox.main`,
 * `sandbox.threads` — the isolates' own threads). Processes that used nothing are left out.
 */
function cpuByRole(pid: number): Record<string, number> {
  const byRole: Record<string, number> = { total: 0 };
  for (const p of treeCpu(pid)) {
    const role = roleOf(p, pid);
    byRole.total! += p.cpuMs;
    if (p.cpuMs === 0) continue;
    byRole[`${role}.main`] = (byRole[`${role}.main`] ?? 0) + p.mainThreadMs;
    byRole[`${role}.threads`] = (byRole[`${role}.threads`] ?? 0) + p.cpuMs - p.mainThreadMs;
  }
  return byRole;
}

function roleOf(p: { pid: number; name: string }, daemonPid: number): string {
  return p.pid === daemonPid ? "daemon" : p.name.endsWith("worker.ts") ? "sandbox" : p.name.includes("esbuild") ? "esbuild" : "other";
}

/** Resident memory of a daemon's process tree, by role. */
function memoryOf(pid: number): { totalMb: number; byProcess: Record<string, number> } {
  const tree = treeRss(pid);
  const byProcess: Record<string, number> = {};
  for (const p of tree.processes) {
    const role = roleOf(p, pid);
    byProcess[role] = round((byProcess[role] ?? 0) + p.rssBytes / 2 ** 20, 1);
  }
  return { totalMb: round(tree.totalBytes / 2 ** 20, 1), byProcess };
}

/** Runs `fn` with extra environment, for the child processes it starts (profiling). */
async function withEnv<T>(extra: Record<string, string> | undefined, fn: () => Promise<T>): Promise<T> {
  if (!extra) return fn();
  const before = Object.fromEntries(Object.keys(extra).map((key) => [key, process.env[key]]));
  Object.assign(process.env, extra);
  try {
    return await fn();
  } finally {
    for (const [key, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

