/**
 * `GET /api/status` and `hookd status`: one look at a running daemon, its plugins, its queue,
 * its dead letters and the last errors, for an operator at a terminal.
 */
import { PACKAGE_JSON } from "../../sandbox/contract/locate.ts";
import type { PluginStatus } from "../plugins/status.ts";
import type { DeliveryRecord, DeliveryStatus, Store } from "../store/types.ts";

export interface DaemonStatus {
  version: string;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  ready: boolean;
  /** Why the daemon is not ready; absent when it is. */
  notReadyReason?: string | undefined;
  sandbox?: SandboxState | undefined;
  queue: {
    pending: number;
    running: number;
    dead: number;
    done: number;
    oldestPendingAgeSeconds: number | null;
  };
  plugins: PluginStatus[];
  /** The latest failed and dead runs, newest first. */
  recentErrors: RecentError[];
}

export interface SandboxState {
  running: boolean;
  restarts: number;
  /** What stands around the sandbox process (sandbox/wall.ts); `missing` says why the kernel wall is not there. */
  wall?: { mode: string; kernel: boolean; permission: boolean; missing?: string | undefined } | undefined;
}

export interface RecentError {
  runId: number;
  plugin: string;
  kind: string;
  target: string;
  event: string;
  eventId: string;
  status: DeliveryStatus;
  attempts: number;
  maxAttempts: number;
  code: string;
  message: string;
  location?: string | undefined;
  at: string;
}

export interface StatusSources {
  store: Pick<Store, "countByStatus" | "oldestPendingAt" | "listRuns">;
  plugins: () => PluginStatus[] | Promise<PluginStatus[]>;
  notReadyReason: () => Promise<string | undefined>;
  sandbox?: (() => SandboxState) | undefined;
  startedAt: number;
  now?: () => number;
  /** How many recent errors to show. */
  recentErrors?: number;
}

export async function collectStatus(sources: StatusSources): Promise<DaemonStatus> {
  const now = (sources.now ?? Date.now)();
  const limit = sources.recentErrors ?? 10;
  const [counts, oldest, plugins, reason, failed, dead] = await Promise.all([
    sources.store.countByStatus(),
    sources.store.oldestPendingAt(),
    sources.plugins(),
    sources.notReadyReason(),
    sources.store.listRuns({ status: "failed", limit }),
    sources.store.listRuns({ status: "dead", limit }),
  ]);
  const recentErrors = [...failed, ...dead]
    .filter((run) => run.lastError !== null)
    .sort((a, b) => b.updatedAt - a.updatedAt || b.id - a.id)
    .slice(0, limit)
    .map(toRecentError);
  return {
    version: PACKAGE_JSON.version,
    pid: process.pid,
    startedAt: new Date(sources.startedAt).toISOString(),
    uptimeSeconds: Math.round((now - sources.startedAt) / 1000),
    ready: reason === undefined,
    notReadyReason: reason,
    sandbox: sources.sandbox?.(),
    queue: {
      pending: counts.pending,
      running: counts.running,
      dead: counts.dead,
      done: counts.done,
      oldestPendingAgeSeconds: oldest === null ? null : Math.max(0, Math.round((now - oldest) / 1000)),
    },
    plugins,
    recentErrors,
  };
}

/** The terminal view of `hookd status`. */
export function formatStatus(status: DaemonStatus, url: string): string {
  const lines: string[] = [];
  const state = status.ready ? "ready" : `NOT READY: ${status.notReadyReason ?? "unknown"}`;
  lines.push(`hookd ${status.version} at ${url}: ${state} (pid ${status.pid}, up ${formatDuration(status.uptimeSeconds)})`);
  if (status.sandbox) {
    lines.push(`sandbox: ${status.sandbox.running ? "running" : "down"}, ${status.sandbox.restarts} restart${status.sandbox.restarts === 1 ? "" : "s"}`);
    const wall = status.sandbox.wall;
    if (wall) lines.push(wall.kernel ? "sandbox wall: bubblewrap + Node permission model" : `sandbox wall: WARNING no kernel wall (${wall.missing})`);
  }
  const q = status.queue;
  const oldest = q.oldestPendingAgeSeconds === null ? "" : ` (oldest waits ${formatDuration(q.oldestPendingAgeSeconds)})`;
  lines.push(`queue: ${q.pending} pending${oldest}, ${q.running} running, ${q.dead} dead letter${q.dead === 1 ? "" : "s"}, ${q.done} done`);

  lines.push(`plugins (${status.plugins.filter((p) => p.state !== "removed").length}):`);
  if (status.plugins.length === 0) lines.push("  none");
  const width = Math.max(8, ...status.plugins.map((p) => p.name.length));
  for (const plugin of status.plugins) {
    if (plugin.state === "removed") continue;
    const handles = [...plugin.events, ...plugin.actions.map((a) => `action ${a}`)].join(", ") || "-";
    const version = plugin.version === null ? "-" : `v${plugin.version}`;
    lines.push(`  ${plugin.name.padEnd(width)}  ${plugin.state.padEnd(7)} ${version.padEnd(4)} ${handles}`);
    if (plugin.lastError) lines.push(`  ${"".padEnd(width)}  last error: ${plugin.lastError.code}: ${firstLine(plugin.lastError.message)}`);
  }

  lines.push(`recent errors (${status.recentErrors.length}):`);
  if (status.recentErrors.length === 0) lines.push("  none");
  for (const error of status.recentErrors) {
    lines.push(
      `  ${error.at}  run ${error.runId} ${error.status.padEnd(7)} ${error.plugin} ${error.target} ` +
        `attempt ${error.attempts}/${error.maxAttempts}  ${error.code}: ${firstLine(error.message)}${error.location && !error.message.includes(error.location) ? ` at ${error.location}` : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

function toRecentError(run: DeliveryRecord): RecentError {
  const error = run.lastError!;
  return {
    runId: run.id,
    plugin: run.plugin,
    kind: run.kind,
    target: run.target,
    event: run.eventName,
    eventId: run.eventId,
    status: run.status,
    attempts: run.attempts,
    maxAttempts: run.maxAttempts,
    code: error.code,
    message: error.message,
    location: error.location,
    at: new Date(run.updatedAt).toISOString(),
  };
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d ${Math.floor((seconds % 86_400) / 3600)}h`;
}

function firstLine(text: string): string {
  const line = text.split("\n", 1)[0] ?? "";
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

