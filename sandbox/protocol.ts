/**
 * The narrow interface between the daemon (core/) and the isolate host (sandbox/). Everything
 * crossing it is plain data, so the same messages travel in-process or over a socket to the
 * supervised sandbox process.
 */
import type { FetchCall, PluginFetchReply } from "../core/fetch/policy.ts";
import type { RunError, RunOutcome } from "../core/store/types.ts";
import type { PluginOptions } from "./runtime/api.ts";

/**
 * The config's sandbox limits, handed to every plugin version (a plugin may override each in
 * `plugin({...})`; sandbox/limits.ts resolves and checks them). Those left out take defaults.
 */
export type PluginLimits = Required<Pick<PluginOptions, "memoryMb" | "timeoutMs" | "maxConcurrentRuns">> &
  Omit<PluginOptions, "fetch" | "secrets" | "retry" | "memoryMb" | "timeoutMs" | "maxConcurrentRuns"> & {
    /** Time the top-level code gets when the isolate is built (config only: it runs before `plugin({...})` is known). */
    loadTimeoutMs?: number;
    /** The most a plugin may raise each limit to (`sandbox.ceilings`, config only; sandbox/limits.ts). */
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
}

/** What `plugin({...})` declares: the public type plugin authors write against. */
export type { PluginOptions } from "./runtime/api.ts";

export interface RunRequest {
  runId: string;
  plugin: string;
  version: number;
  kind: "event" | "action";
  /** Event name, or action name. */
  name: string;
  /** Event payload, or action input. */
  payload: unknown;
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
  source?: { channel: string; user?: string };
}

/**
 * Host services the isolates call through `ctx`. All of them are the daemon's: the sandbox
 * process forwards them, fetch included (it has no network of its own).
 */
export interface HostServices {
  log(record: PluginLogRecord): void;
  kv(plugin: string, op: "get" | "set" | "delete" | "list", args: unknown[]): Promise<unknown>;
  emit(plugin: string, from: RunMeta, name: string, payload: unknown): Promise<{ id: string }>;
  /** Performed by the daemon (core/fetch/fetch-service.ts) under the call's policy. */
  fetch(call: FetchCall): Promise<PluginFetchReply>;
  /** ctx.oktell: a method call for a telephony workstation, answered when its bridge answers (core/integrations/oktell/bridge.ts). */
  oktell?(call: OktellHostCall): Promise<unknown>;
}

/** One ctx.oktell call; `signal` aborts when the run ends (its wall time included). */
export interface OktellHostCall {
  plugin: string;
  runId: string;
  method: string;
  user: unknown;
  argument: unknown;
  signal?: AbortSignal | undefined;
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

/** The sandbox as the daemon sees it; in-process or in a supervised child process. */
export interface Sandbox {
  load(spec: PluginSpec): Promise<PluginManifest>;
  /** Retires a version: runs in flight finish there, then its isolate is disposed. */
  unload(plugin: string, version: number): Promise<void>;
  run(request: RunRequest): Promise<RunOutcome>;
  /** Heap in use per loaded plugin version (for /metrics). */
  heapUsage(): Promise<HeapUsage[]>;
  close(): Promise<void>;
  /**
   * Whether the run is held by a sandbox process that stopped answering (its heartbeat): the
   * dispatcher stops renewing such a run's lease. Left out: never.
   */
  isStalled?(runId: string): boolean;
}

export type { RunError, RunOutcome };

/** Heap in use by one loaded plugin version's isolate. */
export interface HeapUsage {
  plugin: string;
  version: number;
  bytes: number;
}

/** Daemon -> sandbox process. */
export type ToSandbox =
  /** The in-isolate runtime, bundled by the daemon (the sandbox process may not start esbuild). No secrets: see "secrets" host calls. */
  | { t: "init"; bootstrapCode: string }
  | { t: "load"; spec: PluginSpec }
  | { t: "unload"; plugin: string; version: number }
  /** Heap in use per loaded plugin version, for /metrics. */
  | { t: "heap"; requestId: number }
  /** The payload travels as JSON text: the sandbox process hands it to the isolate without parsing it. */
  | { t: "run"; request: Omit<RunRequest, "payload">; payload: string }
  | { t: "hostReply"; callId: number; ok: true; value: unknown }
  | { t: "hostReply"; callId: number; ok: false; error: RunError & { issues?: unknown[] } }
  /** The daemon's heartbeat (sandbox/heartbeat.ts): answered with a pong from the event loop. */
  | { t: "ping"; seq: number };

/** Sandbox process -> daemon. */
export type FromSandbox =
  | { t: "ready" }
  | { t: "loaded"; plugin: string; version: number; manifest: PluginManifest }
  | { t: "loadFailed"; plugin: string; version: number; error: RunError }
  | { t: "unloaded"; plugin: string; version: number }
  | { t: "heap"; requestId: number; usage: HeapUsage[] }
  | { t: "result"; runId: string; outcome: RunOutcome }
  | { t: "log"; record: PluginLogRecord }
  /** V8 lost an isolate for good: the process should be replaced (its runs were already failed). */
  | { t: "catastrophe"; plugin: string; version: number; message: string }
  /**
   * `fetch` args are [runId, url, init]: the daemon takes the plugin's patterns and limits from its own records of the run.
   * `secrets` (args: version, names) asks for the secrets a plugin version declared, once its
   * top-level code ran; the daemon answers with those only.
   */
  | { t: "hostCall"; callId: number; plugin: string; op: "kv" | "emit" | "fetch" | "secrets" | "oktell"; args: unknown[] }
  /** The answer to a ping, with the process's resident memory in bytes. */
  | { t: "pong"; seq: number; rss: number };
