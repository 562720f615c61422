#!/usr/bin/env node
// Start-up and memory of the real daemon with one plugin: spawn `bin/hookd.js start` in a temp
// project, poll GET /readyz until 200 (spawn to ready), then sum the resident memory (VmRSS) of
// the daemon and every descendant (the sandbox process, esbuild's service) from /proc, and note
// which of them have tsx on their command line or in NODE_OPTIONS. Also the CPU time (user +
// system) the tree had used when it became ready: on a busy machine the wall-clock figure says
// more about the neighbours than about hookd, the CPU time much less so.
//
//   node scripts/measure-start.mjs [--runs 5] [--bin path/to/bin/hookd.js]
//
// Plain JavaScript, no loader: the measuring process adds nothing to what it measures.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const BIN = process.argv.includes("--bin") ? path.resolve(process.argv[process.argv.indexOf("--bin") + 1]) : path.join(REPO, "bin/hookd.js");
const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 5;

const CONFIG = `import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({ events: { ...catalog, "bench.ping": z.object({ n: z.number() }) } });
`;
const PLUGIN = `import { on } from "hookd";
on("bench.ping", async (event, ctx) => { ctx.log.info({ n: event.n }, "ping"); });
`;

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function children(pid) {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) found.push(Number(entry), ...children(Number(entry)));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** CPU time (user + system) of a process so far, in ms (clock ticks are 1/100 s on Linux). */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

function describe(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").find((v) => v.startsWith("NODE_OPTIONS=")) ?? "";
  return { pid, rssKb, cmd, tsx: /tsx/.test(cmd) || /tsx/.test(env) };
}

async function once() {
  const dir = mkdtempSync(path.join(tmpdir(), "hookd-measure-"));
  mkdirSync(path.join(dir, "plugins"));
  writeFileSync(path.join(dir, "events.config.ts"), CONFIG);
  writeFileSync(path.join(dir, "plugins/ping.ts"), PLUGIN);
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, "start", "--config", path.join(dir, "events.config.ts")], {
    cwd: dir,
    env: { ...process.env, NODE_OPTIONS: "", HOOKD_PORT: String(port), HOOKD_HOST: "127.0.0.1", HOOKD_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`hookd exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error("not ready within 30 s");
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const readyMs = performance.now() - started;
    const cpuAtReady = new Map([child.pid, ...children(child.pid)].map((pid) => [pid, cpuMs(pid)]));
    const readyCpuMs = [...cpuAtReady.values()].reduce((sum, ms) => sum + ms, 0);
    // Memory once the start-up work has settled: a run of the plugin, then a short wait for it.
    await fetch(`http://127.0.0.1:${port}/events/bench.ping`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"n":1}' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const processes = [child.pid, ...children(child.pid)].map((pid) => ({ ...describe(pid), readyCpuMs: cpuAtReady.get(pid) ?? 0 }));
    return { readyMs, readyCpuMs, processes };
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", resolve)));
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = [];
for (let i = 0; i < runs; i++) results.push(await once());
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const last = results.at(-1);
for (const p of last.processes) console.log(`  pid ${p.pid}  ${(p.rssKb / 1024).toFixed(1)} MB  cpu at ready ${p.readyCpuMs} ms  tsx=${p.tsx}  ${p.cmd.slice(0, 110)}`);
console.log(`node ${process.version}, ${runs} runs`);
console.log(`spawn to /readyz 200: median ${median(results.map((r) => r.readyMs)).toFixed(0)} ms (runs: ${results.map((r) => r.readyMs.toFixed(0)).join(", ")})`);
console.log(`CPU time used by the tree at ready: median ${median(results.map((r) => r.readyCpuMs)).toFixed(0)} ms`);
console.log(`RSS, whole tree: median ${(median(results.map((r) => r.processes.reduce((s, p) => s + p.rssKb, 0))) / 1024).toFixed(1)} MB`);
console.log(`processes with tsx loaded: ${results.flatMap((r) => r.processes).filter((p) => p.tsx).length}`);
