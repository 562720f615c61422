import path from "node:path";
import { describe, expect, it } from "vitest";
import { discoverModules, runModule } from "../bench/lib/modules.ts";
import { renderMarkdown, type BenchRun } from "../bench/lib/report.ts";
import { figure, median, percentile, ratio } from "../bench/lib/stats.ts";
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
          dispatchVsIsolatedVm: { ratio: 0.35, of: "" },
          e2eVsBareFastify: { ratio: 0.6, of: "" },
          idlePluginsRate: { ratio: 0.95, of: "" },
        },
        baselines: { nodeRed: { unavailable: "no network" } },
        hookd: { memoryPerIdlePluginMb: 4.5, startupMs: { "100": figure([900, 1000, 1100], "ms") } },
        settings: { largestPluginCount: 1000 },
      },
    });
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]));
    expect(byId["core-dispatch"]).toMatchObject({ holds: false, measured: 0.35 });
    expect(byId["core-dispatch"]!.verdict).toContain("2.00x short");
    expect(byId["e2e-vs-fastify"]).toMatchObject({ holds: true });
    expect(byId["e2e-vs-node-red"]).toMatchObject({ holds: null, measured: null });
    expect(byId["e2e-vs-node-red"]!.verdict).toContain("no network");
    expect(byId["idle-plugins"]).toMatchObject({ holds: true });
    expect(byId["memory-per-plugin"]).toMatchObject({ holds: false });
    expect(byId["memory-per-plugin"]!.verdict).toContain("1.50x over");
    expect(byId["startup-100"]).toMatchObject({ holds: true, measured: 1 });
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
