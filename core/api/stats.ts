/**
 * `GET /api/stats?minutes=60`: what the console's charts draw, read from the store (never from
 * this process's memory, so every instance of a cluster shows the same): per plugin, attempts and
 * failures per minute and p50/p99 duration over the window; overall, events accepted and runs
 * dead-lettered per minute. Minutes are epoch minutes (`ms / 60000`), dense (zeros filled in).
 */
import type { FastifyInstance } from "fastify";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { Store } from "../store/types.ts";

const MAX_MINUTES = 24 * 60;

export interface PluginStats {
  plugin: string;
  runs: number[];
  failed: number[];
  p50: number | null;
  p99: number | null;
}

export interface StatsAnswer {
  /** The first minute of the window (epoch minutes); each list has one entry per minute from it. */
  from: number;
  minutes: number;
  plugins: PluginStats[];
  overview: { accepted: number[]; dead: number[] };
}

export async function stats(store: Store, minutes: number, now = Date.now()): Promise<StatsAnswer> {
  const last = Math.floor(now / 60_000);
  const from = last - minutes + 1;
  const rows = await store.runStats(from * 60_000);
  const dense = () => new Array<number>(minutes).fill(0);
  const slot = (minute: number) => minute - from;
  const byPlugin = new Map<string, PluginStats & { durations: number[] }>();
  const entry = (plugin: string) => {
    let found = byPlugin.get(plugin);
    if (!found) byPlugin.set(plugin, (found = { plugin, runs: dense(), failed: dense(), p50: null, p99: null, durations: [] }));
    return found;
  };
  for (const row of rows.perMinute) {
    const at = slot(row.minute);
    if (at < 0 || at >= minutes) continue;
    const stats = entry(row.plugin);
    stats.runs[at]! += row.runs;
    stats.failed[at]! += row.failed;
  }
  for (const row of rows.durations) entry(row.plugin).durations.push(row.durationMs);
  const overview = { accepted: dense(), dead: dense() };
  for (const row of rows.accepted) if (slot(row.minute) >= 0 && slot(row.minute) < minutes) overview.accepted[slot(row.minute)]! += row.n;
  for (const row of rows.dead) if (slot(row.minute) >= 0 && slot(row.minute) < minutes) overview.dead[slot(row.minute)]! += row.n;
  const plugins = [...byPlugin.values()]
    .sort((a, b) => a.plugin.localeCompare(b.plugin))
    .map(({ durations, ...rest }) => {
      durations.sort((a, b) => a - b);
      return { ...rest, p50: percentile(durations, 0.5), p99: percentile(durations, 0.99) };
    });
  return { from, minutes, plugins, overview };
}

/** Nearest-rank percentile of sorted values; null when there are none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function statsApi(store: Store) {
  return async function registerStats(scope: FastifyInstance): Promise<void> {
    scope.get<{ Querystring: { minutes?: string } }>("/api/stats", async (request) => {
      const minutes = request.query.minutes === undefined ? 60 : Number(request.query.minutes);
      if (!Number.isSafeInteger(minutes) || minutes < 1 || minutes > MAX_MINUTES) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`minutes must be an integer from 1 to ${MAX_MINUTES}`]);
      return stats(store, minutes);
    });
  };
}
