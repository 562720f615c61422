/**
 * What one host call is on the host's side: how the isolate's raw arguments become the table's
 * typed ones (sizes, shapes and per-run budgets checked, a HookdError otherwise), and for a call
 * the isolate host answers itself, the answer. Each call has a file of its own beside this one.
 */
import type { HostCallArgs, HostCallName, HostCallResult } from "../contract/host-calls.ts";
import type { ResolvedLimits } from "../contract/limits.ts";

/** What one run has used of its budgets, counted on each side of the channel on its own. */
export interface RunUsage {
  emits: number;
}

export interface CheckContext {
  limits: ResolvedLimits;
  usage: RunUsage;
}

export interface HostCallSpec<K extends HostCallName> {
  /** The isolate's arguments, untrusted, as the call's typed ones; throws a HookdError when they do not fit. */
  check(raw: readonly unknown[], context: CheckContext): HostCallArgs<K>;
  /** For calls answered inside the sandbox: the answer. Absent: the daemon serves the call. */
  serve?(args: HostCallArgs<K>): HostCallResult<K>;
}
