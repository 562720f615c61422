// Leases of runs held by a hung sandbox process: the dispatcher's lease sweep renews the leases
// of live runs, except those the sandbox says are held by a process missing its heartbeats
// (Sandbox.isStalled), so such a run's delivery is freed when its lease runs out even if the
// process is never declared hung. A real store and dispatcher; the sandbox is scripted.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { Dispatcher } from "../../core/delivery/dispatcher.ts";
import { createLogger } from "../../core/base/log.ts";
import type { PluginManager } from "../../core/plugins/manager.ts";
import { SqliteStore } from "../../core/store/sqlite.ts";
import type { RunOutcome } from "../../core/store/types.ts";
import type { RunRequest } from "../../sandbox/contract/run.ts";
import type { Sandbox } from "../../sandbox/contract/sandbox.ts";
import { waitUntil } from "../helpers/wait.ts";

let dir: string;
let store: SqliteStore;
let dispatcher: Dispatcher | undefined;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "hookd-stalled-"));
  store = new SqliteStore({ file: path.join(dir, "hookd.db") });
});
afterEach(async () => {
  await dispatcher?.stop(0);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

it("does not renew the lease of a run held by a sandbox process that misses its heartbeats", async () => {
  const requests = new Map<string, RunRequest>();
  const finish: Array<(outcome: RunOutcome) => void> = [];
  const stalledEvents = new Set<string>();
  const sandbox: Sandbox = {
    start: async () => undefined,
    status: () => ({ mode: "inline", running: true, restarts: 0 }),
    load: async () => {
      throw new Error("not used");
    },
    unload: async () => undefined,
    run: (request) => {
      requests.set(request.runId, request);
      return new Promise((resolve) => finish.push(resolve));
    },
    heapUsage: async () => [],
    close: async () => undefined,
    isStalled: (runId) => stalledEvents.has(requests.get(runId)?.meta.eventId ?? ""),
  };
  const renewed: number[] = [];
  const renewLease = store.renewLease.bind(store);
  store.renewLease = (id, token, until) => (renewed.push(id), renewLease(id, token, until));
  const plugins = { claimKeys: () => ["a"], currentVersion: () => 1, actionOwner: () => undefined } as unknown as PluginManager;
  dispatcher = new Dispatcher({
    store,
    sandbox,
    plugins,
    delivery: () => ({ maxAttempts: 3, backoffMs: 10, maxBackoffMs: 10, concurrency: 8, maxEmitDepth: 8, maxDescendants: 1000, orderBy: {}, drainMs: 0, retention: { doneMs: 0, deadMs: 0 } }),
    leaseMs: () => 60_000,
    logger: createLogger({ level: "silent" }),
  });
  dispatcher.start();
  for (const id of ["hung", "fine"]) {
    await store.acceptEvent({ id, name: `test.${id}`, payload: {}, receivedAt: Date.now(), source: "http", depth: 0 }, [{ kind: "handler", plugin: "a", target: `test.${id}`, maxAttempts: 3 }]);
  }
  stalledEvents.add("hung");
  dispatcher.wake();

  // The sweep runs every few seconds (real time): wait for one that renewed the healthy run.
  await waitUntil(() => requests.size >= 2 && [...requests.values()].some((r) => r.meta.eventId === "fine" && renewed.includes(Number(r.runId))), {
    timeoutMs: 15_000,
    intervalMs: 50,
    what: () => `a lease sweep renewing the healthy run (runs started: ${requests.size}, renewed: ${renewed.join(",")})`,
  });
  const hung = [...requests.values()].find((r) => r.meta.eventId === "hung")!;
  expect(renewed).not.toContain(Number(hung.runId));
  for (const resolve of finish) resolve({ ok: true, durationMs: 1 });
}, 30_000);
