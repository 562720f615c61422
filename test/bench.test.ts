import path from "node:path";
import { describe, expect, it } from "vitest";
import { discoverModules, runModule } from "../bench/lib/modules.ts";
import { renderMarkdown, type BenchRun } from "../bench/lib/report.ts";
import { figure, median, percentile, ratio } from "../bench/lib/stats.ts";
import { serverCpuBetween, type ServerCpuSnapshot } from "../bench/lib/pg-server-cpu.ts";
import { checkTargets } from "../bench/lib/targets.ts";
import { FIXTURES } from "./helpers/daemon.ts";

const BENCH_FIXTURES = path.join(FIXTURES, "bench");
const module = (name: string) => ({ name, file: path.join(BENCH_FIXTURES, `${name}.bench.ts`) });

describe("bench statistics", () => {
  it("interpolates percentiles and takes the median of unsorted samples", () => {
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5], 99)).toBeCloseTo(4.96);
    expect(median([10, 30, 20])).toBe(20);
    expect(percentile([], 50)).toBeNaN();
  });

  it("summarizes repeats as median and spread, leaving failed repeats out", () => {
    const rate = figure([100, 80, Number.NaN, 120], "events/s");
    expect(rate).toMatchObject({ median: 100, min: 80, max: 120, spreadPct: 40, n: 3, unit: "events/s" });
  });

  it("divides medians and says what it divided", () => {
    expect(ratio(figure([50], "x"), figure([100], "x"), "a / b")).toEqual({ ratio: 0.5, of: "a / b" });
    expect(ratio(figure([50], "x"), undefined, "a / b")).toBeUndefined();
  });
});

describe("bench targets", () => {
  it("says which targets hold, by how much the others miss, and which were not measured", () => {
    const checks = checkTargets({
      core: {
        ratios: {
          dispatchVsIsolatedVm: { ratio: 0.25, of: "" },
          e2eVsBareFastify: { ratio: 0.6, of: "" },
          idlePluginsRate: { ratio: 0.95, of: "" },
        },
        cpuPerEvent: { hookd1: figure([60, 70, 80], "µs CPU/event") },
        baselines: { nodeRed: { unavailable: "no network" } },
        hookd: {
          memoryPerIdlePluginMb: 4.5,
          startupMs: { "100": figure([900, 1000, 1100], "ms") },
          latencyAtHalfPeak: { rate: 3000, completionP99: figure([8], "ms") },
        },
        settings: { largestPluginCount: 1000 },
      },
      postgres: { ratios: { postgres1VsSqlite1: { ratio: 0.3, of: "" } } },
      time: { delayedBurst: { events: 3000, lastAfterDueMs: figure([800], "ms") }, ratios: { withVsWithoutSchedules: { ratio: 0.9, of: "" } } },
    });
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]));
    expect(byId["core-dispatch"]).toMatchObject({ holds: false, measured: 0.25 });
    expect(byId["core-dispatch"]!.verdict).toContain("2.00x short");
    expect(byId["e2e-vs-fastify"]).toMatchObject({ holds: true });
    expect(byId["e2e-vs-node-red"]).toMatchObject({ holds: null, measured: null });
    expect(byId["e2e-vs-node-red"]!.verdict).toContain("no network");
    expect(byId["cpu-per-event"]).toMatchObject({ holds: false, measured: 70 });
    expect(byId["cpu-per-event"]!.verdict).toContain("1.40x over");
    expect(byId["idle-plugins"]).toMatchObject({ holds: true });
    expect(byId["latency-half-peak"]).toMatchObject({ holds: true, measured: 8 });
    expect(byId["latency-half-peak"]!.verdict).toContain("at 3,000 events/s");
    expect(byId["postgres-vs-sqlite"]).toMatchObject({ holds: false, measured: 0.3 });
    expect(byId["memory-per-plugin"]).toMatchObject({ holds: false });
    expect(byId["memory-per-plugin"]!.verdict).toContain("1.50x over");
    expect(byId["startup-100"]).toMatchObject({ holds: true, measured: 1 });
    expect(byId["delayed-burst"]).toMatchObject({ holds: true, measured: 800 });
    expect(byId["delayed-burst"]!.verdict).toContain("a burst of 3,000 events, not 10,000");
    expect(byId["schedules"]).toMatchObject({ holds: false });
  });

  it("says what bounds the Node-RED and CPU targets on the machine: the bare route's rate, the route plus one isolate call", () => {
    const checks = checkTargets({
      core: {
        ratios: { e2eVsNodeRed: { ratio: 0.6, of: "" } },
        baselines: { bareFastify: figure([9000], "req/s"), nodeRed: figure([4000], "req/s") },
        cpuPerEvent: { hookd1: figure([400], "µs CPU/event"), bareFastify: figure([95], "µs CPU/event"), isolatedVmDirect: figure([34], "µs CPU/event") },
      },
    });
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]));
    expect(byId["e2e-vs-node-red"]!.verdict).toContain("the bare fastify route itself is 2.25 x Node-RED on this machine");
    expect(byId["cpu-per-event"]!.verdict).toContain("the floor on this machine: bare route 95 + one isolate call 34 = 129 µs");
  });

  it("holds a strict bar strictly and says why a skipped module's target is not measured", () => {
    const checks = checkTargets({
      core: { hookd: { startupMs: { "100": figure([1500], "ms") } } },
      postgres: { skipped: "PostgreSQL at 127.0.0.1 cannot be reached" },
    });
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]));
    expect(byId["startup-100"]).toMatchObject({ holds: false, measured: 1.5 });
    expect(byId["postgres-vs-sqlite"]).toMatchObject({ holds: null });
    expect(byId["postgres-vs-sqlite"]!.verdict).toContain("cannot be reached");
  });
});

describe("PostgreSQL server CPU", () => {
  const snapshot = (processes: Array<{ pid: number; ticks: number; clientPort?: number }>, hookd: number[], bench: number[]): ServerCpuSnapshot => ({
    processes: new Map(processes.map((p) => [p.pid, p])),
    ports: { hookd: new Set(hookd), bench: new Set(bench) },
  });

  it("counts a window's time by whom it served, keeping the time of backends that ended in it", () => {
    const before = snapshot(
      [
        { pid: 1, ticks: 1000 }, // the postmaster: its cutime grows with every backend it reaps
        { pid: 2, ticks: 50 }, // the WAL writer
        { pid: 10, ticks: 20, clientPort: 4001 }, // a hookd backend that ends during the window
        { pid: 11, ticks: 5, clientPort: 4002 }, // a hookd backend
        { pid: 12, ticks: 7, clientPort: 5000 }, // the bench's polling
        { pid: 13, ticks: 100, clientPort: 6000 }, // another client
      ],
      [4001, 4002],
      [5000],
    );
    const after = snapshot(
      [
        { pid: 1, ticks: 1000 + 60 }, // pid 10 ended with 60 ticks, 40 of them in the window
        { pid: 2, ticks: 70 },
        { pid: 11, ticks: 105, clientPort: 4002 },
        { pid: 12, ticks: 9, clientPort: 5000 },
        { pid: 13, ticks: 130, clientPort: 6000 },
        { pid: 14, ticks: 30, clientPort: 4003 }, // opened by hookd during the window
      ],
      [4002, 4003],
      [5000],
    );
    const window = serverCpuBetween(before, after);
    // Ticks are 10 ms: 40 + 20 + 100 + 2 + 30 + 30 = 222 ticks in all.
    expect(window.totalMs).toBe(2220);
    expect(window.benchMs).toBe(20);
    expect(window.otherClientsMs).toBe(300);
    expect(window.hookdMs).toBe(1900);
    expect(window.attributed).toBe(true);
  });

  it("says when no connection of hookd was found", () => {
    const empty = snapshot([{ pid: 1, ticks: 10 }], [], []);
    expect(serverCpuBetween(empty, snapshot([{ pid: 1, ticks: 20 }], [], [])).attributed).toBe(false);
  });
});

describe("bench harness", () => {
  it("finds bench modules and puts core first", () => {
    const found = discoverModules(path.join(FIXTURES, "..", "..", "bench")).map((m) => m.name);
    expect(found[0]).toBe("core");
  });

  it("runs a module in its own process and returns its figures", async () => {
    const outcome = await runModule(module("ok"), { quick: true, timeoutMs: 30_000 });
    expect(outcome.status).toBe("ok");
    expect(outcome.result).toMatchObject({ quick: true, rate: { median: 10 } });
  });

  it("reports a module that throws as failed, with its error", async () => {
    const outcome = await runModule(module("throws"), { quick: true, timeoutMs: 30_000 });
    expect(outcome.status).toBe("failed");
    expect(outcome.error).toContain("the bench broke");
  });

  it("reports a module without run() as failed", async () => {
    const outcome = await runModule(module("no-run"), { quick: true, timeoutMs: 30_000 });
    expect(outcome.status).toBe("failed");
    expect(outcome.error).toContain("does not export async function run");
  });

  it("kills a module that outlives its bound and reports a timeout", async () => {
    const outcome = await runModule(module("hangs"), { quick: true, timeoutMs: 3000 });
    expect(outcome.status).toBe("timeout");
    expect(outcome.durationMs).toBeLessThan(15_000);
  });

  it("kills the processes a module leaves behind and counts them", async () => {
    const outcome = await runModule(module("leaks"), { quick: true, timeoutMs: 30_000 });
    expect(outcome.status).toBe("ok");
    expect(outcome.leakedProcesses).toBe(1);
  });

  it("renders targets, module statuses and figures as Markdown", () => {
    const run: BenchRun = {
      mode: "quick",
      command: "npm run bench -- --quick",
      startedAt: "2026-01-01T00:00:00.000Z",
      durationSec: 12,
      machine: { cpu: "cpu", cores: 2, memoryGb: 4, os: "Linux", loadAverage1m: 0.5, node: "v20", v8: "11", libraries: {}, commit: "abc", tempFilesystem: "ext4" },
      modules: [
        { name: "ok", file: "bench/ok.bench.ts", status: "ok", durationMs: 1000, result: { rate: figure([9, 10, 11], "events/s"), errors: ["one | two"] } },
        { name: "sandbox", file: "bench/sandbox.bench.ts", status: "missing", durationMs: 0, error: "bench/sandbox.bench.ts does not exist yet" },
      ],
      targets: checkTargets({}),
    };
    const markdown = renderMarkdown(run);
    expect(markdown).toContain("| rate | 10 events/s | 20% (9..11, n=3) |");
    expect(markdown).toContain("| sandbox | missing: bench/sandbox.bench.ts does not exist yet | 0.0 s |");
    expect(markdown).toContain("| errors.1 | one \\| two |");
    expect(markdown).toContain("not measured");
  });
});
