// plugins/chat-leads.ts in a real isolate, through the plugin authors' test kit.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadPlugin, type PluginHarness } from "hookd/testing";

describe("plugins/chat-leads.ts", () => {
  let plugin: PluginHarness;
  beforeEach(async () => {
    plugin = await loadPlugin("plugins/chat-leads.ts");
  });
  afterEach(() => plugin.close());

  it("subscribes to the session events and declares the create-lead action", () => {
    expect(plugin.manifest.events).toEqual(["session.created", "session.closed"]);
    expect(plugin.manifest.actions).toEqual(["create-lead"]);
  });

  it("creates a lead when a session opens, once even when the event is delivered again", async () => {
    const session = { sessionId: "s-1", channel: "telegram", contactId: "c-9", createdAt: "2025-05-26T16:15:30Z" };
    const first = await plugin.send("session.created", session);
    expect(first.ok).toBe(true);
    expect(first.kvWrites).toEqual([
      {
        op: "set",
        key: "lead:s-1",
        value: { sessionId: "s-1", channel: "telegram", contactId: "c-9", createdBy: "session", createdAt: "2025-05-26T16:15:30Z", closedAt: null },
      },
    ]);
    expect(first.logs.map((l) => l.msg)).toEqual(["lead created"]);

    const redelivered = await plugin.send("session.created", session, { attempt: 2 });
    expect(redelivered.ok).toBe(true);
    expect(redelivered.kvWrites).toEqual([]);
    expect(redelivered.logs).toEqual([{ level: "debug", msg: "lead already exists", fields: { sessionId: "s-1" } }]);
  });

  it("marks the lead closed when the session closes, and ignores sessions it never saw", async () => {
    await plugin.send("session.created", { sessionId: "s-2", channel: "web", createdAt: "2025-05-26T16:00:00Z" });
    const closed = await plugin.send("session.closed", { sessionId: "s-2", closedAt: "2025-05-26T17:00:00Z" });
    expect(closed.ok).toBe(true);
    expect(plugin.kv.get("lead:s-2")).toMatchObject({ contactId: null, closedAt: "2025-05-26T17:00:00Z" });

    const unknown = await plugin.send("session.closed", { sessionId: "s-404", closedAt: "2025-05-26T17:00:00Z" });
    expect(unknown.ok).toBe(true);
    expect(unknown.kvWrites).toEqual([]);
  });

  it("creates a lead by hand through the action, and refuses an input without a session", async () => {
    const byHand = await plugin.run("create-lead", { sessionId: "s-3", channel: "phone" });
    expect(byHand.ok).toBe(true);
    expect(plugin.kv.get("lead:s-3")).toMatchObject({ createdBy: "operator", channel: "phone" });

    const invalid = await plugin.run("create-lead", { channel: "phone" });
    expect(invalid.error).toMatchObject({ code: "HOOKD_RUN_INPUT_INVALID", retriable: false });
    expect(invalid.kvWrites).toEqual([]);
  });
});
