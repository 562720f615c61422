/**
 * The messages between the daemon's side of a sandbox process (sandbox-process.ts) and the
 * process itself (worker.ts), one JSON line each over the socket on fd 3 (channel.ts). The
 * values they carry are the contract's (sandbox/contract/); only the framing is said here.
 */
import type { RunError } from "./contract/run.ts";
import type { DaemonCallName } from "./contract/host-calls.ts";
import type { HeapUsage, PluginManifest, PluginSpec, PluginLogRecord, RunOutcome, RunRequest } from "./contract/run.ts";

/** Daemon -> sandbox process. */
export type ToSandbox =
  /** The in-isolate runtime, bundled by the daemon (the sandbox process may not start esbuild). No secrets: see "secrets". */
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
   * A daemon call of the host-call table, for a run the daemon sent (and its plugin, which must
   * match): the daemon takes version, run meta, limits and fetch policy from its own records.
   */
  | { t: "hostCall"; callId: number; name: DaemonCallName; plugin: string; runId: string; args: unknown[] }
  /**
   * The secrets a plugin version declared, asked once its top-level code ran; the daemon
   * answers with those only (hostReply).
   */
  | { t: "secrets"; callId: number; plugin: string; version: number; names: unknown }
  /** The answer to a ping, with the process's resident memory in bytes. */
  | { t: "pong"; seq: number; rss: number };
