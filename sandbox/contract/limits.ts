/**
 * The limits one plugin version runs under: the config's sandbox settings, overridden by what the
 * plugin declares in `plugin({...})`. A declared value out of range fails the load with the key's
 * name, rather than being clamped behind the author's back.
 */
import { HookdError } from "./errors.ts";
import type { PluginLimits, PluginOptions } from "./run.ts";

export interface ResolvedLimits {
  /** Heap of the plugin's isolate. */
  memoryMb: number;
  /** Wall time of one run, awaited host calls and continuations included. */
  timeoutMs: number;
  /** CPU time of the isolate during one run. */
  cpuTimeMs: number;
  maxConcurrentRuns: number;
  maxLogLinesPerRun: number;
  maxLogBytesPerRun: number;
  fetchTimeoutMs: number;
  fetchMaxBytes: number;
  kvMaxValueBytes: number;
  kvMaxKeys: number;
  maxEmitsPerRun: number;
}

export type LimitName = keyof ResolvedLimits;

/** Used where the config leaves a limit out (and by hosts built without a config). */
export const DEFAULT_LIMITS: Readonly<ResolvedLimits> = Object.freeze({
  memoryMb: 64,
  timeoutMs: 5000,
  cpuTimeMs: 2000,
  maxConcurrentRuns: 16,
  maxLogLinesPerRun: 1000,
  maxLogBytesPerRun: 1024 * 1024,
  fetchTimeoutMs: 10_000,
  fetchMaxBytes: 1024 * 1024,
  kvMaxValueBytes: 256 * 1024,
  kvMaxKeys: 10_000,
  maxEmitsPerRun: 100,
});

/** Time a plugin's top-level code gets when its isolate is built (the config's `sandbox.loadTimeoutMs`). */
export const DEFAULT_LOAD_TIMEOUT_MS = 5000;

/** What a plugin may declare, as for the config (core/config/settings.ts). */
const RANGES: Readonly<Record<LimitName, readonly [number, number]>> = {
  memoryMb: [8, 4096],
  timeoutMs: [10, 15 * 60_000],
  cpuTimeMs: [10, 15 * 60_000],
  maxConcurrentRuns: [1, 1000],
  maxLogLinesPerRun: [1, 1_000_000],
  maxLogBytesPerRun: [1024, 256 * 1024 * 1024],
  fetchTimeoutMs: [10, 15 * 60_000],
  fetchMaxBytes: [1, 256 * 1024 * 1024],
  kvMaxValueBytes: [1, 64 * 1024 * 1024],
  kvMaxKeys: [1, 10_000_000],
  maxEmitsPerRun: [0, 100_000],
};

export const LIMIT_NAMES = Object.keys(RANGES) as LimitName[];

/**
 * How far a plugin may raise each limit above the config's value (`sandbox.ceilings.<name>`).
 * The config's own value is always allowed, so an operator who raised `sandbox.memoryMb` need not
 * raise its ceiling too; a plugin may lower any limit freely. The defaults keep one plugin from
 * taking what the whole sandbox process has (the ranges above go to 4 GB of heap, 15-minute runs
 * and 100,000 emits per run).
 */
export const DEFAULT_CEILINGS: Readonly<Record<LimitName, number>> = Object.freeze({
  memoryMb: 256,
  timeoutMs: 60_000,
  cpuTimeMs: 30_000,
  maxConcurrentRuns: 64,
  maxLogLinesPerRun: 10_000,
  maxLogBytesPerRun: 8 * 1024 * 1024,
  fetchTimeoutMs: 60_000,
  fetchMaxBytes: 16 * 1024 * 1024,
  kvMaxValueBytes: 4 * 1024 * 1024,
  kvMaxKeys: 100_000,
  maxEmitsPerRun: 1000,
});

/** The highest value a plugin may declare for each limit under this config. */
export function ceilingsOf(config: PluginLimits | undefined): Record<LimitName, number> {
  const base = baseLimits(config);
  const configured = (config?.ceilings ?? {}) as Partial<Record<LimitName, unknown>>;
  const ceilings = { ...DEFAULT_CEILINGS };
  for (const name of LIMIT_NAMES) {
    const value = configured[name];
    ceilings[name] = Math.max(typeof value === "number" && Number.isFinite(value) ? value : DEFAULT_CEILINGS[name], base[name]);
  }
  return ceilings;
}

/** The config's limits with defaults filled in. */
export function baseLimits(config: PluginLimits | undefined): ResolvedLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const name of LIMIT_NAMES) {
    const value = config?.[name];
    if (typeof value === "number" && Number.isFinite(value)) limits[name] = value;
  }
  return limits;
}

/** The config's limits overridden by the plugin's declaration; throws on a bad declared value. */
export function resolveLimits(config: PluginLimits | undefined, declared: PluginOptions, plugin: string): ResolvedLimits {
  const limits = baseLimits(config);
  const ceilings = ceilingsOf(config);
  for (const name of LIMIT_NAMES) {
    const value = (declared as Record<string, unknown>)[name];
    if (value === undefined) continue;
    const [min, max] = RANGES[name];
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw new HookdError("HOOKD_PLUGIN_OPTIONS_INVALID", [name, `${plugin} declares ${JSON.stringify(value)}; expected an integer from ${min} to ${max}`]);
    }
    // A load error, not a clamp: the author learns at once that the operator did not allow it.
    if (value > ceilings[name]) {
      throw new HookdError("HOOKD_PLUGIN_LIMIT_ABOVE_CEILING", [plugin, name, value, ceilings[name], `sandbox.ceilings.${name}`]);
    }
    limits[name] = value;
  }
  return limits;
}

/** The limits the in-isolate runtime enforces itself (the host enforces them again). */
export function runtimeLimits(
  limits: ResolvedLimits,
  maxHostCallsInFlight = DEFAULT_MAX_HOST_CALLS_IN_FLIGHT,
): { maxLogLinesPerRun: number; maxLogBytesPerRun: number; maxEmitsPerRun: number; maxHostCallsInFlight: number } {
  return { maxLogLinesPerRun: limits.maxLogLinesPerRun, maxLogBytesPerRun: limits.maxLogBytesPerRun, maxEmitsPerRun: limits.maxEmitsPerRun, maxHostCallsInFlight };
}

/** Host calls one run may have in flight (the config's `sandbox.maxHostCallsInFlight`). */
export const DEFAULT_MAX_HOST_CALLS_IN_FLIGHT = 64;
