/**
 * ctx.emit: a name and a payload, at most `maxEmitsPerRun` per run. The daemon validates the
 * payload against the catalog and bounds the emit chain (depth and the root's budget).
 */
import { HookdError } from "../contract/errors.ts";
import type { HostCallSpec } from "./spec.ts";

export const emit: HostCallSpec<"emit"> = {
  check: (raw, { limits, usage }) => {
    if (++usage.emits > limits.maxEmitsPerRun) throw new HookdError("HOOKD_RUN_EMIT_LIMIT", [limits.maxEmitsPerRun]);
    if (typeof raw[0] !== "string") throw new HookdError("HOOKD_EVENT_UNKNOWN", [String(raw[0])]);
    return [raw[0], raw[1]];
  },
};
