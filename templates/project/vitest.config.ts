// Plugins run in V8 isolates (isolated-vm): each test file runs in a forked process with the
// flag isolates need on Node 20+. A plain object, so the file loads whichever vitest runs it.
export default {
  test: {
    pool: "forks",
    execArgv: ["--no-node-snapshot"],
    include: ["plugins/**/*.test.ts", "test/**/*.test.ts"],
  },
};
