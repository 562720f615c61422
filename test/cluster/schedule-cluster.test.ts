// Three daemons on one PostgreSQL schema run the same per-second schedule: every instance's timer
// reaches every tick, and each tick is stored (and handled) once, whichever instance claimed it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const CONFIG = `
import { defineConfig } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({ events: catalog, delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 5 } });
`;

const PLUGIN = `
import { schedule } from "hookd";
schedule("* * * * * *", async (tick, ctx) => ctx.log.info({ scheduledAt: tick.scheduledAt }, "tick handled"));
`;

const TICKS = 8;

const postgresDown = await postgresUnavailable();
const suite = postgresDown ? describe.skip : describe;
if (postgresDown) describe.skip(`schedule cluster test skipped: ${postgresDown}`, () => it("needs PostgreSQL", () => undefined));

suite("a schedule on three instances of one PostgreSQL", () => {
  const schema = testSchemaName();
  const project = new TestProject({ config: CONFIG, files: { "ticker.ts": PLUGIN } });
  const daemons = [0, 1, 2].map(() => new TestDaemon(project));

  beforeAll(async () => {
    await Promise.all(daemons.map((d, node) => d.start({ env: { HOOKD_STORE_URL: schemaUrl(schema), HOOKD_INSTANCE_ID: `node-${node}`, HOOKD_LOG_LEVEL: "info" }, timeoutMs: 60_000 })));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    project.remove();
    await dropSchema(schema);
  });

  const handled = () => daemons.flatMap((d, node) => d.logs.filter((l) => l.msg === "tick handled").map((l) => ({ node, at: String(l.scheduledAt) })));

  it("runs each tick once across the three", { timeout: 120_000 }, async () => {
    // Every instance has the schedule armed.
    for (const daemon of daemons) {
      const { schedules } = await daemon.getJson("/api/schedules");
      expect(schedules.map((s: { id: string }) => s.id)).toEqual(["plugin:ticker:schedule:* * * * * *"]);
    }
    await waitUntil(() => new Set(handled().map((h) => h.at)).size >= TICKS, { timeoutMs: 90_000, what: `${TICKS} distinct ticks handled (seen ${JSON.stringify(handled())})` });
    await Promise.all(daemons.map((d) => d.stop()));
    const all = handled();
    const byTick = new Map<string, number[]>();
    for (const { node, at } of all) byTick.set(at, [...(byTick.get(at) ?? []), node]);
    const twice = [...byTick].filter(([, nodes]) => nodes.length > 1);
    expect(twice).toEqual([]);
    expect(byTick.size).toBeGreaterThanOrEqual(TICKS);
  });
});
