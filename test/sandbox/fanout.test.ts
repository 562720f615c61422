// Emit fan-out against the real daemon, on both stores (issue 14, item 5): a handler that emits
// 20 copies of its own event once turned one POST into 464,740 events in 25 s. The depth bound
// lets a chain through 8 generations; the root's budget (delivery.maxDescendants) bounds what
// one accepted event can cause in total. The flood settles at exactly the budget, the refused
// runs are dead-lettered with HOOKD_EVENT_EMIT_BUDGET, and a neighbour's event is handled.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const BUDGET = 150;

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: {
    "test.ping": z.object({ n: z.number().int() }),
    "slow.job": z.object({ n: z.number().int() }),
    "flood.fanout": z.object({ hop: z.number().int() }),
  },
  delivery: { maxEmitDepth: 8, maxDescendants: ${BUDGET}, backoffMs: 50, maxBackoffMs: 200 },
  // The breaker pauses the flooding plugin after its refused runs; a short pause keeps the test short.
  sandbox: { breaker: { failures: 5, coolDownMs: 100 } },
});
`;

interface Run {
  id: number;
  eventId: string;
  status: string;
  attempts: number;
  lastError: { code: string } | null;
}

const postgresDown = await postgresUnavailable();
const stores = postgresDown ? ["sqlite"] : ["sqlite", "postgres"];
if (postgresDown) describe.skip(`postgres half skipped: ${postgresDown}`, () => it("needs PostgreSQL", () => undefined));

describe.each(stores)("emit fan-out (%s store)", (storeKind) => {
  const project = new TestProject({ fixtures: ["containment"], config: CONFIG });
  const daemon = new TestDaemon(project);
  const schema = testSchemaName();

  beforeAll(async () => {
    const env: Record<string, string> = { SLOW_API: "http://127.0.0.1:9", HOOKD_LOG_LEVEL: "info" };
    if (storeKind === "postgres") env.HOOKD_STORE_URL = schemaUrl(schema);
    await daemon.start({ env, timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await daemon.stop();
    project.remove();
    if (storeKind === "postgres") await dropSchema(schema);
  });

  it(`stops a 20-wide emit fan-out at ${BUDGET} descendants of the root with HOOKD_EVENT_EMIT_BUDGET`, { timeout: 240_000 }, async () => {
    const { status, body } = await daemon.post("flood.fanout", { hop: 0 });
    expect(status).toBe(202);
    const root = body.id as string;
    expect((await daemon.post("test.ping", { n: 1 })).status).toBe(202);

    const runs = async () => ((await daemon.getJson("/api/runs?plugin=fanout&limit=1000")) as { runs: Run[] }).runs;
    // Unbounded, this never settles (20^8 events); bounded, every run ends done or dead.
    const settled = await waitUntil(
      async () => {
        const all = await runs();
        return all.length > 0 && all.every((r) => r.status === "done" || r.status === "dead") && all;
      },
      { timeoutMs: 180_000, what: async () => `the fan-out to settle (${JSON.stringify(tally(await runs()))})` },
    );
    // The root's run and one per descendant: exactly the budget got in.
    expect(settled).toHaveLength(1 + BUDGET);
    const dead = settled.filter((r) => r.status === "dead");
    expect(dead.length).toBeGreaterThan(0);
    for (const run of dead) {
      expect(run.lastError?.code).toBe("HOOKD_EVENT_EMIT_BUDGET");
      expect(run.attempts).toBe(1); // refused for good: never retried
    }
    // Every emitted event records the root, whatever its generation.
    const { events } = (await daemon.getJson("/api/events?name=flood.fanout&limit=1000")) as { events: Array<{ id: string; rootId: string | null; depth: number }> };
    expect(events).toHaveLength(1 + BUDGET);
    expect(events.filter((e) => e.id !== root).every((e) => e.rootId === root)).toBe(true);
    expect(Math.max(...events.map((e) => e.depth))).toBeGreaterThan(1);
    await daemon.waitForLog((l) => l.msg === "bystander handled" && l.n === 1, 60_000);
    await daemon.waitForLog((l) => l.code === "HOOKD_EVENT_EMIT_BUDGET", 10_000);
  });
});

function tally(runs: Run[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const run of runs) counts[run.status] = (counts[run.status] ?? 0) + 1;
  return counts;
}
