/**
 * ctx.emit: a name, a payload and the emit's options, at most `maxEmitsPerRun` per run. The daemon
 * validates the payload against the catalog, the options' delay, and bounds the emit chain
 * (depth and the root's budget).
 */
import { HookdError } from "../contract/errors.ts";
import type { HostCallSpec } from "./spec.ts";

export const emit: HostCallSpec<"emit"> = {
  check: (raw, { limits, usage }) => {
    if (++usage.emits > limits.maxEmitsPerRun) throw new HookdError("HOOKD_RUN_EMIT_LIMIT", [limits.maxEmitsPerRun]);
    if (typeof raw[0] !== "string") throw new HookdError("HOOKD_EVENT_UNKNOWN", [String(raw[0])]);
    // The options ({ delay } or { at }) are the daemon's to check (core/time/).
    return raw[2] === undefined || raw[2] === null ? [raw[0], raw[1]] : [raw[0], raw[1], raw[2]];
  },
};
