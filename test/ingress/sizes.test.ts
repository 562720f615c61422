// Sizes that used to bypass the limits: list pages are bounded in bytes (payloads over a bound
// shown as a marker, whole in the detail), and a handler's huge error message is stored, served
// and logged cut to a bound, saying so.
import { describe, expect, it } from "vitest";
import { useDaemon } from "../helpers/daemon.ts";

const CONFIG = `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: { ...catalog, "test.ping": z.object({ n: z.number().int() }) },
  server: { bodyLimit: 1024 * 1024, maxPageBytes: 64 * 1024, listItemBytes: 32 * 1024 },
  delivery: { backoffMs: 50, maxBackoffMs: 100, maxAttempts: 2, maxErrorChars: 1024 },
  log: { maxFieldChars: 2048 },
});
`;

const THROWER = `
import { on } from "hookd";
on("test.ping", (ping, ctx) => {
  ctx.log.info({ big: "y".repeat(10 * 1024) }, "big field");
  throw new Error("x".repeat(2 * 1024 * 1024));
});
`;

const edit = (clid: number, chars: number) => ({ clid, autor: 1, user: 1, newparam: { x: "a".repeat(chars) } });

describe("sizes", () => {
  const { daemon } = useDaemon({ config: CONFIG, files: { "thrower.js": THROWER } });

  it("GET /api/events pages by bytes: every page fits maxPageBytes, large payloads are markers, next reaches every event once", async () => {
    const large = [1, 2, 3];
    const medium = [11, 12, 13, 14, 15, 16];
    for (const clid of large) expect((await daemon.post("client.edit", edit(clid, 200 * 1024))).status).toBe(202);
    for (const clid of medium) expect((await daemon.post("client.edit", edit(clid, 20 * 1024))).status).toBe(202);

    const seen: Array<{ id: string; payload: { clid: number } | null; payloadTruncated?: { bytes: number } }> = [];
    let next: string | null = "/api/events?name=client.edit&limit=100";
    let pages = 0;
    while (next !== null) {
      const response = await daemon.fetch(next);
      const text = await response.text();
      expect(response.status).toBe(200);
      expect(Buffer.byteLength(text)).toBeLessThan(64 * 1024 + 4096);
      const body = JSON.parse(text) as { events: typeof seen; next: string | null };
      seen.push(...body.events);
      next = body.next;
      if (++pages > 20) throw new Error(`more than 20 pages for 9 events: next keeps going (${next})`);
    }
    expect(pages).toBeGreaterThan(1);
    expect(seen).toHaveLength(9);
    const truncated = seen.filter((e) => e.payloadTruncated);
    expect(truncated).toHaveLength(3);
    for (const event of truncated) {
      expect(event.payload).toBeNull();
      expect(event.payloadTruncated!.bytes).toBeGreaterThan(200 * 1024);
      const detail = (await daemon.getJson(`/api/events/${event.id}`)) as { event: { payload: { newparam: { x: string } } } };
      expect(detail.event.payload.newparam.x).toHaveLength(200 * 1024);
    }
    expect(seen.filter((e) => !e.payloadTruncated).map((e) => e.payload!.clid).sort((a, b) => a - b)).toEqual(medium);
  });

  it("a thrown 2 MB error is stored, listed and logged cut to the bound, saying so", async () => {
    const { body } = await daemon.post("test.ping", { n: 1 });
    const deadLine = await daemon.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("run dead-lettered") && l.eventId === body.id, 15_000);
    expect(String(deadLine.msg).length).toBeLessThan(2048 + 200);
    expect(String(deadLine.msg)).toContain("[truncated,");
    const { runs } = (await daemon.getJson(`/api/runs?eventId=${body.id}`)) as { runs: Array<{ lastError: { message: string } }> };
    expect(runs).toHaveLength(1);
    expect(runs[0]!.lastError.message.length).toBeLessThan(1024 + 100);
    expect(runs[0]!.lastError.message).toMatch(/… \[truncated, \d+ bytes\]$/);
    const field = await daemon.waitForLog((l) => l.msg === "big field");
    expect(String(field.big).length).toBeLessThan(2048 + 100);
    expect(String(field.big)).toContain("[truncated, 10240 bytes]");
  });
});
