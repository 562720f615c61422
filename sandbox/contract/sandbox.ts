/**
 * The sandbox as the daemon sees it, in-process or in a supervised child process, and what it
 * says of itself. The daemon gets one from `createSandbox` (sandbox/index.ts) and never needs to
 * know which kind it holds.
 */
import type { HeapUsage, PluginManifest, PluginSpec, RunOutcome, RunRequest } from "./run.ts";

export type WallMode = "auto" | "required" | "off";

/** What stands around the sandbox process, for the log, `hookd status` and `/readyz`. */
export interface WallStatus {
  mode: WallMode;
  /** bubblewrap namespaces and mounts are in place. */
  kernel: boolean;
  /** Node's permission model is on in the sandbox process. */
  permission: boolean;
  /** Why the kernel wall is not in place and how to get it; absent when it is. */
  missing?: string | undefined;
}

/** What the sandbox says of itself. */
export interface SandboxStatus {
  /** `inline`: isolates in the daemon's own process (tests, the test kit); `process`: a supervised sandbox process. */
  mode: "inline" | "process";
  /** Whether runs can be served now. */
  running: boolean;
  /** Times the sandbox process was replaced. */
  restarts: number;
  /** The wall around the sandbox process (absent inline). */
  wall?: WallStatus | undefined;
  /** Why the sandbox cannot take runs now, for /readyz; absent when it can. */
  notReadyReason?: string | undefined;
}

export interface Sandbox {
  /** Resolves once runs can be served (the sandbox process is up); rejects if it cannot start. */
  start(): Promise<void>;
  load(spec: PluginSpec): Promise<PluginManifest>;
  /** Retires a version: runs in flight finish there, then its isolate is disposed. */
  unload(plugin: string, version: number): Promise<void>;
  run(request: RunRequest): Promise<RunOutcome>;
  /** Heap in use per loaded plugin version (for /metrics). */
  heapUsage(): Promise<HeapUsage[]>;
  status(): SandboxStatus;
  close(): Promise<void>;
  /**
   * Whether the run is held by a sandbox process that stopped answering (its heartbeat): the
   * dispatcher stops renewing such a run's lease. Left out: never.
   */
  isStalled?(runId: string): boolean;
}
