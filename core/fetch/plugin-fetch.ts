/**
 * `ctx.fetch`, performed by the daemon for a plugin: only URLs matching the plugin's declared
 * patterns, redirects followed by hand so that every hop is checked against the same list,
 * bounded in time and size, credentials dropped when a redirect leaves the origin.
 *
 * Where a URL may connect is the config's business, not the plugin's: loopback, private and
 * this machine's own addresses are reachable only for hosts in `sandbox.fetchAllowHosts`, and
 * the daemon's own listen address never (core/fetch/guarded-transport.ts, which checks the
 * address the socket connects to, so DNS rebinding cannot get around it).
 */
import { isUtf8 } from "node:buffer";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { guardedFetch, type Endpoint } from "./guarded-transport.ts";
import type { PluginFetchInit, PluginFetchReply } from "../../sandbox/contract/fetch.ts";
import { matchesAny } from "./url-patterns.ts";

export interface FetchLimits {
  maxResponseBytes: number;
  timeoutMs: number;
  maxRedirects: number;
}

export const defaultFetchLimits: FetchLimits = { maxResponseBytes: 1024 * 1024, timeoutMs: 10_000, maxRedirects: 5 };

export type { PluginFetchInit, PluginFetchReply } from "../../sandbox/contract/fetch.ts";

/** True when `url` matches one of the patterns; `*` spans any characters but a `/` in the host part. */
export function isUrlAllowed(url: string, patterns: readonly string[]): boolean {
  return matchesAny(url, patterns);
}

/**
 * True when the config's `sandbox.fetchAllowHosts` names the URL's host: `host` for any port,
 * `host:port` for one. Names and addresses compare as WHATWG URL spells them (`127.1` is
 * `127.0.0.1`, `[::1]` stays `[::1]`).
 */
export function isHostAllowed(url: string, allowHosts: readonly string[]): boolean {
  if (allowHosts.length === 0) return false;
  const target = new URL(url);
  const port = Number(target.port || (target.protocol === "https:" ? 443 : 80));
  return allowHosts.some((entry) => {
    const parsed = parseAllowHost(entry);
    return parsed !== undefined && parsed.hostname === target.hostname && (parsed.port === undefined || parsed.port === port);
  });
}

/** `host` or `host:port` (IPv6 in brackets), as the config's `sandbox.fetchAllowHosts` takes them. */
export function parseAllowHost(entry: string): { hostname: string; port: number | undefined } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:/@\[\]\s]+)(?::(\d{1,5}))?$/.exec(entry.trim());
  if (!match) return undefined;
  try {
    const hostname = new URL(`http://${match[1]}`).hostname;
    const port = match[2] === undefined ? undefined : Number(match[2]);
    return port !== undefined && port > 65535 ? undefined : { hostname, port };
  } catch {
    return undefined;
  }
}

export interface PluginFetchRequest {
  patterns: readonly string[];
  url: string;
  init: PluginFetchInit;
  limits: FetchLimits;
  /** The config's `sandbox.fetchAllowHosts`. */
  allowHosts?: readonly string[];
  /** The daemon's listen addresses, never reached. */
  ownEndpoints?: readonly Endpoint[];
  /** The plugin's secret values: a header carrying one is a credential, dropped across origins. */
  secretValues?: readonly string[];
  /** The network; a test kit passes a fake one (address checks then have nothing to check). */
  send?: typeof fetch | undefined;
  /** Aborts when the run ends, so a fetch never outlives its run. */
  signal?: AbortSignal | undefined;
  /** The fetch's time limit, when it started earlier (waiting for a slot counts); else one of `limits.timeoutMs` from now. */
  timeout?: AbortSignal | undefined;
}

/** Headers the Fetch standard (and hookd, for Cookie and Proxy-Authorization too) drops on a redirect to another origin. */
const CREDENTIAL_HEADERS = /^(authorization|cookie|proxy-authorization)$/i;

/** A secret shorter than this is too likely to turn up in an ordinary header value by chance. */
const MIN_SECRET_CHARS = 4;

export async function fetchForPlugin(request: PluginFetchRequest): Promise<PluginFetchReply> {
  const { patterns, limits, signal } = request;
  let current = normalizeUrl(request.url);
  const timeout = request.timeout ?? AbortSignal.timeout(limits.timeoutMs);
  const combined = signal ? AbortSignal.any([timeout, signal]) : timeout;
  let method = String(request.init.method ?? "GET").toUpperCase();
  let body = request.init.body;
  const headers = plainHeaders(request.init.headers);
  const secrets = (request.secretValues ?? []).filter((value) => value.length >= MIN_SECRET_CHARS);
  for (let hop = 0; hop <= limits.maxRedirects; hop++) {
    if (!matchesAny(current, patterns)) {
      throw new HookdError("HOOKD_FETCH_NOT_ALLOWED", [current, patterns.length ? patterns.join(", ") : "no fetch patterns"]);
    }
    const requestInit: RequestInit = {
      method,
      headers: { ...headers },
      ...(body !== undefined && method !== "GET" && method !== "HEAD" ? { body: String(body) } : {}),
      redirect: "manual",
      signal: combined,
    };
    let response: Response;
    try {
      response = request.send
        ? await request.send(current, requestInit)
        : await guardedFetch(current, requestInit, { hostAllowed: isHostAllowed(current, request.allowHosts ?? []), patterns, ownEndpoints: request.ownEndpoints ?? [] });
    } catch (error) {
      throw networkError(error, current, limits, timeout);
    }
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel().catch(() => undefined);
      const next = normalizeUrl(new URL(location, current).href);
      // As the Fetch standard does: credentials meant for one origin are not handed to another.
      if (new URL(next).origin !== new URL(current).origin) {
        for (const [name, value] of Object.entries(headers)) {
          if (CREDENTIAL_HEADERS.test(name) || secrets.some((secret) => value.includes(secret))) delete headers[name];
        }
      }
      current = next;
      // As browsers do: 303 always, and 301/302 after a POST, go on as a GET without the body.
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === "POST")) {
        method = "GET";
        body = undefined;
      }
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = await readLimited(response, limits.maxResponseBytes, current);
    } catch (error) {
      throw networkError(error, current, limits, timeout);
    }
    const replyHeaders: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      replyHeaders[name] = value;
    });
    // Text crosses to the isolate as it is; other bytes as base64, so Response#arrayBuffer() gets them unchanged.
    const answer = isUtf8(bytes) ? { body: bytes.toString("utf8") } : { body: "", bodyBase64: bytes.toString("base64") };
    return { status: response.status, statusText: response.statusText, headers: replyHeaders, ...answer, url: current };
  }
  throw new HookdError("HOOKD_FETCH_FAILED", [current, `more than ${limits.maxRedirects} redirects`]);
}

function networkError(error: unknown, url: string, limits: FetchLimits, timeout: AbortSignal): HookdError {
  if (error instanceof HookdError) return error;
  if (timeout.aborted) return new HookdError("HOOKD_FETCH_TIMEOUT", [url, limits.timeoutMs], { cause: error });
  const reason = error instanceof Error ? error.message : String(error);
  return new HookdError("HOOKD_FETCH_FAILED", [url, reason], { cause: error });
}

async function readLimited(response: Response, maxBytes: number, url: string): Promise<Buffer> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new HookdError("HOOKD_FETCH_TOO_LARGE", [url, maxBytes]);
  }
  if (!response.body) return Buffer.alloc(0);
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
  return Buffer.concat(chunks);
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
