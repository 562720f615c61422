// plugins/notify-supervisor.ts in a real isolate, through the plugin authors' test kit.
import { afterEach, describe, expect, it } from "vitest";
import { loadPlugin, type PluginHarness } from "hookd/testing";

const CHAT_URL = "https://chat.example.com/hooks/supervisors";

describe("plugins/notify-supervisor.ts", () => {
  let plugin: PluginHarness;
  afterEach(() => plugin.close());

  it("records the operator's last status and tells the duty supervisor when none is on file", async () => {
    plugin = await loadPlugin("plugins/notify-supervisor.ts");
    const run = await plugin.run("notify-supervisor", { operator: "op-7", status: "offline", reason: "inactivity", changedAt: "2025-05-26T16:15:30Z" });
    expect(run.ok).toBe(true);
    expect(run.kvWrites).toEqual([{ op: "set", key: "last-status:op-7", value: { status: "offline", reason: "inactivity", at: "2025-05-26T16:15:30Z" } }]);
    expect(run.logs).toEqual([
      {
        level: "info",
        msg: "Operator op-7 was inactive too long: now offline",
        fields: { operator: "op-7", supervisor: "duty-supervisor", status: "offline", reason: "inactivity" },
      },
    ]);
    // No SUPERVISOR_CHAT_URL: nothing leaves the isolate.
    expect(run.fetches).toEqual([]);
  });

  it("posts to the supervisor found in its directory when the chat URL is set", async () => {
    plugin = await loadPlugin("plugins/notify-supervisor.ts", {
      secrets: { SUPERVISOR_CHAT_URL: CHAT_URL },
      kv: { "supervisor:op-8": "anna" },
    });
    plugin.fetch.respond("https://chat.example.com/*", { status: 200, body: "ok" });
    const run = await plugin.run("notify-supervisor", { operator: "op-8", status: "offline", reason: "logout" });
    expect(run.ok).toBe(true);
    expect(run.fetches).toHaveLength(1);
    expect(run.fetches[0]).toMatchObject({ method: "POST", url: CHAT_URL });
    expect(JSON.parse(run.fetches[0]!.body!)).toEqual({ to: "anna", text: "Operator op-8 logged out: now offline" });
  });

  it("fails the run, to be retried, when the chat answers with an error", async () => {
    plugin = await loadPlugin("plugins/notify-supervisor.ts", { secrets: { SUPERVISOR_CHAT_URL: CHAT_URL } });
    plugin.fetch.respond(CHAT_URL, { status: 500 });
    const run = await plugin.run("notify-supervisor", { operator: "op-9", status: "online", reason: "manual" });
    expect(run.error).toMatchObject({ code: "HOOKD_RUN_FAILED", retriable: true, location: expect.stringMatching(/^plugins\/notify-supervisor\.ts:\d+:\d+$/) });
    expect(run.error!.message).toContain("chat answered HTTP 500");
  });
});
