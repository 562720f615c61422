/**
 * A run request as the daemon sends one to the sandbox, for tests (and the bench) that drive an
 * isolate host, a sandbox process or a supervisor directly: attempt 1 of an external event
 * (depth 0) received now, with ids numbered per process unless the test names them.
 */
import type { RunRequest } from "../../sandbox/contract/run.ts";

export interface RunRequestOptions {
  kind?: RunRequest["kind"];
  /** The event's payload, or the action's input (default `{}`). */
  payload?: unknown;
  runId?: string;
  eventId?: string;
  version?: number;
}

let seq = 0;

export function runRequest(plugin: string, name: string, options: RunRequestOptions = {}): RunRequest {
  seq++;
  return {
    runId: options.runId ?? `run-${seq}`,
    plugin,
    version: options.version ?? 1,
    kind: options.kind ?? "event",
    name,
    payload: options.payload ?? {},
    meta: { eventId: options.eventId ?? `event-${seq}`, eventName: name, receivedAt: Date.now(), attempt: 1, depth: 0 },
  };
}
