// Node 20 refuses --cpu-prof in NODE_OPTIONS, so processes a benchmark starts indirectly (the
// daemon's sandbox process) cannot be profiled that way. This preload does the same through the
// inspector: `NODE_OPTIONS="--require .../cpu-prof-preload.cjs"` with HOOKD_BENCH_CPU_PROF_DIR
// set. The in-thread inspector session answers synchronously, so the profile can be taken and
// written in the 'exit' handler, after a graceful stop or process.exit().
"use strict";
const dir = process.env.HOOKD_BENCH_CPU_PROF_DIR;
if (dir) {
  const { Session } = require("node:inspector");
  const { mkdirSync, writeFileSync } = require("node:fs");
  const path = require("node:path");
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 500 });
  session.post("Profiler.start");
  process.once("exit", () => {
    session.post("Profiler.stop", (error, result) => {
      if (error || !result) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `CPU.${Date.now()}.${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
