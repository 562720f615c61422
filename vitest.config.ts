import { defineConfig } from "vitest/config";

// Isolates need --no-node-snapshot on Node 20+, and a forked pool so each test file
// gets a process of its own (a crashed isolate host must not take the runner down).
export default defineConfig({
  test: {
    pool: "forks",
    execArgv: ["--no-node-snapshot"],
    include: ["test/**/*.test.ts"],
    testTimeout: 90_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    maxWorkers: 2,
    // In CI, also a JSON report: .ci/run prints its totals as the closing line.
    reporters: process.env.CI ? ["default", ["json", { outputFile: process.env.HOOKD_VITEST_REPORT ?? "test/artifacts/vitest.json" }]] : ["default"],
  },
});
