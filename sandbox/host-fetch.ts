/**
 * `ctx.fetch` on the host side: only URLs matching the plugin's declared patterns, redirects
 * followed by hand so that every hop is checked against the same list, bounded in time and size.
 */
import { HookdError } from "../core/errors.ts";

export interface FetchLimits {
  maxResponseBytes: number;
  timeoutMs: number;
  maxRedirects: number;
}

export const defaultFetchLimits: FetchLimits = { maxResponseBytes: 1024 * 1024, timeoutMs: 10_000, maxRedirects: 5 };

export interface PluginFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface PluginFetchReply {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: string;
  url: string;
}

/** True when `url` matches one of the patterns; `*` spans any characters but a `/` in the host part. */
export function isUrlAllowed(url: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => patternToRegExp(pattern).test(url));
}

export async function fetchForPlugin(
  patterns: readonly string[],
  url: string,
  init: PluginFetchInit,
  limits: FetchLimits,
): Promise<PluginFetchReply> {
  let current = normalizeUrl(url);
  const signal = AbortSignal.timeout(limits.timeoutMs);
  const method = (init.method ?? "GET").toUpperCase();
  for (let hop = 0; hop <= limits.maxRedirects; hop++) {
    if (!isUrlAllowed(current, patterns)) {
      throw new HookdError("HOOKD_FETCH_NOT_ALLOWED", [current, patterns.length ? patterns.join(", ") : "no fetch patterns"]);
    }
    let response: Response;
    try {
      response = await fetch(current, {
        method,
        headers: init.headers ?? {},
        ...(init.body !== undefined && method !== "GET" && method !== "HEAD" ? { body: String(init.body) } : {}),
        redirect: "manual",
        signal,
      });
    } catch (error) {
      const reason = signal.aborted ? `no answer within ${limits.timeoutMs} ms` : error instanceof Error ? error.message : String(error);
      throw new HookdError("HOOKD_FETCH_FAILED", [current, reason], { cause: error });
    }
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      current = new URL(location, current).href;
      continue;
    }
    const body = await readLimited(response, limits.maxResponseBytes, current);
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    return { status: response.status, statusText: response.statusText, headers, body, url: current };
  }
  throw new HookdError("HOOKD_FETCH_FAILED", [current, `more than ${limits.maxRedirects} redirects`]);
}

async function readLimited(response: Response, maxBytes: number, url: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new HookdError("HOOKD_FETCH_FAILED", [url, `response of ${declared} bytes exceeds the limit of ${maxBytes}`]);
  }
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new HookdError("HOOKD_FETCH_FAILED", [url, `response exceeds the limit of ${maxBytes} bytes`]);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HookdError("HOOKD_FETCH_NOT_ALLOWED", [url, "an absolute http(s) URL"]);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new HookdError("HOOKD_FETCH_NOT_ALLOWED", [url, "http and https URLs only"]);
  }
  return parsed.href;
}

const compiled = new Map<string, RegExp>();

function patternToRegExp(pattern: string): RegExp {
  let regexp = compiled.get(pattern);
  if (!regexp) {
    const schemeEnd = pattern.indexOf("://");
    const pathStart = schemeEnd === -1 ? -1 : pattern.indexOf("/", schemeEnd + 3);
    const origin = pathStart === -1 ? pattern : pattern.slice(0, pathStart);
    const rest = pathStart === -1 ? "" : pattern.slice(pathStart);
    const escape = (text: string, star: string) => text.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(star);
    // A pattern without a path allows the whole origin.
    regexp = new RegExp(`^${escape(origin, "[^/]*")}${rest ? escape(rest, ".*") : "(/.*)?"}$`);
    compiled.set(pattern, regexp);
  }
  return regexp;
}
