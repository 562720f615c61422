/**
 * CPU profiles of the gaps: where a missed target's time goes. In-process sections are profiled
 * with the inspector; child processes (the daemon, its sandbox) with `--cpu-prof`, read back
 * from the files they write at exit. Either way the result is a short list of the top
 * self-time costs, which is what the README quotes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { REPO } from "./machine.ts";

const PRELOAD = fileURLToPath(new URL("./cpu-prof-preload.cjs", import.meta.url));

/**
 * Environment that makes every Node process started with it (and the processes those start
 * with the same environment, like hookd's sandbox) write a CPU profile into `dir` at exit.
 */
export function profilingEnv(dir: string): Record<string, string> {
  return { NODE_OPTIONS: `--require ${PRELOAD}`, HOOKD_BENCH_CPU_PROF_DIR: dir };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface Cost {
  /** `function (file:line)`, file relative to the repository or to node_modules. */
  frame: string;
  selfMs: number;
  /** Share of the profile's busy (non-idle) time. */
  pct: number;
}

/** Runs `fn` under the inspector's CPU profiler. */
export async function profileSection<T>(fn: () => Promise<T>): Promise<{ result: T; profile: CpuProfile }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  try {
    const result = await fn();
    const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: CpuProfile };
    return { result, profile };
  } finally {
    session.disconnect();
  }
}

/** The `n` frames with the most self time, idle time left out. */
export function topCosts(profile: CpuProfile, n = 10): Cost[] {
  return selfTimeBy(profile, n, (node) => describeFrame(node));
}

/** Self time grouped by package or source folder: which layer the time goes to. */
export function costsByLayer(profile: CpuProfile, n = 8): Cost[] {
  return selfTimeBy(profile, n, (node) => layerOf(node.callFrame.url, node.callFrame.functionName));
}

/** The `n` largest totals of self time by `keyOf`, idle time left out, with their share of the busy time. */
function selfTimeBy(profile: CpuProfile, n: number, keyOf: (node: CpuProfile["nodes"][number]) => string): Cost[] {
  const byNode = selfTimeByNode(profile);
  const totals = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const ms = byNode.get(node.id) ?? 0;
    if (ms === 0 || node.callFrame.functionName === "(idle)") continue;
    busy += ms;
    const key = keyOf(node);
    totals.set(key, (totals.get(key) ?? 0) + ms);
  }
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([frame, ms]) => ({ frame, selfMs: Math.round(ms), pct: busy > 0 ? Math.round((ms / busy) * 1000) / 10 : 0 }));
}

/** Every .cpuprofile file written into `dir` (by profilingEnv or `--cpu-prof --cpu-prof-dir=dir`). */
export function readProfiles(dir: string): Array<{ file: string; profile: CpuProfile }> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith(".cpuprofile"));
  } catch {
    return [];
  }
  return names.map((name) => ({ file: path.join(dir, name), profile: JSON.parse(readFileSync(path.join(dir, name), "utf8")) as CpuProfile }));
}

function selfTimeByNode(profile: CpuProfile): Map<number, number> {
  const result = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0 && deltas.length === samples.length) {
    // Each sample's time is the delta to the next one.
    for (let i = 0; i < samples.length; i++) {
      const next = deltas[i + 1] ?? 0;
      result.set(samples[i]!, (result.get(samples[i]!) ?? 0) + next / 1000);
    }
    return result;
  }
  const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const ms = (profile.endTime - profile.startTime) / 1000;
  for (const node of profile.nodes) result.set(node.id, total > 0 ? ((node.hitCount ?? 0) / total) * ms : 0);
  return result;
}

function describeFrame(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || "(anonymous)";
  if (!url) return name;
  return `${name} (${shortUrl(url)}:${lineNumber + 1})`;
}

function shortUrl(url: string): string {
  const file = url.replace(/^file:\/\//, "");
  const modules = file.lastIndexOf("node_modules/");
  if (modules >= 0) return file.slice(modules + "node_modules/".length);
  return file.startsWith(REPO) ? file.slice(REPO.length) : file;
}

function layerOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const file = url.replace(/^file:\/\//, "");
  const modules = file.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = file.slice(modules + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (file.startsWith("node:")) return `node:${file.slice(5).split("/")[0]}`;
  if (file.startsWith(REPO)) return path.dirname(file.slice(REPO.length));
  return file;
}
