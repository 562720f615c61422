// Schedules in the real daemon: a plugin's per-second schedule ticks as durable runs (one each,
// in the history and in GET /api/schedules), a config schedule emits its event, a bad cron fails
// the plugin's load, and a hot reload that removes the schedule stops it at once.
import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, useDaemon, type LogLine } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const TICKER = `
import { schedule, on } from "hookd";
schedule("* * * * * *", async (tick, ctx) => {
  ctx.log.info({ scheduledAt: tick.scheduledAt, cron: tick.cron, eventName: ctx.event.name }, "tick handled");
});
on("test.ping", async (event, ctx) => ctx.log.info({ n: event.n }, "ticker ping"));
`;

const CONFIG = DEFAULT_CONFIG.replace("  delivery: {", `  schedules: [{ cron: "* * * * * *", emit: "test.ping", payload: { n: 42 }, catchUp: "none" }],\n  delivery: {`);

const ticks = (logs: LogLine[]) => logs.filter((l) => l.msg === "tick handled").map((l) => String(l.scheduledAt));

describe("schedules in the daemon", () => {
  const { daemon, project } = useDaemon({ config: CONFIG, files: { "ticker.ts": TICKER } });

  it("runs a per-second schedule once per tick, as runs in the history", async () => {
    await waitUntil(() => ticks(daemon.logs).length >= 3, { timeoutMs: 60_000, what: `three ticks (seen ${ticks(daemon.logs).length})` });
    const seen = ticks(daemon.logs);
    expect(new Set(seen).size).toBe(seen.length);
    for (const at of seen) expect(Date.parse(at) % 1000).toBe(0);
    const line = daemon.logs.find((l) => l.msg === "tick handled")!;
    expect(line).toMatchObject({ plugin: "ticker", cron: "* * * * * *", eventName: "schedule:* * * * * *" });
    // Handled ticks are recorded done once their finish commits (just after their log line).
    await waitUntil(
      async () => ((await daemon.getJson("/api/runs?plugin=ticker&status=done")).runs as Array<{ target: string }>).filter((r) => r.target === "schedule:* * * * * *").length >= 3,
      { timeoutMs: 60_000, what: "three tick runs recorded done" },
    );
    const { schedules } = await daemon.getJson("/api/schedules");
    const mine = schedules.find((s: { plugin: string | null }) => s.plugin === "ticker");
    expect(mine).toMatchObject({ id: "plugin:ticker:schedule:* * * * * *", source: "plugin", cron: "* * * * * *", tz: "UTC", catchUp: "one", state: "scheduled" });
    expect(Date.parse(mine.nextTick)).toBeGreaterThan(Date.parse(mine.lastTick));
  });

  it("emits a config schedule's event through the catalog to its handlers", async () => {
    await daemon.waitForLog((l) => l.msg === "ticker ping" && l.n === 42, 60_000);
    const { schedules } = await daemon.getJson("/api/schedules");
    expect(schedules).toContainEqual(expect.objectContaining({ id: "config:test.ping:* * * * * *@UTC", source: "config", emit: "test.ping", catchUp: "none" }));
  });

  it("fails the load of a plugin whose cron is bad, naming the problem", async () => {
    project.write("bad-cron.ts", `import { schedule } from "hookd";\nschedule("61 * * * *", async () => undefined);\n`);
    const failed = await daemon.waitForLog((l) => l.plugin === "bad-cron" && l.code === "HOOKD_SCHEDULE_INVALID", 60_000);
    expect(String(failed.msg)).toContain("minute");
  });

  it("stops a schedule at once when a reload removes it", async () => {
    const reloadsBefore = daemon.logs.filter((l) => l.plugin === "ticker" && l.msg === "plugin reloaded").length;
    project.write("ticker.ts", `import { on } from "hookd";\non("test.ping", async (event, ctx) => ctx.log.info({ n: event.n }, "ticker ping"));\n`);
    await waitUntil(() => daemon.logs.filter((l) => l.plugin === "ticker" && l.msg === "plugin reloaded").length > reloadsBefore, { timeoutMs: 60_000, what: "the ticker's reload" });
    const reloadedAt = Date.now();
    const { schedules } = await daemon.getJson("/api/schedules");
    expect(schedules.filter((s: { plugin: string | null }) => s.plugin === "ticker")).toEqual([]);
    // Proving an absence takes time passing: three more seconds, in which the old cron would tick three times.
    await waitUntil(() => Date.now() > reloadedAt + 3000, { what: "three seconds after the reload" });
    const late = ticks(daemon.logs).filter((at) => Date.parse(at) > reloadedAt + 1000);
    expect(late).toEqual([]);
  });
});
