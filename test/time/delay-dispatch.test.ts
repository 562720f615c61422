// The dispatcher wakes for a delayed event at its due time, from a timer set from the store's
// due-time query, rather than finding it at the next lease sweep (5 s) or by polling: on the
// real clock, a real SQLite store and a sandbox that records when each run started.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Settings } from "../../core/config/settings.ts";
import { Dispatcher } from "../../core/delivery/dispatcher.ts";
import { createLogger } from "../../core/base/log.ts";
import type { PluginManager } from "../../core/plugins/manager.ts";
import { SqliteStore } from "../../core/store/sqlite.ts";
import type { RunOutcome } from "../../core/store/types.ts";
import type { RunRequest } from "../../sandbox/contract/run.ts";
import type { Sandbox } from "../../sandbox/contract/sandbox.ts";
import { StubSandbox } from "../helpers/sandboxes.ts";
import { waitUntil } from "../helpers/wait.ts";

const delivery: Settings["delivery"] = {
  maxAttempts: 3,
  backoffMs: 1000,
  maxBackoffMs: 3000,
  concurrency: 4,
  maxEmitDepth: 8,
  maxDescendants: 1000,
  orderBy: {},
  drainMs: 1000,
  retention: { doneMs: 0, deadMs: 0 },
};

class RecordingSandbox extends StubSandbox {
  readonly started: Array<{ eventId: string; at: number }> = [];
  async run(request: RunRequest): Promise<RunOutcome> {
    this.started.push({ eventId: request.meta.eventId, at: Date.now() });
    return { ok: true, durationMs: 1 };
  }
}

const plugins = { claimKeys: () => ["a"], currentVersion: () => 1, actionOwner: () => undefined } as unknown as PluginManager;

let dir: string;
let store: SqliteStore;
let dispatcher: Dispatcher;
let sandbox: RecordingSandbox;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "hookd-delay-"));
  store = new SqliteStore({ file: path.join(dir, "hookd.db") });
  sandbox = new RecordingSandbox();
  dispatcher = new Dispatcher({ store, sandbox, plugins, delivery: () => delivery, leaseMs: () => 60_000, logger: createLogger({ level: "silent" }) });
});
afterEach(async () => {
  await dispatcher.stop(0);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function acceptDelayed(id: string, deliverAt: number): Promise<void> {
  await store.acceptEvent({ id, name: "deal.close", payload: {}, receivedAt: Date.now(), source: "http", depth: 0, deliverAt }, [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3 }]);
}

describe("delayed deliveries in the dispatcher", () => {
  it("runs each delayed event once, not before its time and well before the next lease sweep", async () => {
    dispatcher.start();
    const now = Date.now();
    const due = { late: now + 1500, soon: now + 600 };
    // Accepted while the dispatcher idles: each accept asks for a timer (as the daemon does).
    await acceptDelayed("late", due.late);
    dispatcher.wakeAtTime(due.late);
    dispatcher.wake();
    await acceptDelayed("soon", due.soon);
    dispatcher.wakeAtTime(due.soon);
    dispatcher.wake();
    await waitUntil(() => sandbox.started.length === 2, { timeoutMs: 20_000, what: `both delayed runs (started: ${JSON.stringify(sandbox.started)})` });
    const byId = Object.fromEntries(sandbox.started.map((s) => [s.eventId, s.at]));
    expect(sandbox.started.map((s) => s.eventId)).toEqual(["soon", "late"]);
    for (const id of ["soon", "late"] as const) {
      expect(byId[id]!).toBeGreaterThanOrEqual(due[id]);
      // The sweep every 5 s would find it too, but only up to 5 s late.
      expect(byId[id]! - due[id], id).toBeLessThan(1500);
    }
    await waitUntil(async () => (await store.countByStatus()).done === 2, { what: "both runs recorded done" });
  });

  it("finds delayed events stored before it started (a restart) and sets its timer from the store", async () => {
    const deliverAt = Date.now() + 700;
    await acceptDelayed("stored-before", deliverAt);
    dispatcher.start();
    await waitUntil(() => sandbox.started.length === 1, { timeoutMs: 20_000, what: "the delayed run" });
    expect(sandbox.started[0]!.at).toBeGreaterThanOrEqual(deliverAt);
    expect(sandbox.started[0]!.at - deliverAt).toBeLessThan(1500);
  });
});
