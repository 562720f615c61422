// The real daemon with a config that opens all of 127.0.0.1 to ctx.fetch: a plugin declaring
// `http://*` reaches a local server there, and still never the daemon's own API, under any name
// or spelling of its address.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { startLocalServer, type LocalServer } from "../helpers/http.ts";

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: { "probe.go": z.object({ daemonPort: z.number().int(), localPort: z.number().int() }) },
  delivery: { maxAttempts: 1 },
  // Every port of the loopback address, by name too: the daemon's own stays refused.
  sandbox: { fetchAllowHosts: ["127.0.0.1", "localhost", "[::1]"] },
  secrets: { "prober:API_TOKEN": "daemon-api-token" },
});
`;

const PLUGIN = `
import { on, plugin } from "hookd";
plugin({ fetch: ["http://*", "https://*"], secrets: ["API_TOKEN"], fetchTimeoutMs: 2000 });
on("probe.go", async (event, ctx) => {
  const headers = { authorization: "Bearer " + ctx.secrets.API_TOKEN };
  const port = event.daemonPort;
  const codes: Record<string, unknown> = {};
  for (const url of [
    "http://127.0.0.1:" + port + "/api/status",
    "http://localhost:" + port + "/api/plugins",
    "http://[::ffff:127.0.0.1]:" + port + "/api/status",
    "http://2130706433:" + port + "/api/status",
  ]) {
    try {
      await ctx.fetch(url, { headers });
      codes[url] = "reached";
    } catch (error) {
      codes[url] = (error as { code?: string }).code;
    }
  }
  const local = await ctx.fetch("http://127.0.0.1:" + event.localPort + "/ok", { headers });
  ctx.log.info({ codes, local: await local.text() }, "probe done");
});
`;

describe("ctx.fetch and the daemon's own address", () => {
  let local: LocalServer | undefined;
  let localPort = 0;
  const project = new TestProject({ config: CONFIG, files: { "prober.ts": PLUGIN } });
  const daemon = new TestDaemon(project);

  beforeAll(async () => {
    local = await startLocalServer((_request, response) => response.end("local ok"));
    localPort = local.port;
    await daemon.start({ timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await daemon.stop();
    project.remove();
    await local?.close();
  });

  it("refuses the daemon's API to a plugin declaring http://* even where the config allows the host, and serves the allowed neighbour", async () => {
    const daemonPort = Number(new URL(daemon.url).port);
    const { status, body } = await daemon.post("probe.go", { daemonPort, localPort });
    expect(status).toBe(202);
    const done = await daemon.waitForLog((line) => line.msg === "probe done" && line.eventId === body.id, 20_000);
    expect(Object.values(done.codes as Record<string, unknown>)).toEqual(Array(4).fill("HOOKD_FETCH_NOT_ALLOWED"));
    expect(done.local).toBe("local ok");
  });
});
