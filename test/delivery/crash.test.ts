// The delivery promise under SIGKILL: a client posts events concurrently while the real daemon is
// killed at random moments, 20 times over. Every event answered 202 must reach both plugins at
// least once (they report to a sink on 127.0.0.1), and the database must stay intact.
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { Sink } from "./sink.ts";

const KILLS = 20;
const POSTERS = 4;
const PLUGINS = ["recorder", "auditor"];

describe("crash safety", () => {
  const sink = new Sink();
  // Enough attempts that a run cut short by several kills is not dead-lettered for it.
  const project = new TestProject({
    fixtures: ["delivery-sink"],
    config: DEFAULT_CONFIG.replace("maxAttempts: 3", "maxAttempts: 10"),
  });

  beforeAll(async () => {
    await sink.start();
  });
  afterAll(async () => {
    await sink.close();
    project.remove();
  });

  it(`handles every accepted event at least once across ${KILLS} SIGKILLs`, { timeout: 120_000 }, async () => {
    const accepted = new Set<string>();
    let n = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const daemon = await new TestDaemon(project).start({ env: { SINK_URL: sink.url, HOOKD_LOG_LEVEL: "info" } });
      let posting = true;
      const posters = Array.from({ length: POSTERS }, async () => {
        while (posting) {
          try {
            const { status, body } = await daemon.post("test.ping", { n: n++ });
            if (status === 202) accepted.add(body.id as string);
          } catch {
            // The daemon died under this request: it was never acknowledged.
          }
        }
      });
      // A random moment: while requests commit, runs are claimed, leases renewed, results written.
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 500));
      await daemon.kill();
      posting = false;
      await Promise.all(posters);
    }

    const last = await new TestDaemon(project).start({ env: { SINK_URL: sink.url, HOOKD_LOG_LEVEL: "info" } });
    const handled = (plugin: string) => new Set(sink.on(`/${plugin}`).map((r) => r.body.eventId as string));
    await sink
      .waitFor(() => PLUGINS.every((plugin) => [...accepted].every((id) => handled(plugin).has(id))), 30_000)
      .catch(() => undefined); // the assertions below say what is missing
    // Then the rest: events stored but never answered, and runs cut short, run too.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const [pending, running] = await Promise.all(["pending", "running"].map(async (status) => (await last.getJson(`/api/runs?status=${status}&limit=1`)).runs.length));
      if (pending === 0 && running === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await last.stop()).toBe(0);

    for (const plugin of PLUGINS) {
      const missing = [...accepted].filter((id) => !handled(plugin).has(id));
      expect(missing, `${plugin} never handled ${missing.length} accepted events`).toEqual([]);
    }
    const db = new Database(path.join(project.dir, "data/hookd.db"), { readonly: true });
    let statuses: Record<string, number>;
    try {
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
      statuses = Object.fromEntries(
        (db.prepare("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status").all() as Array<{ status: string; n: number }>).map((r) => [r.status, r.n]),
      );
    } finally {
      db.close();
    }
    expect(statuses.pending ?? 0).toBe(0);
    expect(statuses.running ?? 0).toBe(0);

    const twice = PLUGINS.map((plugin) => {
      const counts = new Map<string, number>();
      for (const record of sink.on(`/${plugin}`)) counts.set(record.body.eventId, (counts.get(record.body.eventId) ?? 0) + 1);
      return `${plugin} ${[...counts.values()].filter((c) => c > 1).length}`;
    });
    console.log(
      `crash test: ${KILLS} SIGKILLs, ${accepted.size} events accepted (202), all handled at least once; ` +
        `handled more than once: ${twice.join(", ")}; deliveries by status ${JSON.stringify(statuses)}`,
    );
  });
});
