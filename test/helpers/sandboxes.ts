/**
 * A sandbox for dispatcher tests that need no isolates: every Sandbox method a quiet no-op, and
 * `run` the test's own. Extend it and override `run`.
 */
import type { HeapUsage, PluginManifest, RunOutcome, RunRequest } from "../../sandbox/contract/run.ts";
import type { Sandbox, SandboxStatus } from "../../sandbox/contract/sandbox.ts";

export abstract class StubSandbox implements Sandbox {
  async start(): Promise<void> {}
  status(): SandboxStatus {
    return { mode: "inline", running: true, restarts: 0 };
  }
  async load(): Promise<PluginManifest> {
    throw new Error("not used: a stub sandbox loads nothing");
  }
  async unload(): Promise<void> {}
  abstract run(request: RunRequest): Promise<RunOutcome>;
  async heapUsage(): Promise<HeapUsage[]> {
    return [];
  }
  async close(): Promise<void> {}
}
