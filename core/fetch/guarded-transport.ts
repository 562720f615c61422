/**
 * The network under `ctx.fetch`, in the daemon: node:http(s) with the destination address
 * checked where the socket is opened. A host name is resolved once, and the addresses it
 * resolves to are what the socket connects to, so a name cannot pass the check as a public
 * address and then connect to 127.0.0.1 (DNS rebinding). Answers come back as a WHATWG Response,
 * like `fetch` would give them.
 *
 * Refused unless the config allows the host (`sandbox.fetchAllowHosts`): loopback, private,
 * link-local and the like in every spelling (IPv4-mapped, -compatible and -translated IPv6,
 * NAT64, 6to4), and every address of this machine's own interfaces. Refused always: the daemon's
 * own listen address and port, so no plugin reaches the daemon's API with a token it was given.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { networkInterfaces } from "node:os";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { HookdError } from "../../sandbox/contract/errors.ts";

// Not `import http from "node:http"`: an ES import of node:http builds its module facade, which
// reads the lazy exports too and so loaded Node's whole fetch implementation (undici) at every
// start-up, for a transport that serves only the plugins' fetches.
const http = process.getBuiltinModule("node:http");

/** Addresses only a host the config allows reaches: loopback, private, link-local, and the like. */
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
  ["fec0::", 10],
  ["ff00::", 8],
] as const) {
  PRIVATE.addSubnet(network, prefix, "ipv6");
}

/** True for a loopback, private or otherwise internal address, in any spelling of it. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "");
  const family = isIP(bare);
  if (family === 4) return PRIVATE.check(bare, "ipv4");
  if (family !== 6) return false;
  if (PRIVATE.check(bare, "ipv6")) return true;
  const embedded = embeddedIpv4(bare);
  return embedded !== undefined && PRIVATE.check(embedded, "ipv4");
}

/** True for an address of one of this machine's interfaces (read each time: they change). */
export function isOwnAddress(address: string): boolean {
  const canonical = canonicalAddress(address);
  if (canonical === undefined) return false;
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) if (canonicalAddress(entry.address) === canonical) return true;
  }
  return false;
}

/** Where the daemon listens: `host` may be unspecified (0.0.0.0, ::), meaning every own address. */
export interface Endpoint {
  host: string;
  port: number;
}

export interface GuardOptions {
  /** The config allows the URL's host (`sandbox.fetchAllowHosts`): private and own addresses are fine. */
  hostAllowed: boolean;
  patterns: readonly string[];
  /** The daemon's own listen addresses: never reached, whatever the config allows. */
  ownEndpoints: readonly Endpoint[];
}

export async function guardedFetch(url: string, init: RequestInit, guard: GuardOptions): Promise<Response> {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  const port = Number(target.port || (secure ? 443 : 80));
  const hostname = target.hostname.replace(/^\[|\]$/g, "");
  // An address literal never goes through the lookup below: checked here, as it will be connected.
  const literalRefusal = isIP(hostname) ? refusal(hostname, port, guard) : undefined;
  if (literalRefusal !== undefined) throw refused(url, guard, literalRefusal);
  const headers = { ...(init.headers as Record<string, string>) };
  const body = typeof init.body === "string" ? Buffer.from(init.body) : undefined;
  if (body) {
    headers["content-length"] = String(body.byteLength);
    if (!Object.keys(headers).some((name) => name.toLowerCase() === "content-type")) headers["content-type"] = "text/plain;charset=UTF-8";
  }
  let refusedWhy: string | undefined;
  const request = (secure ? https : http).request(target, {
    method: init.method ?? "GET",
    headers,
    // Hosts the config allows keep agents of their own: a socket pooled for one never serves a
    // host that is checked (pooled sockets are checked again below all the same).
    agent: agents[secure ? "https" : "http"][guard.hostAllowed ? "allowed" : "checked"],
    // The agents carry no lookup of their own, so this one (which knows the port) is used.
    lookup: guardedLookup(port, guard, (why) => (refusedWhy = why)),
    signal: init.signal ?? undefined,
  });
  // A pooled socket skips the lookup: checked here on the address it is connected to, before the
  // request is written to it (the 'socket' event comes first).
  request.on("socket", (socket) => {
    if (socket.connecting || socket.remoteAddress === undefined) return;
    const why = refusal(socket.remoteAddress, port, guard);
    if (why === undefined) return;
    refusedWhy = why;
    request.destroy(new Error(`connected to ${why}`));
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    request.once("response", resolve);
    // `on`, not `once`: an abort after the answer still emits an error, and an unheard one would crash the process.
    request.on("error", (error) => reject(refusedWhy !== undefined ? refused(url, guard, refusedWhy) : error));
  });
  request.end(body);
  const incoming = await answered;
  return toResponse(incoming, init.method ?? "GET");
}

/** Why a connection to `address`:`port` is refused, or undefined when it may go ahead. */
function refusal(address: string, port: number, guard: GuardOptions): string | undefined {
  if (guard.ownEndpoints.some((endpoint) => isEndpoint(address, port, endpoint))) return "the daemon's own listen address";
  if (guard.hostAllowed) return undefined;
  if (isPrivateAddress(address)) return "a loopback or private address";
  if (isOwnAddress(address)) return "an address of this machine";
  return undefined;
}

function isEndpoint(address: string, port: number, endpoint: Endpoint): boolean {
  if (port !== endpoint.port) return false;
  const listen = canonicalAddress(endpoint.host);
  // Listening on every address (or on a name): any of this machine's may be the daemon.
  if (listen === undefined || listen === "0.0.0.0" || listen === UNSPECIFIED_V6) return isPrivateAddress(address) || isOwnAddress(address);
  const target = canonicalAddress(address);
  return target === listen || (isLoopback(listen) && target !== undefined && isLoopback(target));
}

const UNSPECIFIED_V6 = "0:0:0:0:0:0:0:0";

function isLoopback(canonical: string): boolean {
  return canonical === "0:0:0:0:0:0:0:1" || canonical.startsWith("127.");
}

function toResponse(incoming: IncomingMessage, method: string): Response {
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
function decode(incoming: IncomingMessage, encoding: string | null): Readable {
  const name = encoding?.trim().toLowerCase();
  const unpack = name === "gzip" || name === "x-gzip" ? zlib.createGunzip() : name === "deflate" ? zlib.createInflate() : name === "br" ? zlib.createBrotliDecompress() : undefined;
  if (!unpack) return incoming;
  incoming.on("error", (error) => unpack.destroy(error));
  return incoming.pipe(unpack);
}

function clampStatus(status: number): number {
  return status >= 200 && status <= 599 ? status : 502;
}

/** Resolves a name and refuses it when any of its addresses may not be reached. */
function guardedLookup(port: number, guard: GuardOptions, onRefused: (why: string) => void): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return (callback as (error: Error) => void)(error);
      const why = addresses.map((entry) => refusal(entry.address, port, guard)).find((reason) => reason !== undefined);
      if (why !== undefined) {
        onRefused(why);
        return (callback as (error: Error) => void)(Object.assign(new Error(`${hostname} resolves to ${why}`), { code: "HOOKD_FETCH_NOT_ALLOWED" }));
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (error: null, all: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0]!;
      (callback as (error: null, address: string, family: number) => void)(null, first.address, first.family);
    });
  };
}

const agents = {
  http: { checked: new http.Agent({ keepAlive: true }), allowed: new http.Agent({ keepAlive: true }) },
  https: { checked: new https.Agent({ keepAlive: true }), allowed: new https.Agent({ keepAlive: true }) },
};

function refused(url: string, guard: GuardOptions, why: string): HookdError {
  const declared = guard.patterns.length ? guard.patterns.join(", ") : "no fetch patterns";
  const unless = why === "the daemon's own listen address" ? "never reachable" : "reachable only through the config's sandbox.fetchAllowHosts";
  return new HookdError("HOOKD_FETCH_NOT_ALLOWED", [url, `${declared} (${why}: ${unless})`]);
}

/**
 * One spelling per address: IPv4 dotted, IPv6 as eight hextets, and an IPv6 address that carries
 * an IPv4 one (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, translated ::ffff:0:a.b.c.d) as
 * that IPv4 address, since the kernel connects it there.
 */
export function canonicalAddress(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const family = isIP(bare);
  if (family === 4) return bare;
  if (family !== 6) return undefined;
  const groups = hextets(bare);
  if (!groups) return undefined;
  const zeroes = (from: number, to: number) => groups.slice(from, to).every((group) => group === 0);
  const ipv4 = () => `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  if (zeroes(0, 5) && groups[5] === 0xffff) return ipv4();
  if (zeroes(0, 4) && groups[4] === 0xffff && groups[5] === 0) return ipv4();
  // ::a.b.c.d, but not :: and ::1 themselves (they are IPv6's own unspecified and loopback).
  if (zeroes(0, 6) && (groups[6] !== 0 || groups[7]! > 1)) return ipv4();
  return groups.map((group) => group.toString(16)).join(":");
}

/** The IPv4 address an IPv6 one carries: mapped, compatible, translated, NAT64, 6to4. */
function embeddedIpv4(address: string): string | undefined {
  const canonical = canonicalAddress(address);
  if (canonical !== undefined && isIP(canonical) === 4) return canonical;
  const groups = hextets(address);
  if (!groups) return undefined;
  const dotted = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  // 64:ff9b::/96 (NAT64) and 64:ff9b:1::/48 (local NAT64).
  if (groups[0] === 0x64 && groups[1] === 0xff9b) return dotted(groups[6]!, groups[7]!);
  if (groups[0] === 0x2002) return dotted(groups[1]!, groups[2]!);
  return undefined;
}

/** An IPv6 address (already checked by isIP) as its eight 16-bit groups. */
function hextets(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((group) => parseInt(group, 16)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const groups = halves.length === 2 ? [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  return groups.length === 8 && groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : undefined;
}
