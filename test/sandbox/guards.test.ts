// The sandbox's guards one by one: addresses ctx.fetch never reaches, secrets a
// plugin cannot claim by name, JSON the host refuses to parse, limits a plugin cannot declare.
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../../core/compile/compile-plugin.ts";
import { networkInterfaces } from "node:os";
import { isOwnAddress, isPrivateAddress } from "../../core/fetch/guarded-transport.ts";
import { fetchForPlugin, isHostAllowed, isUrlAllowed, parseAllowHost } from "../../core/fetch/plugin-fetch.ts";
import { FetchService } from "../../core/fetch/fetch-service.ts";
import { IsolateHost } from "../../sandbox/isolate-host.ts";
import { testServices } from "../helpers/services.ts";
import { jsonProblem } from "../../sandbox/contract/json-guard.ts";
import { resolveLimits } from "../../sandbox/contract/limits.ts";
import { SecretResolver } from "../../sandbox/secrets.ts";
import { FIXTURES } from "../helpers/daemon.ts";

const LIMITS = { maxResponseBytes: 1024, timeoutMs: 2000, maxRedirects: 3 };

describe("fetch destinations", () => {
  let server: Server;
  let port = 0;

  beforeAll(async () => {
    server = createServer((_request, response) => response.end("local"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it.each([
    ["127.0.0.1", true],
    ["127.8.9.10", true],
    ["10.1.2.3", true],
    ["172.20.0.1", true],
    ["192.168.1.1", true],
    ["169.254.169.254", true],
    ["100.64.0.1", true],
    ["0.0.0.0", true],
    ["::1", true],
    ["[::1]", true],
    ["0:0:0:0:0:0:0:1", true],
    ["fd00::1", true],
    ["fe80::1", true],
    ["::ffff:127.0.0.1", true],
    ["::ffff:7f00:1", true],
    ["::7f00:1", true],
    ["::127.0.0.1", true],
    ["::ffff:0:7f00:1", true],
    ["::ffff:0:127.0.0.1", true],
    ["64:ff9b::10.0.0.1", true],
    ["2002:7f00:1::", true],
    ["93.184.215.14", false],
    ["::ffff:93.184.215.14", false],
    ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", false],
  ])("treats %s as private: %s", (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });

  it("counts every address of this machine's interfaces as its own, in any spelling", () => {
    const own = Object.values(networkInterfaces()).flat().filter((entry) => entry !== undefined);
    expect(own.length).toBeGreaterThan(0);
    for (const entry of own) expect(isOwnAddress(entry.address)).toBe(true);
    const ipv4 = own.find((entry) => entry.family === "IPv4")!;
    expect(isOwnAddress(`::ffff:${ipv4.address}`)).toBe(true);
    expect(isOwnAddress("93.184.215.14")).toBe(false);
  });

  it("lets the config, not a pattern, open a private host", () => {
    expect(isHostAllowed(`http://127.0.0.1:${port}/x`, [])).toBe(false);
    expect(isHostAllowed(`http://127.0.0.1:${port}/x`, [`127.0.0.1:${port}`])).toBe(true);
    expect(isHostAllowed(`http://127.0.0.1:${port + 1}/x`, [`127.0.0.1:${port}`])).toBe(false);
    expect(isHostAllowed("http://127.1:9000/x", ["127.0.0.1"])).toBe(true);
    expect(isHostAllowed("http://INTRANET.local/x", ["intranet.local"])).toBe(true);
    expect(isHostAllowed("http://intranet.local:8080/x", ["intranet.local:80"])).toBe(false);
    expect(isHostAllowed("http://[::1]:9000/x", ["[::1]:9000"])).toBe(true);
    expect(parseAllowHost("http://x/")).toBeUndefined();
    expect(parseAllowHost("x:99999")).toBeUndefined();
  });

  it("refuses loopback through any pattern, literal or not, unless the config allows the host", async () => {
    const request = (patterns: string[], url: string, allowHosts: string[] = []) => fetchForPlugin({ patterns, url, init: {}, limits: LIMITS, allowHosts });
    await expect(request(["http://*"], `http://localhost:${port}/`)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    await expect(request(["http://*"], `http://127.0.0.1:${port}/`)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    // Naming the host in the pattern used to be enough; now that is the config's call.
    await expect(request(["http://localhost:*/*"], `http://localhost:${port}/`)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    await expect(request(["http://*"], `http://[::ffff:127.0.0.1]:${port}/`)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    expect(await request(["http://localhost:*/*"], `http://localhost:${port}/`, [`localhost:${port}`])).toMatchObject({ status: 200, body: "local" });
    expect(await request(["http://*"], `http://127.0.0.1:${port}/`, ["127.0.0.1"])).toMatchObject({ status: 200, body: "local" });
  });

  it("never reaches the daemon's own listen address, even for a host the config allows", async () => {
    const own = [{ host: "127.0.0.1", port }];
    const request = (url: string) => fetchForPlugin({ patterns: ["http://*"], url, init: {}, limits: LIMITS, allowHosts: ["127.0.0.1", "localhost"], ownEndpoints: own });
    await expect(request(`http://127.0.0.1:${port}/api/status`)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED", message: expect.stringContaining("own listen address") });
    await expect(request(`http://localhost:${port}/api/status`)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    const anywhere = [{ host: "0.0.0.0", port }];
    await expect(
      fetchForPlugin({ patterns: ["http://*"], url: `http://127.0.0.1:${port}/`, init: {}, limits: LIMITS, allowHosts: ["127.0.0.1"], ownEndpoints: anywhere }),
    ).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
  });

  it("refuses credentials in a URL", async () => {
    await expect(fetchForPlugin({ patterns: ["http://*"], url: "http://user:pass@example.com/", init: {}, limits: LIMITS })).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
  });
});

describe("fetch patterns", () => {
  it("keep their meaning: `*` spans anything, but no `/` or `@` in the host part", () => {
    expect(isUrlAllowed("https://a.example.com/x/y", ["https://*.example.com/*"])).toBe(true);
    expect(isUrlAllowed("https://example.com/x", ["https://*.example.com/*"])).toBe(false);
    expect(isUrlAllowed("https://a.example.com@evil.example/", ["https://*.example.com/*"])).toBe(false);
    expect(isUrlAllowed("https://evil.example/a.example.com/", ["https://*.example.com/*"])).toBe(false);
    expect(isUrlAllowed("https://hooks.example.com/", ["https://hooks.example.com"])).toBe(true);
    expect(isUrlAllowed("https://hooks.example.com/any/path?q=1", ["https://hooks.example.com"])).toBe(true);
    expect(isUrlAllowed("https://hooks.example.com.evil.example/", ["https://hooks.example.com"])).toBe(false);
    expect(isUrlAllowed("http://127.0.0.1:8080/hooks/a", ["http://127.0.0.1:*/hooks/*"])).toBe(true);
    expect(isUrlAllowed("http://127.0.0.1:8080/other", ["http://127.0.0.1:*/hooks/*"])).toBe(false);
  });

  it("match a hostile pattern against a long URL in linear time", () => {
    const hostile = `https://*.example.com/${"*a".repeat(40)}*b`;
    const url = `https://x.example.com/${"a".repeat(200_000)}`;
    const started = performance.now();
    expect(isUrlAllowed(url, [hostile, `https://${"*a".repeat(30)}*b`])).toBe(false);
    expect(isUrlAllowed(`${url}b`, [hostile])).toBe(true);
    // A backtracking RegExp takes longer than the universe's age here; a linear match, milliseconds.
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("fetch slots per plugin", () => {
  const policy = { patterns: ["https://api.example.com/*"], secretNames: [], maxResponseBytes: 1024, timeoutMs: 2000 };
  /** A network whose answers the test releases one by one. */
  function heldNetwork() {
    const held: Array<() => void> = [];
    const send = (async () => {
      await new Promise<void>((resolve) => held.push(resolve));
      return new Response("ok");
    }) as unknown as typeof fetch;
    return { held, send };
  }
  const until = async (condition: () => boolean) => {
    while (!condition()) await new Promise((resolve) => setImmediate(resolve));
  };

  it("lets a plugin have sandbox.fetchMaxConcurrent fetches out at once; the others wait, then go", async () => {
    const network = heldNetwork();
    const service = new FetchService({ maxConcurrent: () => 2, send: network.send });
    const call = (plugin: string) => service.fetch({ plugin, runId: "r", url: "https://api.example.com/x", init: {}, policy });
    const replies = Array.from({ length: 5 }, () => call("greedy"));
    const neighbour = call("neighbour");
    await until(() => network.held.length === 3);
    // Two for the greedy plugin, one for its neighbour, whose slots are its own.
    expect(service.active("greedy")).toBe(2);
    expect(service.active("neighbour")).toBe(1);
    while ((await Promise.race([Promise.all(replies).then(() => true), new Promise((resolve) => setImmediate(() => resolve(false)))])) === false) {
      expect(service.active("greedy")).toBeLessThanOrEqual(2);
      network.held.shift()?.();
    }
    network.held.forEach((release) => release());
    expect((await Promise.all([...replies, neighbour])).map((reply) => reply.body)).toEqual(Array(6).fill("ok"));
    expect(service.active("greedy")).toBe(0);
  });

  it("opens no more sockets for a plugin than its slots, however many fetches it starts", async () => {
    let open = 0;
    let maxOpen = 0;
    const server = createServer((_request, response) => setImmediate(() => response.end("x")));
    server.on("connection", (socket) => {
      maxOpen = Math.max(maxOpen, ++open);
      socket.once("close", () => open--);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/many`;
      const service = new FetchService({ allowHosts: () => ["127.0.0.1"], maxConcurrent: () => 4 });
      const local = { ...policy, patterns: ["http://127.0.0.1:*/*"], timeoutMs: 30_000 };
      const replies = await Promise.all(Array.from({ length: 300 }, () => service.fetch({ plugin: "p", runId: "r", url, init: {}, policy: local })));
      expect(replies).toHaveLength(300);
      expect(maxOpen).toBeGreaterThan(0);
      expect(maxOpen).toBeLessThanOrEqual(4);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("fails a fetch still waiting for a slot at its time limit, or when its run ends", async () => {
    const network = heldNetwork();
    const service = new FetchService({ maxConcurrent: () => 1, send: network.send });
    const first = service.fetch({ plugin: "p", runId: "r1", url: "https://api.example.com/1", init: {}, policy });
    await until(() => network.held.length === 1);
    const waiting = service.fetch({ plugin: "p", runId: "r2", url: "https://api.example.com/2", init: {}, policy: { ...policy, timeoutMs: 50 } });
    await expect(waiting).rejects.toMatchObject({ code: "HOOKD_FETCH_TIMEOUT", message: expect.stringContaining("fetchMaxConcurrent") });
    const runEnd = new AbortController();
    const ended = service.fetch({ plugin: "p", runId: "r3", url: "https://api.example.com/3", init: {}, policy, signal: runEnd.signal });
    runEnd.abort();
    await expect(ended).rejects.toMatchObject({ code: "HOOKD_FETCH_TIMEOUT" });
    network.held[0]!();
    expect(await first).toMatchObject({ body: "ok" });
    // Nobody was left holding a slot.
    expect(service.active("p")).toBe(0);
  });
});

describe("fetch redirects", () => {
  let target: Server;
  let jumper: Server;
  const arrived: Array<Record<string, unknown>> = [];
  let targetUrl = "";
  let jumperUrl = "";

  beforeAll(async () => {
    target = createServer((request, response) => {
      arrived.push({ ...request.headers });
      response.end("there");
    });
    jumper = createServer((request, response) => {
      if (request.url === "/same") return void response.writeHead(307, { location: "/here" }).end();
      if (request.url === "/here") {
        arrived.push({ ...request.headers });
        return void response.end("here");
      }
      response.writeHead(307, { location: `${targetUrl}/landed` }).end();
    });
    for (const server of [target, jumper]) await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    targetUrl = `http://127.0.0.1:${(target.address() as { port: number }).port}`;
    jumperUrl = `http://127.0.0.1:${(jumper.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    for (const server of [target, jumper]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  const headers = { authorization: "Bearer t0ken", cookie: "s=1", "proxy-authorization": "Basic eA==", "x-key": "key-sk_live_123", "x-trace": "kept" };
  const request = (path: string) =>
    fetchForPlugin({ patterns: ["http://127.0.0.1:*/*"], url: `${jumperUrl}${path}`, init: { headers }, limits: LIMITS, allowHosts: ["127.0.0.1"], secretValues: ["sk_live_123"] });

  it("drops credentials and secret-bearing headers on a 307 to another port", async () => {
    arrived.length = 0;
    expect(await request("/away")).toMatchObject({ status: 200, body: "there", url: `${targetUrl}/landed` });
    expect(arrived).toHaveLength(1);
    expect(arrived[0]).toMatchObject({ "x-trace": "kept" });
    for (const name of ["authorization", "cookie", "proxy-authorization", "x-key"]) expect(arrived[0]![name], name).toBeUndefined();
  });

  it("keeps them on a redirect within the origin", async () => {
    arrived.length = 0;
    expect(await request("/same")).toMatchObject({ body: "here" });
    expect(arrived[0]).toMatchObject({ authorization: "Bearer t0ken", cookie: "s=1", "x-key": "key-sk_live_123" });
  });
});

describe("secrets", () => {
  const resolver = new SecretResolver({
    configured: { CHAT_URL: "https://chat", "billing:STRIPE_KEY": "sk_billing" },
    environment: { FROM_ENV: "env-value", STRIPE_KEY: "sk_env", HOOKD_TOKEN: "daemon-token" },
  });

  it("gives a scoped secret to its plugin only, and to nobody else under any spelling", () => {
    expect(resolver.resolve("billing", "STRIPE_KEY")).toBe("sk_billing");
    expect(resolver.resolve("other", "STRIPE_KEY")).toBeUndefined();
    expect(resolver.resolve("other", "billing:STRIPE_KEY")).toBeUndefined();
  });

  it("reads global secrets and the environment, but never hookd's own variables", () => {
    expect(resolver.resolve("any", "CHAT_URL")).toBe("https://chat");
    expect(resolver.resolve("any", "FROM_ENV")).toBe("env-value");
    expect(resolver.resolve("any", "HOOKD_TOKEN")).toBeUndefined();
  });
});

describe("host call JSON", () => {
  it("refuses values nested deeper than the host's JSON can follow, and oversized ones", () => {
    expect(jsonProblem(`${"[".repeat(65)}${"]".repeat(65)}`)).toMatch(/deeper than 64/);
    expect(jsonProblem(`${"[".repeat(64)}${"]".repeat(64)}`)).toBeUndefined();
    expect(jsonProblem(JSON.stringify({ text: "[[[[[[[[".repeat(100) }))).toBeUndefined();
    expect(jsonProblem("x".repeat(11), 10)).toMatch(/larger than 10/);
  });
});

describe("declared limits", () => {
  it("takes a plugin's overrides and refuses one out of range, naming the key", () => {
    expect(resolveLimits({ memoryMb: 64, timeoutMs: 5000, maxConcurrentRuns: 4 }, { cpuTimeMs: 100 }, "a.ts")).toMatchObject({ memoryMb: 64, cpuTimeMs: 100 });
    expect(() => resolveLimits({ memoryMb: 64, timeoutMs: 5000, maxConcurrentRuns: 4 }, { kvMaxKeys: -1 }, "a.ts")).toThrow(
      expect.objectContaining({ code: "HOOKD_PLUGIN_OPTIONS_INVALID", message: expect.stringContaining("kvMaxKeys") }),
    );
  });

  it("fails the load of a plugin that declares a limit out of range", async () => {
    const fetchService = new FetchService();
    const host = new IsolateHost({
      services: testServices({ fetch: (caller, url, init) => fetchService.fetch({ plugin: caller.plugin, runId: caller.runId, url, init, policy: caller.fetchPolicy, signal: caller.signal }) }),
    });
    const file = path.join(FIXTURES, "plugins", "hostile-supervisor", "bad-limits.ts");
    const compiled = await compilePlugin(file, { root: FIXTURES });
    try {
      await expect(
        host.load({ plugin: "bad-limits", version: 1, file: "plugins/bad-limits.ts", code: compiled.code, sourceMap: compiled.sourceMap, limits: { memoryMb: 64, timeoutMs: 1000, maxConcurrentRuns: 1 } }),
      ).rejects.toMatchObject({ code: "HOOKD_PLUGIN_OPTIONS_INVALID", message: expect.stringContaining("memoryMb") });
    } finally {
      await host.close();
    }
  });
});
