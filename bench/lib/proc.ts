/**
 * Processes a benchmark starts: tracked so none outlives the benchmark, measured through /proc
 * (resident memory of a whole process tree: a daemon, its sandbox process and esbuild's service
 * all count, since a user pays for all of them).
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { waitUntil } from "../../test/helpers/wait.ts";

const children = new Set<ChildProcess>();
let hooked = false;

/** Registers a child to be killed when this process exits, however it exits. */
export function tracked<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (!hooked) {
    hooked = true;
    process.once("exit", killTracked);
  }
  return child;
}

/** SIGKILLs every tracked child still running (and its descendants). */
export function killTracked(): void {
  for (const child of children) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    for (const pid of [...descendants(child.pid), child.pid]) killQuietly(pid);
  }
}

/** Pids of every descendant of `pid` (children first, then theirs). */
/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function descendants(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const child of childrenOf(parent)) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

export interface ProcessMemory {
  pid: number;
  name: string;
  rssBytes: number;
}

/** Resident memory of a process and all its descendants. */
export function treeRss(pid: number): { totalBytes: number; processes: ProcessMemory[] } {
  const processes: ProcessMemory[] = [];
  for (const member of [pid, ...descendants(pid)]) {
    const rssBytes = rssOf(member);
    if (rssBytes !== undefined) processes.push({ pid: member, name: describe(member), rssBytes });
  }
  return { totalBytes: processes.reduce((sum, p) => sum + p.rssBytes, 0), processes };
}

/**
 * CPU time (user + system, all threads) used so far by a process and its descendants, in ms.
 * Divided by the events handled in between, it gives the cost per event, which a busy machine
 * distorts far less than a rate: contention makes work wait, it does not make it bigger.
 */
export function treeCpuMs(pid: number): number {
  return treeCpu(pid).reduce((sum, p) => sum + p.cpuMs, 0);
}

/**
 * CPU time used so far by each process of the tree, in ms, split into its main thread and its
 * other threads (worker threads, isolated-vm's isolate threads, the libuv pool, GC helpers).
 */
export function treeCpu(pid: number): Array<{ pid: number; name: string; cpuMs: number; mainThreadMs: number }> {
  const result: Array<{ pid: number; name: string; cpuMs: number; mainThreadMs: number }> = [];
  for (const member of [pid, ...descendants(pid)]) {
    const total = cpuTicks(`/proc/${member}/stat`);
    if (total === undefined) continue; // exited meanwhile: its time is lost with it
    const main = cpuTicks(`/proc/${member}/task/${member}/stat`) ?? total;
    result.push({ pid: member, name: describe(member), cpuMs: ticksToMs(total), mainThreadMs: ticksToMs(main) });
  }
  return result;
}

/** utime + stime (fields 14 and 15) of a /proc stat file, counted after the command name. */
function cpuTicks(file: string): number | undefined {
  try {
    const stat = readFileSync(file, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

function ticksToMs(ticks: number): number {
  return (ticks / CLOCK_TICKS_PER_SECOND) * 1000;
}

/** USER_HZ: 100 on every Linux this runs on (sysconf is not reachable from Node). */
const CLOCK_TICKS_PER_SECOND = 100;

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * What is left of a stopped daemon's process tree: its members get `graceMs` to end on their own
 * (the sandbox and esbuild's service do once the daemon is gone); whoever outlives it is a leak
 * and is killed.
 */
export async function reapFamily(family: readonly number[], graceMs: number): Promise<void> {
  await waitUntil(() => !family.some(alive), { timeoutMs: graceMs, intervalMs: 50 }).catch(() => undefined);
  for (const member of family) {
    try {
      process.kill(member, "SIGKILL");
    } catch {
      // Gone already, as it should be.
    }
  }
}

function childrenOf(pid: number): number[] {
  const result: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return result;
  }
  for (const task of tasks) {
    try {
      for (const token of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(" ")) {
        const child = Number(token);
        if (child > 0) result.push(child);
      }
    } catch {
      // The task ended while we read: nothing to add.
    }
  }
  return result;
}

function rssOf(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A short name for a process: what a reader needs to tell the daemon from its helpers. */
function describe(pid: number): string {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const interesting = args.find((a) => /worker\.ts$|hookd\.js$|red\.js$|esbuild$/.test(a)) ?? args[0] ?? "?";
    return interesting.split("/").slice(-2).join("/");
  } catch {
    return "?";
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}
