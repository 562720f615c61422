// The plugin test kit (hookd/testing) and time: a schedule's handler run for one tick with
// `plugin.tick()`, and a delayed ctx.emit recorded with its due time, checked against the
// project's calendars as the daemon checks it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlugin, type PluginHarness } from "hookd/testing";

const CONFIG = `
import { defineConfig } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: catalog,
  calendars: { office: { tz: "Europe/Moscow", hours: "Mon-Fri 09:00-18:00" } },
});
`;

const REMINDER = `
import { schedule } from "hookd";
schedule("0 9 * * 1-5", { tz: "Europe/Moscow", calendar: "office" }, async (tick, ctx) => {
  ctx.log.info({ at: tick.scheduledAt, tz: tick.tz }, "morning reminder");
  await ctx.emit("task.add", { id: 1, autor: 2 }, { delay: "2h", within: "office" });
});
schedule("*/5 * * * *", async (_tick, ctx) => {
  await ctx.emit("task.add", { id: 1, autor: 2 }, { delay: "2h", within: "warehouse" });
});
`;

describe("hookd/testing and schedules", () => {
  let dir: string;
  let plugin: PluginHarness;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hookd-kit-time-"));
    mkdirSync(path.join(dir, "plugins"));
    writeFileSync(path.join(dir, "events.config.ts"), CONFIG);
    writeFileSync(path.join(dir, "plugins", "reminder.ts"), REMINDER);
    plugin = await loadPlugin(path.join(dir, "plugins", "reminder.ts"));
  });
  afterAll(async () => {
    await plugin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs a schedule's handler for a tick, and records a delayed emit with its due time", async () => {
    const before = Date.now();
    const run = await plugin.tick("0 9 * * 1-5", { at: new Date("2026-12-04T06:00:00Z") });
    expect(run.ok).toBe(true);
    expect(run.logs[0]).toMatchObject({ msg: "morning reminder", fields: { at: "2026-12-04T06:00:00.000Z", tz: "Europe/Moscow" } });
    expect(run.emitted).toHaveLength(1);
    // Two open hours from now: at least two hours ahead.
    expect(Date.parse(run.emitted[0]!.deliverAt!)).toBeGreaterThanOrEqual(before + 2 * 3600_000);
  });

  it("fails the run whose emit names a calendar the config lacks, not retried", async () => {
    const run = await plugin.tick("*/5 * * * *");
    expect(run.ok).toBe(false);
    expect(run.error).toMatchObject({ code: "HOOKD_EVENT_DELAY_INVALID", retriable: false });
  });

  it("asks which schedule when the plugin declares several", async () => {
    await expect(plugin.tick()).rejects.toMatchObject({ code: "HOOKD_RUN_NO_HANDLER" });
  });
});

describe("hookd/testing and flow control", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "hookd-kit-flow-"));
    mkdirSync(path.join(dir, "plugins"));
    writeFileSync(path.join(dir, "events.config.ts"), CONFIG);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs a handler declared with flow options as the daemon would run it", async () => {
    writeFileSync(path.join(dir, "plugins", "sync.ts"), `import { on } from "hookd";\non("deal.edit", { concurrency: { key: "did", limit: 1 } }, (deal, ctx) => ctx.log.info({ did: deal.did }, "synced"));`);
    const plugin = await loadPlugin(path.join(dir, "plugins", "sync.ts"));
    try {
      const run = await plugin.send("deal.edit", { did: 5, autor: 1, user: 1, newparam: {} } as never);
      expect(run.ok).toBe(true);
      expect(run.logs[0]).toMatchObject({ msg: "synced", fields: { did: 5 } });
    } finally {
      await plugin.close();
    }
  });

  it("refuses flow options the daemon would refuse, naming the rule", async () => {
    writeFileSync(path.join(dir, "plugins", "bad.ts"), `import { on } from "hookd";\non("deal.edit", { debounce: { key: "deal", period: "10s" } }, () => {});`);
    await expect(loadPlugin(path.join(dir, "plugins", "bad.ts"))).rejects.toMatchObject({ code: "HOOKD_FLOW_INVALID", message: expect.stringContaining("debounce.key") });
  });
});
