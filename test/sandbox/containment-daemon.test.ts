// Issue 14, round two, against the real daemon: a plugin posing as the host is paused by the
// breaker all the same; a plugin asking for more than the config's ceiling does not load; a
// sandbox process whose event loop hangs is restarted, /readyz saying why meanwhile, its runs
// retried as crash suspects, a neighbour's event handled.
//
// The hang is staged by the worker's test-only hook (HOOKD_TEST_BLOCK_SANDBOX_PLUGIN=blocker,
// passed in the daemon's environment and from there to its sandbox process; see sandbox/worker.ts).
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { pause, waitUntil } from "../helpers/wait.ts";

const DIR = path.join(FIXTURES, "plugins", "limits");
const PLUGINS = ["forge-aborted", "greedy", "modest", "blocker", "neighbour"];

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: {
    "test.ping": z.object({ n: z.number().int() }),
    "test.block": z.object({ n: z.number().int() }),
    "attack.forge_aborted": z.object({ n: z.number().int() }),
    "attack.forge_aborted_object": z.object({ n: z.number().int() }),
  },
  delivery: { backoffMs: 20, maxBackoffMs: 50, maxAttempts: 2 },
  sandbox: { timeoutMs: 10000, heartbeatMs: 200, heartbeatMisses: 3, breaker: { failures: 5, coolDownMs: 60000 } },
});
`;

interface RunRecord {
  eventId: string;
  plugin: string;
  status: string;
  attempts: number;
  lastError: { code: string; pluginCode?: string } | null;
}

describe("containment, round two, end to end", () => {
  const project = new TestProject({ config: CONFIG });
  const daemon = new TestDaemon(project);

  beforeAll(async () => {
    for (const name of PLUGINS) project.write(`${name}.ts`, readFileSync(path.join(DIR, `${name}.ts`), "utf8"));
    await daemon.start({ env: { HOOKD_TEST_BLOCK_SANDBOX_PLUGIN: "blocker" }, timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await daemon.stop();
    project.remove();
  });

  async function settled(eventId: string, plugin: string, timeoutMs = 30_000): Promise<RunRecord> {
    const runsOf = async () => ((await daemon.getJson(`/api/runs?eventId=${eventId}`)) as { runs: RunRecord[] }).runs;
    return waitUntil(async () => (await runsOf()).find((r) => r.plugin === plugin && (r.status === "done" || r.status === "dead")), {
      timeoutMs,
      intervalMs: 50,
      what: async () => `the run of ${plugin} for ${eventId} to settle: ${JSON.stringify(await runsOf())}`,
    });
  }

  it("12: a plugin declaring memoryMb: 1024 under the default ceiling fails to load, naming the setting; one lowering its limits loads", async () => {
    const failed = await daemon.waitForLog((l) => l.plugin === "greedy" && l.code === "HOOKD_PLUGIN_LIMIT_ABOVE_CEILING");
    expect(String(failed.msg)).toContain("sandbox.ceilings.memoryMb");
    const { plugins } = (await daemon.getJson("/api/plugins")) as { plugins: Array<{ name: string; state: string }> };
    expect(plugins.find((p) => p.name === "greedy")?.state).toBe("failed");
    expect(plugins.find((p) => p.name === "modest")?.state).toBe("loaded");
  });

  it("13: a plugin throwing code HOOKD_RUN_ABORTED fails as HOOKD_RUN_FAILED and is paused by the breaker", async () => {
    const ids: string[] = [];
    // Thrown as an Error with that code, and as a plain object: six failures in all.
    for (let n = 0; n < 6; n++) ids.push((await daemon.post(n % 2 === 0 ? "attack.forge_aborted" : "attack.forge_aborted_object", { n })).body.id);
    const paused = await daemon.waitForLog((l) => l.code === "HOOKD_PLUGIN_PAUSED" && l.plugin === "forge-aborted", 20_000);
    expect(paused).toMatchObject({ failures: 5, lastCode: "HOOKD_RUN_FAILED" });
    const first = await settled(ids[0]!, "forge-aborted");
    expect(first.lastError).toMatchObject({ code: "HOOKD_RUN_FAILED", pluginCode: "HOOKD_RUN_ABORTED" });
  }, 40_000);

  it("3: a hung sandbox process is restarted; /readyz says why meanwhile; its runs are retried as crash suspects", async () => {
    expect((await daemon.fetch("/readyz")).status).toBe(200);
    const reasons = new Set<string>();
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const response = await daemon.fetch("/readyz").catch(() => undefined);
        if (response && response.status === 503) reasons.add(String(((await response.json()) as { error: { message: string } }).error.message));
        else await response?.arrayBuffer();
        await pause(30); // a sampling pace, not a state
      }
    })();
    try {
      const block = (await daemon.post("test.block", { n: 1 })).body.id as string;
      const ping = (await daemon.post("test.ping", { n: 1 })).body.id as string;
      await daemon.waitForLog((l) => l.code === "HOOKD_SANDBOX_UNRESPONSIVE" && /stopped answering/.test(String(l.msg)), 20_000);

      // The blocker hangs the process every time: lost once as a suspect (refunded), then run
      // alone until its attempts are spent, dead-lettered with the code.
      const blocked = await settled(block, "blocker", 60_000);
      expect(blocked).toMatchObject({ status: "dead", attempts: 2, lastError: { code: "HOOKD_SANDBOX_UNRESPONSIVE" } });
      expect(daemon.logs.some((l) => l.code === "HOOKD_SANDBOX_UNRESPONSIVE" && l.suspect === true)).toBe(true);
      // The neighbour's event is handled, hung process or not.
      expect(await settled(ping, "neighbour", 30_000)).toMatchObject({ status: "done" });
    } finally {
      polling = false;
      await poll;
    }
    const seen = [...reasons].join(" | ");
    expect(seen).toMatch(/sandbox process is not answering: \d of 3 heartbeats of 200 ms missed/);
    expect(seen).toMatch(/sandbox process is restarting: it stopped answering \(3 heartbeats of 200 ms missed\)/);
    // Ready again once the process is back.
    await waitUntil(async () => (await daemon.fetch("/readyz")).status === 200, { timeoutMs: 15_000, intervalMs: 50, what: "/readyz answering 200 again" });
    expect((await daemon.fetch("/readyz")).status).toBe(200);
  }, 90_000);
});
