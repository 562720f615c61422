/**
 * The sandbox's one entry for the daemon: `createSandbox` builds the isolates' home (a supervised
 * sandbox process, or isolates in the daemon's own process for tests and the test kit), and the
 * few helpers the daemon needs about it. The types both sides speak are in sandbox/contract/;
 * core/ imports those and this file, never the sandbox's other modules.
 */
import type { HostServices } from "./contract/host-calls.ts";
import type { PluginSpec, RunError } from "./contract/run.ts";
import type { Sandbox, WallMode } from "./contract/sandbox.ts";
import type { HeartbeatSettings } from "./heartbeat.ts";
import { IsolateHost } from "./isolate-host.ts";
import { SandboxSupervisor } from "./supervisor.ts";

export { RUNTIME_FILES } from "./contract/runtime-files.ts";
export { SecretResolver } from "./secrets.ts";
export { warnOnceIfMissing } from "./wall.ts";
export type { EventInput, EventName } from "./runtime/api.ts";

export interface SandboxOptions {
  /** `process`: a supervised, walled sandbox process (the daemon's default); `inline`: isolates in this process. */
  mode: "process" | "inline";
  services: HostServices;
  /** The config's secrets: a plugin version gets the ones it declared (sandbox/secrets.ts). */
  secrets: Record<string, string | undefined>;
  /** Read secrets missing from `secrets` from the environment (default true; the test kit turns it off). */
  environmentSecrets?: boolean;
  /** The kernel wall around the sandbox process (`sandbox.wall`); process mode only. */
  wall?: WallMode | undefined;
  /** The heartbeat and memory watch settings; process mode only. */
  heartbeat?: () => HeartbeatSettings;
  /** The process died or was replaced and the plugins were loaded again. */
  onRestart?: (info: { restarts: number; reason: string }) => void;
  /** A plugin that was loaded failed to load again after a restart. */
  onReloadFailed?: (spec: PluginSpec, error: RunError) => void;
  /** A process stopped answering its heartbeat: its runs failed and it is being killed. */
  onUnresponsive?: (info: { pid: number | undefined; missed: number; intervalMs: number; runs: number }) => void;
  /** A process grew past `processMemoryMb` and is being replaced. */
  onProcessMemory?: (info: { pid: number | undefined; rssMb: number; limitMb: number; plugin?: string; heapMb?: number }) => void;
  /** Inline only: an isolate was lost for good (V8 could not stop it after it exhausted its memory). */
  onCatastrophe?: (info: { plugin: string; version: number; message: string }) => void;
}

export function createSandbox(options: SandboxOptions): Sandbox {
  if (options.mode === "inline") {
    return new IsolateHost({
      services: options.services,
      secrets: options.secrets,
      ...(options.environmentSecrets === undefined ? {} : { environmentSecrets: options.environmentSecrets }),
      ...(options.onCatastrophe ? { onCatastrophe: options.onCatastrophe } : {}),
    });
  }
  const { mode: _mode, environmentSecrets: _env, onCatastrophe: _lost, ...supervised } = options;
  return new SandboxSupervisor(supervised);
}
