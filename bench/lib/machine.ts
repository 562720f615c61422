/**
 * What a result was measured on: a figure means little without the machine, the load on it
 * when the run began, and the versions of Node and of the libraries on the hot path.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** Libraries whose version changes the figures. */
const LIBRARIES = ["isolated-vm", "better-sqlite3", "fastify", "esbuild", "zod", "pino", "autocannon", "tsx"];

export interface MachineDescription {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  /** 1-minute load average when the description was taken: > cores means a busy machine. */
  loadAverage1m: number;
  node: string;
  v8: string;
  libraries: Record<string, string>;
  /** The commit measured, "+dirty" when the tree had changes. */
  commit: string;
  /** Filesystem of the temp folder, where the benchmark's SQLite files live (fsync cost). */
  tempFilesystem: string;
}

export function describeMachine(): MachineDescription {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverage1m: Math.round(os.loadavg()[0]! * 100) / 100,
    node: process.version,
    v8: process.versions.v8,
    libraries: Object.fromEntries(LIBRARIES.map((name) => [name, packageVersion(name) ?? "missing"])),
    commit: gitCommit(),
    tempFilesystem: filesystemOf(os.tmpdir()),
  };
}

/** Version of an installed package, from its package.json under `root`/node_modules. */
export function packageVersion(name: string, root = REPO): string | undefined {
  const file = path.join(root, "node_modules", name, "package.json");
  if (!existsSync(file)) return undefined;
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function gitCommit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

function filesystemOf(dir: string): string {
  try {
    const line = execFileSync("df", ["-T", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim().split("\n")[1] ?? "";
    const [device, type] = line.split(/\s+/);
    return `${type ?? "?"} (${device ?? "?"})`;
  } catch {
    return "unknown";
  }
}
