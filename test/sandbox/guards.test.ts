// The sandbox's guards one by one: addresses a wildcard fetch pattern never reaches, secrets a
// plugin cannot claim by name, JSON the host refuses to parse, limits a plugin cannot declare.
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../../core/compile/compile-plugin.ts";
import { isPrivateAddress } from "../../sandbox/guarded-transport.ts";
import { fetchForPlugin, matchUrl } from "../../sandbox/host-fetch.ts";
import { IsolateHost } from "../../sandbox/isolate-host.ts";
import { jsonProblem } from "../../sandbox/json-guard.ts";
import { resolveLimits } from "../../sandbox/limits.ts";
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
    ["fd00::1", true],
    ["fe80::1", true],
    ["::ffff:127.0.0.1", true],
    ["::ffff:7f00:1", true],
    ["64:ff9b::10.0.0.1", true],
    ["2002:7f00:1::", true],
    ["93.184.215.14", false],
    ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", false],
  ])("treats %s as private: %s", (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });

  it("lets only a pattern naming the host literally reach a private address", () => {
    expect(matchUrl(`http://127.0.0.1:${port}/x`, ["http://*"])).toEqual({ allowed: true, privateAllowed: false });
    expect(matchUrl(`http://127.0.0.1:${port}/x`, ["http://127.0.0.1:*/*"])).toEqual({ allowed: true, privateAllowed: true });
    expect(matchUrl("http://localhost:80/x", ["http://localhost:*/*"])).toEqual({ allowed: true, privateAllowed: true });
    expect(matchUrl("https://a.example.com@evil.example/", ["https://*.example.com/*"]).allowed).toBe(false);
  });

  it("refuses a host name that resolves to loopback through a wildcard, and reaches it through a literal pattern", async () => {
    await expect(fetchForPlugin(["http://*"], `http://localhost:${port}/`, {}, LIMITS)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    await expect(fetchForPlugin(["http://*"], `http://127.0.0.1:${port}/`, {}, LIMITS)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    const reply = await fetchForPlugin(["http://localhost:*/*"], `http://localhost:${port}/`, {}, LIMITS);
    expect(reply).toMatchObject({ status: 200, body: "local" });
  });

  it("refuses credentials in a URL", async () => {
    await expect(fetchForPlugin(["http://*"], `http://user:pass@example.com/`, {}, LIMITS)).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
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
    const host = new IsolateHost({ services: { log: () => undefined, kv: async () => undefined, emit: async () => ({ id: "x" }) } });
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
