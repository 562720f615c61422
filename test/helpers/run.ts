/**
 * Runs a command to its end in a child process and hands back its exit and output: bounded
 * (SIGKILL once `timeoutMs` passes, reported as `timedOut`), stdin closed or fed with `input`,
 * stdout and stderr collected as text. `runHookd` runs bin/hookd.js the way a user's shell would,
 * without this test run's NODE_OPTIONS. `processTree` lists what a running process started.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { BIN } from "./daemon.ts";

export interface RunOptions {
  cwd?: string;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, then closed; without it stdin is /dev/null. */
  input?: string;
  /** Killed with SIGKILL after this long (default 60 s). */
  timeoutMs?: number;
}

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The bound passed and the child was killed. */
  timedOut: boolean;
}

export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    if (options.input !== undefined) child.stdin!.end(options.input);
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** `hookd <args>` with this Node, as a user runs it; `env` adds to this process's environment. */
export function runHookd(args: readonly string[], options: Omit<RunOptions, "env"> & { env?: Record<string, string> } = {}): Promise<Ran> {
  return runProcess(process.execPath, [BIN, ...args], { ...options, env: { ...process.env, NODE_OPTIONS: "", ...options.env } });
}

/** The pids and command lines of a process and its descendants (Linux /proc). */
export function processTree(pid: number): Array<{ pid: number; cmd: string }> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // ended while we looked
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  return tree.flatMap((member) => {
    try {
      return [{ pid: member, cmd: readFileSync(`/proc/${member}/cmdline`, "utf8").split("\0").join(" ").trim() }];
    } catch {
      return [];
    }
  });
}
