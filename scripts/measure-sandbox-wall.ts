// Start-up time and memory of the sandbox process with and without its kernel wall (bubblewrap).
//   node --import tsx scripts/measure-sandbox-wall.ts [runs]
// Each run starts the worker as the daemon does and waits for its "ready" line on fd 3. The
// variants take turns, so a busy machine slows them alike. Reported: wall-clock start-up, the
// CPU time the node process used until ready, its RSS then, and the RSS of bubblewrap's own
// processes (its parent and the PID namespace's init). The probe runs once, before the timings.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { sandboxCommand, wallStatus } from "../sandbox/wall.ts";

const runs = Number(process.argv[2] ?? 10);
const WORKER = fileURLToPath(new URL("../sandbox/worker.ts", import.meta.url));
const TICK_MS = 10; // USER_HZ 100

const variants = {
  "before the wall (tsx, no permission model)": () => ({ command: process.execPath, args: ["--no-node-snapshot", "--import", import.meta.resolve("tsx"), WORKER], env: {} }),
  "Node's TypeScript transform, no permission model, no bubblewrap": () => sandboxCommand({ worker: WORKER, mode: "off", withoutPermission: true }),
  "permission model only (sandbox.wall: off)": () => sandboxCommand({ worker: WORKER, mode: "off" }),
  "bubblewrap + permission model (auto)": () => sandboxCommand({ worker: WORKER, mode: "auto" }),
};

function statusKb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line?.split(/\s+/)[1] ?? 0);
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

function tree(pid: number): number[] {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number));
  return [pid, ...children.flatMap(tree)];
}

async function once(make: () => { command: string; args: string[]; env: Record<string, string> }) {
  const { command, args, env } = make();
  const started = performance.now();
  const child = spawn(command, args, { env, stdio: ["ignore", "ignore", "inherit", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    let text = "";
    (child.stdio[3] as Duplex).on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('"t":"ready"')) resolve();
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}`)));
  });
  const startMs = performance.now() - started;
  const pids = tree(child.pid!);
  const nodePid = pids.filter((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("worker.ts")).at(-1)!;
  const sample = { startMs, cpuMs: cpuMs(nodePid), nodeKb: statusKb(nodePid), wrapperKb: pids.filter((pid) => pid !== nodePid).reduce((sum, pid) => sum + statusKb(pid), 0) };
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
  return sample;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
console.log("wall here:", JSON.stringify(wallStatus("auto")));
const samples = new Map<string, Array<Awaited<ReturnType<typeof once>>>>();
for (let i = 0; i < runs; i++) {
  for (const [name, make] of Object.entries(variants)) samples.set(name, [...(samples.get(name) ?? []), await once(make)]);
}
for (const [name, list] of samples) {
  const pick = (key: keyof (typeof list)[number]) => median(list.map((s) => s[key]));
  console.log(
    `${name}: start ${pick("startMs").toFixed(0)} ms, node CPU ${pick("cpuMs").toFixed(0)} ms, node RSS ${(pick("nodeKb") / 1024).toFixed(1)} MiB, ` +
      `bubblewrap processes ${(pick("wrapperKb") / 1024).toFixed(1)} MiB (medians of ${runs})`,
  );
}
