/**
 * The peer a user would pick instead of hookd: Node-RED running node-red-flow.json (http in ->
 * function node doing the handler's work -> http response 202). Two major versions: 4.x, the
 * peer of every run, and 5.x (Node.js >= 22.9), measured beside it in full runs.
 *
 * Node-RED is not a dependency of hookd: the bench installs each major into the ignored folder
 * bench/.peers/ (4.x in its root, 5.x in node-red-5/) the first time it is needed. Without
 * network the install fails, and the peer is reported as unavailable; the rest of the bench goes on.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { waitUntil } from "../../test/helpers/wait.ts";
import { freePort, tracked } from "../lib/proc.ts";
import { stopChild, type RunningServer } from "../lib/servers.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PEERS_DIR = path.join(HERE, "..", ".peers");
const FLOW = path.join(HERE, "node-red-flow.json");
const SETTINGS = path.join(HERE, "node-red-settings.cjs");

export type NodeRedMajor = 4 | 5;

/** Where a major is installed (4.x keeps the folder of the runs before it). */
function prefixOf(major: NodeRedMajor): string {
  return major === 4 ? PEERS_DIR : path.join(PEERS_DIR, `node-red-${major}`);
}

function nodeRedDir(major: NodeRedMajor): string {
  return path.join(prefixOf(major), "node_modules", "node-red");
}

/**
 * Written once an install finished: an install killed half way (a module's time bound, Ctrl-C)
 * leaves a node_modules that has node-red's package.json but not all of its dependencies, and
 * Node-RED then fails at start; without the marker the folder is removed and installed again.
 */
function installedMarker(major: NodeRedMajor): string {
  return path.join(prefixOf(major), "installed-node-red.json");
}

export type PeerInstall = { available: true; version: string; installedNow: boolean; installMs: number } | { available: false; reason: string };

/** Installs Node-RED of that major into bench/.peers unless it is there already. Never throws. */
export function ensureNodeRed(major: NodeRedMajor = 4, timeoutMs = 180_000): PeerInstall {
  const prefix = prefixOf(major);
  const marker = installedMarker(major);
  const spec = `node-red@${major}`;
  const present = existsSync(marker) ? installedVersion(major) : undefined;
  if (present?.startsWith(`${major}.`)) return { available: true, version: present, installedNow: false, installMs: 0 };
  // Not there, or not known to be whole: start from an empty folder.
  rmSync(path.join(prefix, "node_modules"), { recursive: true, force: true });
  rmSync(marker, { force: true });
  mkdirSync(prefix, { recursive: true });
  const started = performance.now();
  const npmArgs = ["install", "--prefix", prefix, spec, "--no-audit", "--no-fund", "--loglevel=error", "--fetch-retries=1"];
  // Other installs on this machine serialize on the same lock; wait for it, within reason.
  const useFlock = spawnSync("flock", ["--version"], { stdio: "ignore" }).status === 0;
  const result = useFlock
    ? spawnSync("flock", ["-w", "120", "/tmp/npm.lock", "npm", ...npmArgs], { encoding: "utf8", timeout: timeoutMs })
    : spawnSync("npm", npmArgs, { encoding: "utf8", timeout: timeoutMs });
  const version = installedVersion(major);
  if (result.status !== 0 || !version?.startsWith(`${major}.`)) {
    const why = result.error?.message ?? (result.stderr || result.stdout || `npm exited with ${result.status}`).trim().split("\n").slice(-3).join(" ");
    return { available: false, reason: `npm install ${spec} into ${path.relative(path.join(HERE, ".."), prefix)} failed: ${why}` };
  }
  writeFileSync(marker, JSON.stringify({ spec, version }) + "\n");
  return { available: true, version, installedNow: true, installMs: performance.now() - started };
}

/** Starts Node-RED with the bench flow on a free loopback port; resolves once the flow answers. */
export async function startNodeRed(major: NodeRedMajor = 4): Promise<RunningServer & { startupMs: number }> {
  const userDir = mkdtempSync(path.join(tmpdir(), "hookd-bench-node-red-"));
  // The flow is copied: Node-RED may rewrite its flow file, and the repository's copy stays as written.
  copyFileSync(FLOW, path.join(userDir, "flows.json"));
  const port = await freePort();
  const started = performance.now();
  const child = tracked(
    spawn(process.execPath, [path.join(nodeRedDir(major), "red.js"), "--settings", SETTINGS, "--userDir", userDir, "--port", String(port)], {
      cwd: userDir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_OPTIONS: "", NODE_RED_ENABLE_PROJECTS: "false" },
    }),
  );
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output = (output + chunk).slice(-4000)));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output = (output + chunk).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopChild(child);
    rmSync(userDir, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`node-red exited with ${child.exitCode}: ${output}`);
        const response = await fetch(`${url}/events/bench.ping`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"did":1}' });
        await response.arrayBuffer();
        return response.status === 202;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `node-red answering on ${url}` },
    );
  } catch (error) {
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${output}`);
  }
  return { url, eventsPath: "/events/", pid: child.pid!, startupMs: performance.now() - started, stop };
}

function installedVersion(major: NodeRedMajor): string | undefined {
  const file = path.join(nodeRedDir(major), "package.json");
  if (!existsSync(file)) return undefined;
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}
