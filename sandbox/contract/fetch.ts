/**
 * What a `ctx.fetch` call carries to the daemon's fetch service (core/fetch/fetch-service.ts),
 * and the policy a loaded plugin version fetches under. No network here: the isolate host (in
 * the sandbox process) imports this file, and the sandbox process must not load the transport.
 */

export interface PluginFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface PluginFetchReply {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  /** The answer's body as UTF-8 text; "" when it is not UTF-8, which `bodyBase64` then carries. */
  body: string;
  /** A body that is not valid UTF-8 (an image, a PDF), as base64: the isolate's Response gets its bytes. */
  bodyBase64?: string;
  url: string;
}

/** One `ctx.fetch` of one run, with what the daemon's own records say the plugin may do. */
export interface FetchCall {
  plugin: string;
  runId: string;
  url: string;
  init: PluginFetchInit;
  policy: FetchPolicy;
  /** Aborts when the run ends. */
  signal?: AbortSignal | undefined;
}

/** What a loaded plugin version may fetch, and within which limits. */
export interface FetchPolicy {
  patterns: readonly string[];
  /** Names of the secrets the plugin declared (their values count as credentials). */
  secretNames: readonly string[];
  maxResponseBytes: number;
  timeoutMs: number;
}

/** Limits as sandbox/contract/limits.ts resolves them; declared options as `plugin({...})` gave them. */
export function fetchPolicy(limits: { fetchTimeoutMs: number; fetchMaxBytes: number; timeoutMs: number }, declared: { fetch?: unknown; secrets?: unknown }): FetchPolicy {
  const strings = (value: unknown) => (Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : []);
  return {
    patterns: strings(declared.fetch),
    secretNames: strings(declared.secrets),
    maxResponseBytes: limits.fetchMaxBytes,
    // A fetch never outlives the run's own wall time (the run's end aborts it, too).
    timeoutMs: Math.min(limits.fetchTimeoutMs, limits.timeoutMs),
  };
}

