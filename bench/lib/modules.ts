/**
 * Finds the benchmark modules (bench/*.bench.ts) and runs each in its own process group with a
 * time bound. A module that crashes, hangs or leaks processes spoils only its own figures: the
 * harness records what happened, kills whatever the module left behind, and goes on.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { waitUntil } from "../../test/helpers/wait.ts";
import type { ModuleOutcome } from "./report.ts";

const CHILD = fileURLToPath(new URL("./module-child.ts", import.meta.url));

/**
 * Modules the issues promise, and those the summary's targets read (postgres, time); one that is
 * absent is reported as missing, not silently skipped.
 */
export const EXPECTED_MODULES = ["core", "delivery", "postgres", "reload", "sandbox", "time"];

export interface ModuleFile {
  name: string;
  file: string;
}

/** bench/*.bench.ts, core first (it holds the cross-cutting baselines), then by name. */
export function discoverModules(benchDir: string): ModuleFile[] {
  const found = readdirSync(benchDir)
    .filter((name) => name.endsWith(".bench.ts"))
    .map((name) => ({ name: name.slice(0, -".bench.ts".length), file: path.join(benchDir, name) }));
  return found.sort((a, b) => (a.name === "core" ? -1 : b.name === "core" ? 1 : a.name.localeCompare(b.name)));
}

export interface RunModuleOptions {
  quick: boolean;
  timeoutMs: number;
  /** Extra environment for the module (profiling switches). */
  env?: Record<string, string>;
  /** Called with each chunk the module prints (progress on the console with --verbose). */
  onOutput?: (chunk: string) => void;
}

export async function runModule(module: ModuleFile, options: RunModuleOptions): Promise<ModuleOutcome> {
  const resultFile = path.join(tmpdir(), `hookd-bench-${module.name}-${process.pid}-${Date.now()}.json`);
  // The module's temporary files (projects, databases, Node-RED's folder) go to a folder of its
  // own, removed afterwards: a module killed at its bound cannot clean up after itself.
  const moduleTmp = mkdtempSync(path.join(tmpdir(), `hookd-bench-${module.name}-tmp-`));
  shareTsxCache(moduleTmp);
  const started = performance.now();
  // Its own process group (detached), so one kill ends the module and everything it started.
  const child = spawn(process.execPath, ["--no-node-snapshot", "--import", "tsx", CHILD, module.file, resultFile, options.quick ? "quick" : "full"], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "", TMPDIR: moduleTmp, ...options.env },
  });
  current = child.pid;
  let log = "";
  const collect = (chunk: string) => {
    log = (log + chunk).slice(-64_000);
    options.onOutput?.(chunk);
  };
  child.stdout!.setEncoding("utf8").on("data", collect);
  child.stderr!.setEncoding("utf8").on("data", collect);

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid!);
  }, options.timeoutMs);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  clearTimeout(timer);
  current = undefined;
  // Helpers that exit on their own once their parent is gone (esbuild's service, a sandbox
  // process) get a moment to do so; what is left after it is a leak.
  const leakedProcesses = await leftInGroup(child.pid!, 1500);
  killGroup(child.pid!);
  rmSync(moduleTmp, { recursive: true, force: true });
  const durationMs = performance.now() - started;

  const base = { name: module.name, file: path.relative(process.cwd(), module.file), durationMs, log, ...(leakedProcesses ? { leakedProcesses } : {}) };
  if (timedOut) return { ...base, status: "timeout", error: `did not finish within ${Math.round(options.timeoutMs / 1000)} s (killed)` };
  if (!existsSync(resultFile)) {
    return { ...base, status: "failed", error: `exited (${exit.signal ?? exit.code}) without a result; last output: ${log.trim().split("\n").slice(-3).join(" / ")}` };
  }
  try {
    const report = JSON.parse(readFileSync(resultFile, "utf8")) as { ok: boolean; result?: Record<string, unknown>; error?: string };
    if (!report.ok) return { ...base, status: "failed", error: report.error ?? "failed" };
    return { ...base, status: "ok", result: report.result ?? {} };
  } finally {
    rmSync(resultFile, { force: true });
  }
}

let current: number | undefined;

/**
 * tsx keeps its transpile cache in <tmpdir>/tsx-<uid>. Linking it into the module's temp folder
 * keeps it warm, as it is for a user's daemon: a cold cache would add seconds to the first
 * start-up a module measures.
 */
function shareTsxCache(moduleTmp: string): void {
  const name = `tsx-${process.getuid?.() ?? 0}`;
  try {
    mkdirSync(path.join(tmpdir(), name), { recursive: true });
    symlinkSync(path.join(tmpdir(), name), path.join(moduleTmp, name));
  } catch {
    // A cold cache only costs time.
  }
}

/** Kills the module running now, if any (the harness was interrupted). */
export function killCurrentModule(): void {
  if (current !== undefined) killGroup(current);
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // The group is empty: nothing left to clean up.
  }
}

async function leftInGroup(pgid: number, graceMs: number): Promise<number> {
  await waitUntil(() => groupMembers(pgid).length === 0, { timeoutMs: graceMs, intervalMs: 100 }).catch(() => undefined);
  return groupMembers(pgid).length;
}

/** Pids whose process group is `pgid` (field 5 of /proc/<pid>/stat). */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name may contain spaces and parentheses: fields start after the last ")".
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // A zombie is already dead, only not reaped yet.
      if (Number(fields[2]) === pgid && fields[0] !== "Z") members.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return members;
}
