// hookd/testing fakes the telephony workstations: ctx.oktell calls are checked as the daemon
// checks them and answered at once (seed 002's documents unless the test says otherwise).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlugin, type PluginHarness } from "hookd/testing";

const PLUGIN = `import { on, plugin } from "hookd";
plugin({ oktell: true });
on("oktell.tminterfaceconfirm", async (_confirm, ctx) => {
  const user = ctx.event.source.user ?? "A";
  const state = await ctx.oktell.getUserState(user);
  const accepted = await ctx.oktell.confirmResult(user, state.state === "usReady" ? "ok" : "skip");
  ctx.log.info({ state: state.state, accepted }, "answered");
});
on("oktell.tminterfaceclose", async (_close, ctx) => {
  await ctx.oktell.setUserState("A", { state: "usNap" } as never);
});
`;
const UNDECLARED = `import { on } from "hookd";
on("oktell.tminterfaceclose", async (_close, ctx) => { await ctx.oktell.callCenterEnter("A"); });
`;
const CONFIRM = { idtask: "t-1", idproject: "p-1", taskname: "Прозвон", taskcode: "", idlist: "l-1", idinlist: 67, number: "120151112", text: "Вы зарезервированы" };

describe("hookd/testing: ctx.oktell", () => {
  let dir: string;
  let plugin: PluginHarness;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hookd-kit-oktell-"));
    mkdirSync(path.join(dir, "plugins"));
    writeFileSync(path.join(dir, "plugins", "confirmer.ts"), PLUGIN);
    writeFileSync(path.join(dir, "plugins", "undeclared.ts"), UNDECLARED);
    plugin = await loadPlugin(path.join(dir, "plugins", "confirmer.ts"));
  });
  afterAll(async () => {
    await plugin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers with seed 002's documents and records each call as its bridge would get it", async () => {
    const run = await plugin.send("oktell.tminterfaceconfirm", CONFIRM);
    expect(run.error).toBeUndefined();
    expect(run.logs.find((l) => l.msg === "answered")?.fields).toMatchObject({ state: "usReady", accepted: true });
    expect(run.oktellCalls.map((c) => [c.user, c.method])).toEqual([["A", "GetUserState"], ["A", "TM_SetConfirmResult"]]);
    expect(run.oktellCalls[1]!.xml).toContain('<property_simple key="result" value="0" />');
  });

  it("answers what the test sets, and a failure rejects with HOOKD_OKTELL_METHOD_FAILED", async () => {
    plugin.oktell.respond("getUserState", { state: "usLunch", stateCode: 2, redirect: false });
    const run = await plugin.send("oktell.tminterfaceconfirm", CONFIRM);
    expect(run.logs.find((l) => l.msg === "answered")?.fields).toMatchObject({ state: "usLunch" });
    expect(run.oktellCalls[1]!.xml).toContain('<property_simple key="result" value="1" />');
    plugin.oktell.respond("getUserState", { error: "the component is not connected" });
    expect((await plugin.send("oktell.tminterfaceconfirm", CONFIRM)).error?.code).toBe("HOOKD_OKTELL_METHOD_FAILED");
  });

  it("refuses a bad enum and a plugin that did not declare oktell, as the daemon does", async () => {
    expect((await plugin.send("oktell.tminterfaceclose", { idtask: "t-1" })).error?.code).toBe("HOOKD_OKTELL_BAD_ARGUMENT");
    const undeclared = await loadPlugin(path.join(dir, "plugins", "undeclared.ts"));
    try {
      expect((await undeclared.send("oktell.tminterfaceclose", { idtask: "t-1" })).error?.code).toBe("HOOKD_OKTELL_NOT_DECLARED");
    } finally {
      await undeclared.close();
    }
  });
});
