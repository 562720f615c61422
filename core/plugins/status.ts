/**
 * What `GET /api/plugins`, `hookd status` and the console show for each plugin: its state, the
 * version serving, what that version registered, how long it took to build, the last failure,
 * routes whose input its actions cannot take, and (from the store and the circuit breaker) its
 * pending runs and run health. Built from the plugin manager's records; no state of its own.
 */
import path from "node:path";
import type { RouteInputError } from "../routing/index.ts";
import type { RunError } from "../store/types.ts";
import type { PluginManifest } from "../../sandbox/contract/run.ts";
import type { PluginEntry } from "./discover.ts";

/** What `GET /api/plugins` shows of a plugin's run health (kept by core/delivery/circuit-breaker.ts). */
export interface PluginHealth {
  /** `running`, `paused` (deliveries wait) or `probing` (running again after a pause). */
  state: "running" | "paused" | "probing";
  consecutiveFailures: number;
  pausedUntil: string | null;
  /** Times the breaker paused the plugin. */
  pauses: number;
  /** Runs that hit a limit (time, CPU, memory) and had the plugin's isolate disposed and rebuilt. */
  isolateRestarts: number;
  lastFailure: { code: string; message: string; runId: string; at: string } | null;
}

export type PluginState = "loading" | "loaded" | "failed" | "removed";

/** What `GET /api/plugins` shows for one plugin. */
export interface PluginStatus {
  name: string;
  file: string;
  state: PluginState;
  /** The version taking runs; null until one loaded (and after removal). */
  version: number | null;
  loadedAt: string | null;
  events: string[];
  actions: string[];
  compileMs: number | null;
  loadMs: number | null;
  /** The last compile or load failure; cleared by the next good version. */
  lastError: (RunError & { at: string; version: number }) | null;
  /**
   * Routes (config `routes`) to this plugin's actions whose input leaves out a field the action
   * requires (HOOKD_ROUTE_INPUT_MISSING): known once the action's input schema loads.
   */
  routeErrors?: RouteInputError[];
  /** Runs waiting for this plugin (a removed plugin's runs wait for its return), counted up to 1000 per claim key; null when unknown. */
  pendingRuns?: number | null;
  /** Run health: paused by the circuit breaker, failures in a row, isolates rebuilt after a limit. */
  health?: PluginHealth;
}

/** The version of a plugin that serves, as the manager keeps it. */
export interface ServingRecord {
  version: number;
  manifest: PluginManifest;
  loadedAt: Date;
  compileMs: number;
}

/** A plugin as the manager keeps it, as far as its status needs. */
export interface PluginRecord {
  entry: PluginEntry;
  state: PluginState;
  current: ServingRecord | undefined;
  lastError: PluginStatus["lastError"];
}

export interface StatusContext {
  /** Paths are shown relative to this folder. */
  root: string;
  /** Routes to the serving version's actions whose input it cannot take. */
  routeErrors: (manifest: PluginManifest) => RouteInputError[];
  /** Run health from the circuit breaker, when there is one. */
  health?: ((plugin: string) => PluginHealth) | undefined;
}

/** The status of every plugin, by name. */
export function pluginStatuses(records: Iterable<PluginRecord>, context: StatusContext): PluginStatus[] {
  return [...records].sort((a, b) => a.entry.name.localeCompare(b.entry.name)).map((record) => pluginStatus(record, context));
}

function pluginStatus(p: PluginRecord, context: StatusContext): PluginStatus {
  return {
    name: p.entry.name,
    file: path.relative(context.root, p.entry.file),
    state: p.state,
    version: p.current?.version ?? null,
    loadedAt: p.current?.loadedAt.toISOString() ?? null,
    events: p.current?.manifest.events ?? [],
    actions: p.current?.manifest.actions ?? [],
    compileMs: p.current ? roundMs(p.current.compileMs) : null,
    loadMs: p.current ? roundMs(p.current.manifest.loadMs) : null,
    lastError: p.lastError,
    ...(p.current ? routeErrorsField(context.routeErrors(p.current.manifest)) : {}),
    ...(context.health ? { health: context.health(p.entry.name) } : {}),
  };
}

/**
 * The statuses with each plugin's pending runs, counted by the store over its claim keys; a
 * count that fails shows as null, never failing the listing.
 */
export function withPendingRuns(
  statuses: readonly PluginStatus[],
  claimKeysOf: (plugin: string) => string[],
  count: (keys: readonly string[]) => Promise<number>,
): Promise<PluginStatus[]> {
  return Promise.all(
    statuses.map(async (status) => {
      const pendingRuns = await count(claimKeysOf(status.name)).catch(() => null);
      return { ...status, pendingRuns };
    }),
  );
}

/** Milliseconds to one decimal, as logs and statuses show them. */
export function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function routeErrorsField(errors: RouteInputError[]): Pick<PluginStatus, "routeErrors"> {
  return errors.length > 0 ? { routeErrors: errors } : {};
}
