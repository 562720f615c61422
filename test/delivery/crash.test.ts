// The delivery promise under SIGKILL: a client posts events concurrently while the real daemon is
// killed at random moments, 20 times over. Every event answered 202 must reach both plugins at
// least once (they report to a sink on 127.0.0.1), and the database must stay intact.
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { pause, waitUntil } from "../helpers/wait.ts";
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

  // Generous bounds: on a loaded machine (npm test beside other work) the last daemon needs far
  // longer to work off what 20 crashes left; the test waits on that state, not on a time.
  it(`handles every accepted event at least once across ${KILLS} SIGKILLs`, { timeout: 900_000 }, async () => {
    const accepted = new Set<string>();
    let n = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const daemon = await new TestDaemon(project).start({ env: { SINK_URL: sink.url, HOOKD_LOG_LEVEL: "info" }, timeoutMs: 120_000 });
      const acceptedBefore = accepted.size;
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
      // A random moment once this daemon has work: while requests commit, runs are claimed,
      // leases renewed, results written. (The randomness is the point; the wait for a first 202
      // keeps a slow start from turning the kill into a kill before any work.)
      await waitUntil(() => accepted.size > acceptedBefore, { timeoutMs: 120_000, what: "a first accepted event of this round" });
      await pause(Math.random() * 500);
      await daemon.kill();
      posting = false;
      await Promise.all(posters);
    }

    const last = await new TestDaemon(project).start({ env: { SINK_URL: sink.url, HOOKD_LOG_LEVEL: "info" }, timeoutMs: 120_000 });
    const handled = (plugin: string) => new Set(sink.on(`/${plugin}`).map((r) => r.body.eventId as string));
    const missingOf = (plugin: string) => {
      const seen = handled(plugin);
      return [...accepted].filter((id) => !seen.has(id));
    };
    const runsWith = async (status: string) => ((await last.getJson(`/api/runs?status=${status}&limit=1000`)) as { runs: Array<{ eventId: string; plugin: string; lastError: { code: string } | null }> }).runs;
    // The state the assertions need: every delivery settled (done or dead), those of events
    // stored but never answered and of runs cut short included. A run reports to the sink before
    // it can be done, so by then the sink holds everything the daemon handled.
    let gaveUp = "";
    await waitUntil(
      async () => {
        const [pending, running] = await Promise.all([runsWith("pending"), runsWith("running")]);
        return pending.length === 0 && running.length === 0;
      },
      {
        timeoutMs: 600_000,
        intervalMs: 250,
        what: async () => {
          const [pending, running, dead] = await Promise.all([runsWith("pending"), runsWith("running"), runsWith("dead")]);
          return (
            `every accepted event handled and every delivery settled: ${PLUGINS.map((p) => `${p} misses ${missingOf(p).length} of ${accepted.size}`).join(", ")}; ` +
            `pending ${pending.length}, running ${running.length}, dead ${dead.length} (codes ${JSON.stringify([...new Set(dead.map((r) => r.lastError?.code))])})`
          );
        },
      },
    ).catch((error: unknown) => {
      // The assertions below say which events are missing; this says what was left when it gave up.
      gaveUp = ` (${String(error)})`;
    });
    expect(await last.stop()).toBe(0);

    for (const plugin of PLUGINS) {
      const missing = missingOf(plugin);
      expect(missing, `${plugin} never handled ${missing.length} accepted events${gaveUp}`).toEqual([]);
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
