/**
 * `ctx.fetch` on the host side: only URLs matching the plugin's declared patterns, redirects
 * followed by hand so that every hop is checked against the same list, bounded in time and size.
 *
 * A pattern with a wildcard in its host (`https://*.example.com/*`, `http://*`) never reaches a
 * loopback, private or link-local address, whatever the name resolves to: the check runs on the
 * address the socket connects to (sandbox/guarded-transport.ts), so DNS rebinding cannot get
 * around it. Such an address is reachable only through a pattern that names it literally
 * (`http://127.0.0.1:*\/hooks/*`, `http://intranet.local/*`).
 */
import { HookdError } from "../core/errors.ts";
import { guardedFetch } from "./guarded-transport.ts";

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

/**
 * Whether `url` may be fetched, and whether it may reach a private address: only when a matching
 * pattern names the URL's host without a wildcard.
 */
export function matchUrl(url: string, patterns: readonly string[]): { allowed: boolean; privateAllowed: boolean } {
  const matching = patterns.filter((pattern) => patternToRegExp(pattern).test(url));
  if (matching.length === 0) return { allowed: false, privateAllowed: false };
  const hostname = new URL(url).hostname.toLowerCase();
  return { allowed: true, privateAllowed: matching.some((pattern) => literalHostOf(pattern) === hostname) };
}

/**
 * Fetches for a plugin. `send` replaces the network (the test kit's fake); `signal` aborts when
 * the run ends, so a fetch never outlives its run.
 */
export async function fetchForPlugin(
  patterns: readonly string[],
  url: string,
  init: PluginFetchInit,
  limits: FetchLimits,
  /** The network; a test kit passes a fake one. */
  send?: typeof fetch,
  signal?: AbortSignal,
): Promise<PluginFetchReply> {
  let current = normalizeUrl(url);
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const combined = signal ? AbortSignal.any([timeout, signal]) : timeout;
  let method = String(init.method ?? "GET").toUpperCase();
  let body = init.body;
  for (let hop = 0; hop <= limits.maxRedirects; hop++) {
    const match = matchUrl(current, patterns);
    if (!match.allowed) {
      throw new HookdError("HOOKD_FETCH_NOT_ALLOWED", [current, patterns.length ? patterns.join(", ") : "no fetch patterns"]);
    }
    const requestInit: RequestInit = {
      method,
      headers: plainHeaders(init.headers),
      ...(body !== undefined && method !== "GET" && method !== "HEAD" ? { body: String(body) } : {}),
      redirect: "manual",
      signal: combined,
    };
    let response: Response;
    try {
      response = send ? await send(current, requestInit) : await guardedFetch(current, requestInit, { privateAllowed: match.privateAllowed, patterns });
    } catch (error) {
      throw networkError(error, current, limits, timeout);
    }
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel().catch(() => undefined);
      current = normalizeUrl(new URL(location, current).href);
      // As browsers do: 303 always, and 301/302 after a POST, go on as a GET without the body.
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === "POST")) {
        method = "GET";
        body = undefined;
      }
      continue;
    }
    let text: string;
    try {
      text = await readLimited(response, limits.maxResponseBytes, current);
    } catch (error) {
      throw networkError(error, current, limits, timeout);
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    return { status: response.status, statusText: response.statusText, headers, body: text, url: current };
  }
  throw new HookdError("HOOKD_FETCH_FAILED", [current, `more than ${limits.maxRedirects} redirects`]);
}

function networkError(error: unknown, url: string, limits: FetchLimits, timeout: AbortSignal): HookdError {
  if (error instanceof HookdError) return error;
  if (timeout.aborted) return new HookdError("HOOKD_FETCH_TIMEOUT", [url, limits.timeoutMs], { cause: error });
  const reason = error instanceof Error ? error.message : String(error);
  return new HookdError("HOOKD_FETCH_FAILED", [url, reason], { cause: error });
}

async function readLimited(response: Response, maxBytes: number, url: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new HookdError("HOOKD_FETCH_TOO_LARGE", [url, maxBytes]);
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
      await reader.cancel().catch(() => undefined);
      throw new HookdError("HOOKD_FETCH_TOO_LARGE", [url, maxBytes]);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Header values as strings; names a plugin cannot sensibly set are left out. */
function plainHeaders(headers: unknown): Record<string, string> {
  const plain: Record<string, string> = {};
  if (typeof headers !== "object" || headers === null) return plain;
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (/^(host|content-length|transfer-encoding|connection)$/i.test(name)) continue;
    if (value !== undefined && value !== null) plain[name] = String(value);
  }
  return plain;
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
  // `https://allowed.example@evil.example/` must not read as the allowed host to anyone.
  if (parsed.username || parsed.password) {
    throw new HookdError("HOOKD_FETCH_NOT_ALLOWED", [`${parsed.protocol}//${parsed.host}${parsed.pathname}`, "URLs without credentials (send them in a header)"]);
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
    // A pattern without a path allows the whole origin; `*` in the origin never spans `@`.
    regexp = new RegExp(`^${escape(origin, "[^/@]*")}${rest ? escape(rest, ".*") : "(/.*)?"}$`);
    compiled.set(pattern, regexp);
  }
  return regexp;
}

/** The host a pattern names without a wildcard (`127.0.0.1`, `[::1]`), or undefined. */
function literalHostOf(pattern: string): string | undefined {
  const schemeEnd = pattern.indexOf("://");
  if (schemeEnd === -1) return undefined;
  const authority = pattern.slice(schemeEnd + 3).split("/")[0] ?? "";
  const host = authority.startsWith("[") ? authority.slice(0, authority.indexOf("]") + 1) : authority.split(":")[0]!;
  if (host === "" || host.includes("*")) return undefined;
  try {
    return new URL(`http://${host}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}
