// Hostile requests against a real daemon: each is refused with its own 4xx code, never a 500,
// and nothing of it is stored.
import { describe, expect, it } from "vitest";
import { useDaemon } from "../helpers/daemon.ts";

const CONFIG = `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: { ...catalog, "test.ping": z.object({ n: z.number().int() }) },
  server: { bodyLimit: 64 * 1024, maxDepth: 20 },
  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 2 },
});
`;

// Emits what HTTP refuses: nested past server.maxDepth (20) but not past the sandbox's own
// host-call bound, and larger than server.bodyLimit (64 KiB).
const EMITTER = `
import { on, action, z } from "hookd";
const nested = (depth) => { let v = 1; for (let i = 0; i < depth; i++) v = [v]; return v; };
on("test.ping", async (ping, ctx) => {
  const attempts = { deep: { clid: 1, autor: 1, user: 1, newparam: { x: nested(30) } },
                     large: { clid: 1, autor: 1, user: 1, newparam: { x: "a".repeat(70 * 1024) } },
                     fine: { clid: 1, autor: 1, user: 1, newparam: { x: nested(10) } } };
  const codes = {};
  for (const [kind, payload] of Object.entries(attempts)) {
    try { await ctx.emit("client.edit", payload); codes[kind] = "accepted"; }
    catch (error) { codes[kind] = error.code ?? String(error); }
  }
  ctx.log.info({ codes }, "emits tried");
});
action("take", { input: z.unknown() }, async () => {});
`;

const nestedJson = (depth: number) => `${"[".repeat(depth)}1${"]".repeat(depth)}`;
const utf16le = (text: string) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);

describe("nesting depth at every ingress", () => {
  const { daemon } = useDaemon({ config: CONFIG, files: { "emitter.js": EMITTER } });

  async function expectCode(response: Response, status: number, code: string) {
    const body = (await response.json()) as { error?: { code: string } };
    expect({ status: response.status, code: body.error?.code }).toEqual({ status, code });
  }
  const storedEvents = async () => ((await daemon.getJson("/api/events?limit=1000")) as { events: unknown[] }).events.length;

  it("JSON 3,500 deep (and 100,000 deep) is 400 HOOKD_HTTP_TOO_DEEP, stores nothing", async () => {
    const before = await storedEvents();
    for (const depth of [3_250, 3_500, 30_000]) {
      const body = `{"clid":1,"autor":1,"user":1,"newparam":{"x":${nestedJson(depth)}}}`;
      await expectCode(await daemon.fetch("/events/client.edit", { method: "POST", headers: { "content-type": "application/json" }, body }), 400, "HOOKD_HTTP_TOO_DEEP");
    }
    // Just inside the bound is fine (4 levels above x: body, newparam, x's arrays).
    const fine = await daemon.post("client.edit", `{"clid":1,"autor":1,"user":1,"newparam":{"x":${nestedJson(18)}}}`);
    expect(fine.status).toBe(202);
    expect(await storedEvents()).toBe(before + 1);
  });

  it("an action input nested past the bound is 400 HOOKD_HTTP_TOO_DEEP", async () => {
    await expectCode(await daemon.fetch("/actions/take", { method: "POST", headers: { "content-type": "application/json" }, body: nestedJson(3_500) }), 400, "HOOKD_HTTP_TOO_DEEP");
  });

  it("a form nested past qs's depth is 400 HOOKD_HTTP_TOO_DEEP, not a key kept as text", async () => {
    const key = `newparam${"[a]".repeat(40)}`;
    const body = `clid=1&autor=1&user=1&${encodeURIComponent(key)}=1`;
    await expectCode(await daemon.fetch("/events/client.edit", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body }), 400, "HOOKD_HTTP_TOO_DEEP");
    const ok = await daemon.fetch("/events/client.edit", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "clid=1&autor=1&user=1&newparam[title]=x" });
    expect(ok.status).toBe(202);
  });

  it("oktell XML with property_set nested 120 deep is 400 HOOKD_HTTP_TOO_DEEP, not 500", async () => {
    const xml = `<oktellcommapper><data><event id="111" name="userstatechanged">${'<property_set name="s">'.repeat(120)}${"</property_set>".repeat(120)}</event></data></oktellcommapper>`;
    await expectCode(await daemon.fetch("/ingest/oktell", { method: "POST", body: utf16le(xml) }), 400, "HOOKD_HTTP_TOO_DEEP");
  });

  it("ctx.emit obeys the same depth and size bounds as HTTP (HOOKD_HTTP_TOO_DEEP, HOOKD_EVENT_TOO_LARGE)", async () => {
    expect((await daemon.post("test.ping", { n: 1 })).status).toBe(202);
    const line = await daemon.waitForLog((l) => l.msg === "emits tried", 15_000);
    expect(line.codes).toEqual({ deep: "HOOKD_HTTP_TOO_DEEP", large: "HOOKD_EVENT_TOO_LARGE", fine: "accepted" });
  });
});
