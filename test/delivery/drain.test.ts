// SIGTERM: new events get 503, runs in flight finish within the drain budget (or give their lease
// back), the WAL is checkpointed, and the daemon exits 0.
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { Sink } from "./sink.ts";

const configWithDrain = (drainMs: number) =>
  DEFAULT_CONFIG.replace("delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 3 }", `delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 3, drainMs: ${drainMs} }`);

function readRuns(project: TestProject, eventId: string): Array<{ plugin: string; status: string; attempts: number }> {
  const db = new Database(path.join(project.dir, "data/hookd.db"), { readonly: true });
  try {
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    return db
      .prepare("SELECT d.plugin, d.status, d.attempts FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.id = ? ORDER BY d.plugin")
      .all(eventId) as Array<{ plugin: string; status: string; attempts: number }>;
  } finally {
    db.close();
  }
}

/** Posts until the daemon answers 503 (or stops listening); returns the 503's error code. */
async function postUntilRefused(daemon: TestDaemon): Promise<string | undefined> {
  let n = 1000;
  const refused = await waitUntil(
    async (): Promise<{ code: string | undefined } | false> => {
      try {
        const { status, body } = await daemon.post("test.ping", { n: n++ });
        return status === 503 && { code: body.error.code as string };
      } catch {
        return { code: undefined }; // no longer listening: the 503 window was missed
      }
    },
    { timeoutMs: 10_000, intervalMs: 10 },
  ).catch(() => ({ code: undefined }));
  return refused.code;
}

describe("graceful stop", () => {
  const sink = new Sink();
  beforeAll(async () => {
    await sink.start();
  });
  afterAll(async () => {
    await sink.close();
  });

  it("answers 503 to new events, lets the run in flight finish, checkpoints and exits 0", async () => {
    const project = new TestProject({ fixtures: ["delivery-sink"], config: configWithDrain(10_000) });
    try {
      sink.behaviour = (record) => (record.path === "/recorder" ? { delayMs: 1500 } : {});
      const daemon = await new TestDaemon(project).start({ env: { SINK_URL: sink.url } });
      const { body } = await daemon.post("test.ping", { n: 1 });
      await sink.waitFor((records) => records.some((r) => r.path === "/recorder" && r.body.eventId === body.id));

      const stopped = daemon.stop();
      expect(await postUntilRefused(daemon)).toBe("HOOKD_HTTP_SHUTTING_DOWN");
      expect(await stopped).toBe(0);

      expect(daemon.logs.some((l) => l.msg === "hookd stopped")).toBe(true);
      expect(daemon.logs.some((l) => String(l.msg).startsWith("runs still in flight"))).toBe(false);
      expect(readRuns(project, body.id)).toEqual([
        { plugin: "auditor", status: "done", attempts: 1 },
        { plugin: "recorder", status: "done", attempts: 1 },
      ]);
      // Checkpointed on the way out: the WAL holds nothing.
      const wal = path.join(project.dir, "data/hookd.db-wal");
      expect(!existsSync(wal) || statSync(wal).size === 0).toBe(true);
    } finally {
      project.remove();
    }
  });

  it("gives back the lease of a run that outlasts the budget, which runs again after the next start", async () => {
    const project = new TestProject({ fixtures: ["delivery-sink"], config: configWithDrain(300) });
    try {
      let hang = true;
      sink.behaviour = (record) => (record.path === "/recorder" && hang ? { hang: true } : {});
      const first = await new TestDaemon(project).start({ env: { SINK_URL: sink.url } });
      const { body } = await first.post("test.ping", { n: 2 });
      await sink.waitFor((records) => records.some((r) => r.path === "/recorder" && r.body.eventId === body.id));
      expect(await first.stop()).toBe(0);
      expect(first.logs.find((l) => String(l.msg).startsWith("runs still in flight"))).toMatchObject({ runs: 1 });
      // Back to pending, and the cut-short attempt is not counted.
      expect(readRuns(project, body.id)).toEqual([
        { plugin: "auditor", status: "done", attempts: 1 },
        { plugin: "recorder", status: "pending", attempts: 0 },
      ]);

      hang = false;
      const second = await new TestDaemon(project).start({ env: { SINK_URL: sink.url } });
      await sink.waitFor((records) => records.filter((r) => r.path === "/recorder" && r.body.eventId === body.id).length === 2);
      const again = sink.on("/recorder").filter((r) => r.body.eventId === body.id);
      expect(again.map((r) => r.body.attempt)).toEqual([1, 1]);
      expect(await second.stop()).toBe(0);
      expect(readRuns(project, body.id).find((r) => r.plugin === "recorder")).toEqual({ plugin: "recorder", status: "done", attempts: 1 });
    } finally {
      project.remove();
    }
  });
});
