import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const source = (file: string) => fileURLToPath(new URL(file, import.meta.url));

// Isolates need --no-node-snapshot on Node 20+, and a forked pool so each test file
// gets a process of its own (a crashed isolate host must not take the runner down).
export default defineConfig({
  // hookd's own tests import it by its public names and test the sources (as tsconfig.json's
  // `paths` does for types); the package is hookd-daemon, so the names do not resolve by themselves.
  resolve: {
    alias: [
      { find: /^hookd$/, replacement: source("./sandbox/runtime/api.ts") },
      { find: /^hookd\/config$/, replacement: source("./core/config/define.ts") },
      { find: /^hookd\/catalog$/, replacement: source("./core/catalog/index.ts") },
      { find: /^hookd\/testing$/, replacement: source("./core/testing/index.ts") },
    ],
  },
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
