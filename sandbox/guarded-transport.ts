/**
 * The network under `ctx.fetch`: node:http(s) with the destination address checked where the
 * socket is opened. A host name is resolved once, and the addresses it resolves to are what the
 * socket connects to, so a name cannot pass the check as a public address and then connect to
 * 127.0.0.1. Answers come back as a WHATWG Response, like `fetch` would give them.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { HookdError } from "../core/errors.ts";

/** Addresses a wildcard pattern never reaches: loopback, private, link-local, and the like. */
const PRIVATE = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  PRIVATE.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  PRIVATE.addSubnet(network, prefix, "ipv6");
}

/** True for an address a wildcard pattern must not reach (IPv4-mapped IPv6 included). */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "");
  const family = isIP(bare);
  if (family === 4) return PRIVATE.check(bare, "ipv4");
  if (family !== 6) return false;
  if (PRIVATE.check(bare, "ipv6")) return true;
  // ::ffff:a.b.c.d, 64:ff9b::a.b.c.d (NAT64) and 2002:AABB:CCDD:: (6to4) carry an IPv4 address.
  const embedded = embeddedIpv4(bare);
  return embedded !== undefined && PRIVATE.check(embedded, "ipv4");
}

interface GuardOptions {
  /** The URL's host is named literally by a pattern: any address is fine. */
  privateAllowed: boolean;
  patterns: readonly string[];
}

export async function guardedFetch(url: string, init: RequestInit, guard: GuardOptions): Promise<Response> {
  const target = new URL(url);
  const hostname = target.hostname.replace(/^\[|\]$/g, "");
  if (!guard.privateAllowed && isIP(hostname) && isPrivateAddress(hostname)) throw refused(url, guard);
  const secure = target.protocol === "https:";
  const agent = agents[secure ? "https" : "http"][guard.privateAllowed ? "any" : "public"];
  const headers = { ...(init.headers as Record<string, string>) };
  const body = typeof init.body === "string" ? Buffer.from(init.body) : undefined;
  if (body) {
    headers["content-length"] = String(body.byteLength);
    if (!Object.keys(headers).some((name) => name.toLowerCase() === "content-type")) headers["content-type"] = "text/plain;charset=UTF-8";
  }
  const request = (secure ? https : http).request(target, {
    method: init.method ?? "GET",
    headers,
    agent,
    signal: init.signal ?? undefined,
  });
  const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once("response", resolve);
    // `on`, not `once`: an abort after the answer still emits an error, and an unheard one would crash the process.
    request.on("error", (error) => reject(isRefusal(error) ? refused(url, guard) : error));
  });
  request.end(body);
  const incoming = await answered;
  return toResponse(incoming, init.method ?? "GET");
}

function toResponse(incoming: http.IncomingMessage, method: string): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < incoming.rawHeaders.length; i += 2) {
    try {
      headers.append(incoming.rawHeaders[i]!, incoming.rawHeaders[i + 1]!);
    } catch {
      // A header the Fetch standard rejects is left out, as fetch itself would.
    }
  }
  const status = incoming.statusCode ?? 502;
  const noBody = method === "HEAD" || status === 204 || status === 205 || status === 304;
  if (noBody) {
    incoming.resume();
    return new Response(null, { status: clampStatus(status), statusText: incoming.statusMessage ?? "", headers });
  }
  const decoded = decode(incoming, headers.get("content-encoding"));
  return new Response(Readable.toWeb(decoded) as ReadableStream<Uint8Array>, { status: clampStatus(status), statusText: incoming.statusMessage ?? "", headers });
}

/** Compressed answers are unpacked as they stream, so the size limit counts what the plugin gets. */
function decode(incoming: http.IncomingMessage, encoding: string | null): Readable {
  const name = encoding?.trim().toLowerCase();
  const unpack = name === "gzip" || name === "x-gzip" ? zlib.createGunzip() : name === "deflate" ? zlib.createInflate() : name === "br" ? zlib.createBrotliDecompress() : undefined;
  if (!unpack) return incoming;
  incoming.on("error", (error) => unpack.destroy(error));
  return incoming.pipe(unpack);
}

function clampStatus(status: number): number {
  return status >= 200 && status <= 599 ? status : 502;
}

/** Resolves a name and refuses it when any of its addresses is private. */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return (callback as (error: Error) => void)(error);
    if (addresses.some((entry) => isPrivateAddress(entry.address))) {
      const refusal = Object.assign(new Error(`${hostname} resolves to a private address`), { code: "HOOKD_PRIVATE_ADDRESS" });
      return (callback as (error: Error) => void)(refusal);
    }
    if ((options as { all?: boolean }).all) return (callback as unknown as (error: null, all: LookupAddress[]) => void)(null, addresses);
    const first = addresses[0]!;
    (callback as (error: null, address: string, family: number) => void)(null, first.address, first.family);
  });
};

// Pooled sockets are keyed by host and port; a socket opened for a literal private host must
// never serve a wildcard pattern's request, so each kind has its own agents.
const agents = {
  http: { public: new http.Agent({ keepAlive: true, lookup: publicOnlyLookup }), any: new http.Agent({ keepAlive: true }) },
  https: { public: new https.Agent({ keepAlive: true, lookup: publicOnlyLookup }), any: new https.Agent({ keepAlive: true }) },
};

function isRefusal(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "HOOKD_PRIVATE_ADDRESS";
}

function refused(url: string, guard: GuardOptions): HookdError {
  const declared = guard.patterns.length ? guard.patterns.join(", ") : "no fetch patterns";
  return new HookdError("HOOKD_FETCH_NOT_ALLOWED", [url, `${declared} (a private or loopback address is reachable only through a pattern that names its host)`]);
}

function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) return fromHex(hex[1]!, hex[2]!);
  const sixToFour = /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4}):/.exec(lower);
  if (sixToFour) return fromHex(sixToFour[1]!, sixToFour[2]!);
  return undefined;
}

function fromHex(high: string, low: string): string {
  const a = parseInt(high, 16);
  const b = parseInt(low, 16);
  return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
}
