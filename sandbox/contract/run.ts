/**
 * The run contract: what the daemon asks the sandbox to run, what comes back, and the plugin
 * version it runs in. Both sides import these types from here (the sandbox owns them, being the
 * lower layer); everything in them is plain data, so the same values travel in-process or over
 * the sandbox process's socket.
 */
import type { HookdErrorCode } from "./errors.ts";
import type { PluginOptions } from "../runtime/api.ts";

export type { PluginOptions };

/** A failed run, as it is recorded: a registry code, a message and where the plugin threw. */
export interface RunError {
  code: HookdErrorCode;
  message: string;
  /** `plugins/foo.ts:12:5` where the error was thrown, when known. */
  location?: string | undefined;
  stack?: string | undefined;
  /** The `code` the plugin set on what it threw: shown to its author, never acted on (codes come from the host). */
  pluginCode?: string | undefined;
}

export type RunOutcome =
  | { ok: true; durationMs: number }
  | {
      ok: false;
      durationMs: number;
      error: RunError;
      retriable: boolean;
      /** When to try again, if the runner knows better than the backoff (webhooks: schedule, Retry-After). */
      retryAfterMs?: number | undefined;
    };

export interface RunRequest {
  runId: string;
  plugin: string;
  version: number;
  kind: "event" | "action";
  /** Event name, or action name. */
  name: string;
  /** Event payload, or action input. */
  payload: unknown;
  /**
   * The payload as JSON text, when the caller has it already (the store's bytes): the hops that
   * send the payload on use it as it is instead of serializing `payload` again.
   */
  payloadJson?: string | undefined;
  meta: RunMeta;
}

/** `ctx.event` inside the isolate, plus what the host needs to attribute host calls. */
export interface RunMeta {
  eventId: string;
  eventName: string;
  receivedAt: number;
  attempt: number;
  depth: number;
  /** `ctx.event.source`: the channel, and the telephony workstation's user for its events. */
  source?: { channel: string; user?: string } | undefined;
}

/**
 * The config's sandbox limits, handed to every plugin version (a plugin may override each in
 * `plugin({...})`; sandbox/contract/limits.ts resolves and checks them). Those left out take defaults.
 */
export type PluginLimits = Required<Pick<PluginOptions, "memoryMb" | "timeoutMs" | "maxConcurrentRuns">> &
  Omit<PluginOptions, "fetch" | "secrets" | "retry" | "memoryMb" | "timeoutMs" | "maxConcurrentRuns"> & {
    /** Time the top-level code gets when the isolate is built (config only: it runs before `plugin({...})` is known). */
    loadTimeoutMs?: number;
    /** The most a plugin may raise each limit to (`sandbox.ceilings`, config only; sandbox/contract/limits.ts). */
    ceilings?: Partial<Record<string, number>>;
    /** Host calls (kv, emit, fetch) one run may have in flight at once (config only). */
    maxHostCallsInFlight?: number;
  };

/** A compiled plugin version, ready to load into an isolate. */
export interface PluginSpec {
  plugin: string;
  version: number;
  /** Path of the plugin's source, for messages. */
  file: string;
  code: string;
  /** esbuild's source map (JSON), to map errors back to the TypeScript source. */
  sourceMap?: string | undefined;
  limits: PluginLimits;
}

/** What a plugin declared while loading: `plugin({...})`, `on(...)`, `action(...)`. */
export interface PluginManifest {
  events: string[];
  actions: string[];
  options: PluginOptions;
  loadMs: number;
  /** Each action's input as JSON Schema (zod's input side), for host-side checks of manual starts. */
  actionInputs?: Record<string, unknown>;
  /** `schedule(cron, { tz, catchUp }, handler)` declarations; `key` is the name the handler runs under. */
  schedules?: Array<{ key: string; cron: string; tz?: string | undefined; catchUp?: string | undefined; calendar?: string | undefined }>;
  /**
   * `on(event, { concurrency, throttle, rateLimit, debounce }, handler)`: each event's flow
   * options as the plugin wrote them (JSON data); the host checks them at load.
   */
  flow?: Record<string, unknown>;
}

export interface PluginLogRecord {
  plugin: string;
  level: "debug" | "info" | "warn" | "error";
  msg?: string | undefined;
  fields?: Record<string, unknown> | undefined;
  runId?: string | undefined;
  eventId?: string | undefined;
  event?: string | undefined;
}

/** Heap in use by one loaded plugin version's isolate. */
export interface HeapUsage {
  plugin: string;
  version: number;
  bytes: number;
}

/** Whether a failure code means the host disposed the isolate to end the run. */
export function killedTheIsolate(code: string): boolean {
  return code === "HOOKD_RUN_TIMEOUT" || code === "HOOKD_RUN_CPU" || code === "HOOKD_RUN_MEMORY";
}
