/**
 * ctx.fetch: a URL and a request init. The daemon's fetch service (core/fetch/) performs it under
 * the version's policy (patterns, sizes, time), which the trusted side's own records supply.
 */
import type { PluginFetchInit } from "../contract/fetch.ts";
import type { HostCallSpec } from "./spec.ts";

export const fetch: HostCallSpec<"fetch"> = {
  check: (raw) => [String(raw[0]), (typeof raw[1] === "object" && raw[1] !== null ? raw[1] : {}) as PluginFetchInit],
};
