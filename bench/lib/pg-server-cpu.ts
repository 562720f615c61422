/**
 * CPU time of the local PostgreSQL server during a measured window, from /proc: every process
 * whose command is `postgres` (the postmaster, its background processes, the backends), user +
 * system time of all its threads plus that of its children reaped meanwhile (a backend that
 * ends during the window moves its time into the postmaster's cutime/cstime, so the total is
 * not lost when the pool closes a connection).
 *
 * The server may have other clients while the bench runs (this machine is shared). Backends are
 * told apart by the client port in their process title (`postgres: 15/main: user db
 * 127.0.0.1(54321) idle`), matched against the TCP sockets of the processes the bench names:
 * the hookd instances under load, and the bench itself (its polling of the store, which a
 * production deployment does not do). Backends of anyone else are left out and reported; the
 * work they cause in the shared background processes (WAL writer, checkpointer), and the time of
 * their backends that end during the window (it lands in the postmaster's cutime), cannot be
 * split off and stays in.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type pg from "pg";
import { descendants } from "./proc.ts";

/** USER_HZ, as in proc.ts: 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

interface PostgresProcess {
  pid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
  /** The client's TCP port for a backend, from its process title; undefined for the server's own processes. */
  clientPort?: number;
  /** A backend on a Unix socket (`[local]`): never one of the bench's, which use TCP. */
  local?: boolean;
}

export interface ServerCpuSnapshot {
  processes: Map<number, PostgresProcess>;
  /** Local TCP ports of connections to the server from the processes the bench named. */
  ports: { hookd: Set<number>; bench: Set<number> };
}

/** CPU the server spent in a window, in ms, by whom it served. */
export interface ServerCpuWindow {
  /** Every postgres process, including backends that ended during the window. */
  totalMs: number;
  /** Backends of the bench's own connections (its polling of the store). */
  benchMs: number;
  /** Backends of other clients of the server (not this bench's). */
  otherClientsMs: number;
  /** What serving the hookd instances cost the server: total - bench - other clients. */
  hookdMs: number;
  /** Whether any connection of the hookd instances was found: without one, hookdMs means nothing. */
  attributed: boolean;
}

/**
 * Why the server's CPU cannot be read here, or null when it can: the server must be this
 * machine's, and the backend of `client` must be visible in /proc as a process named postgres
 * (not so when PostgreSQL runs on another host, in another container's pid namespace, or when
 * /proc hides other users' processes).
 */
export async function serverCpuUnavailable(client: pg.Client, connectionUrl: string): Promise<string | null> {
  const host = new URL(connectionUrl).hostname.replace(/^\[|\]$/g, "");
  if (!/^(127\.\d+\.\d+\.\d+|localhost|::1|)$/.test(host)) return `the server (${host}) is not on this machine: its processes are not in this /proc`;
  const row = (await client.query("SELECT pg_backend_pid() AS pid, inet_client_port() AS port")).rows[0] as { pid: number; port: number | null };
  const pid = Number(row.pid);
  let comm: string;
  try {
    comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch (error) {
    return `the backend serving the bench (pid ${pid}, as the server reports it) is not readable in /proc: ${(error as Error).message.split("\n")[0]} (another pid namespace, or /proc mounted with hidepid)`;
  }
  if (comm !== "postgres") return `pid ${pid}, the bench's backend as the server reports it, is "${comm}" in this /proc, not postgres: the server runs in another pid namespace`;
  try {
    cpuTicks(pid);
  } catch (error) {
    return `/proc/${pid}/stat of the server's backend is not readable: ${(error as Error).message.split("\n")[0]}`;
  }
  const title = readCmdline(pid);
  if (row.port !== null && title !== undefined && /\(\d+\)/.test(title) && !title.includes(`(${row.port})`)) {
    return `pid ${pid} is a local postgres process but serves another client (its title: "${title}"): the server runs in another pid namespace`;
  }
  if (title !== undefined && !/\(\d+\)|\[local\]/.test(title)) {
    return `backends' process titles show no client (update_process_title is off?): the bench cannot tell its backends from other clients'`;
  }
  return null;
}

/** The postgres processes' CPU so far, and the ports of the named processes' connections to `serverPort`. */
export function snapshotServerCpu(hookdPids: readonly number[], serverPort: number): ServerCpuSnapshot {
  const processes = new Map<number, PostgresProcess>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
      continue; // exited while we looked
    }
    if (comm !== "postgres") continue;
    let ticks: number;
    try {
      ticks = cpuTicks(pid);
    } catch {
      continue; // exited between the two reads: its time is in its parent's cutime now
    }
    const title = readCmdline(pid) ?? "";
    const port = /\((\d+)\)/.exec(title)?.[1];
    processes.set(pid, { pid, ticks, ...(port !== undefined ? { clientPort: Number(port) } : {}), ...(title.includes("[local]") ? { local: true } : {}) });
  }
  const family = (pids: readonly number[]) => pids.flatMap((pid) => [pid, ...descendants(pid)]);
  return { processes, ports: { hookd: connectionPorts(family(hookdPids), serverPort), bench: connectionPorts([process.pid], serverPort) } };
}

/** What the server spent between two snapshots. */
export function serverCpuBetween(before: ServerCpuSnapshot, after: ServerCpuSnapshot): ServerCpuWindow {
  const ticksOf = (snapshot: ServerCpuSnapshot) => [...snapshot.processes.values()].reduce((sum, p) => sum + p.ticks, 0);
  // A connection opened during the window is known only to the later snapshot, one closed during
  // it only to the earlier one: the union names both.
  const hookd = new Set([...before.ports.hookd, ...after.ports.hookd]);
  const bench = new Set([...before.ports.bench, ...after.ports.bench]);
  let benchTicks = 0;
  let otherTicks = 0;
  for (const p of after.processes.values()) {
    const earlier = before.processes.get(p.pid);
    // A pid reused by a new backend started from zero within the window.
    const used = earlier && earlier.clientPort === p.clientPort && earlier.ticks <= p.ticks ? p.ticks - earlier.ticks : p.ticks;
    if (p.clientPort !== undefined && bench.has(p.clientPort)) benchTicks += used;
    else if (p.local || (p.clientPort !== undefined && !hookd.has(p.clientPort))) otherTicks += used;
  }
  const totalMs = ticksToMs(ticksOf(after) - ticksOf(before));
  const benchMs = ticksToMs(benchTicks);
  const otherClientsMs = ticksToMs(otherTicks);
  return { totalMs, benchMs, otherClientsMs, hookdMs: Math.max(totalMs - benchMs - otherClientsMs, 0), attributed: hookd.size > 0 };
}

/** utime + stime + cutime + cstime (fields 14 to 17 of /proc/<pid>/stat), in ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name may contain spaces and parentheses: fields start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
}

function readCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return undefined;
  }
}

/** Local ports of the TCP connections to `serverPort` that the given processes hold open. */
function connectionPorts(pids: readonly number[], serverPort: number): Set<number> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith("socket:[")) inodes.add(target.slice(8, -1));
      } catch {
        // Closed while we looked.
      }
    }
  }
  const ports = new Set<number>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let lines: string[];
    try {
      lines = readFileSync(table, "utf8").trim().split("\n").slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const remote = fields[2];
      const inode = fields[9];
      if (!local || !remote || !inode || !inodes.has(inode)) continue;
      if (Number.parseInt(remote.split(":")[1] ?? "", 16) !== serverPort) continue;
      ports.add(Number.parseInt(local.split(":")[1] ?? "", 16));
    }
  }
  return ports;
}

function ticksToMs(ticks: number): number {
  return (ticks / TICKS_PER_SECOND) * 1000;
}
