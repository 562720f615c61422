// The sandbox process watched from the daemon's side: a process whose main thread stops answering
// is killed and restarted, its runs failing as HOOKD_SANDBOX_UNRESPONSIVE; a process that grows
// past sandbox.processMemoryMb is replaced without a gap, naming the plugin with the most heap.
//
// The hang is staged with the worker's test-only hook: HOOKD_TEST_BLOCK_SANDBOX_PLUGIN=blocker in
// the environment the sandbox process is spawned with makes a run of plugin "blocker" busy-loop
// the worker's event loop (sandbox/worker.ts), as host-side code spinning on a hostile input would.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../../core/compile/compile-plugin.ts";
import type { RunOutcome } from "../../core/store/types.ts";
import type { HeartbeatSettings } from "../../sandbox/heartbeat.ts";
import type { PluginSpec, RunRequest } from "../../sandbox/contract/run.ts";
import { testServices } from "../helpers/services.ts";
import { SandboxSupervisor } from "../../sandbox/supervisor.ts";
import { FIXTURES } from "../helpers/daemon.ts";
import { runRequest } from "../helpers/run-request.ts";
import { waitUntil } from "../helpers/wait.ts";

const DIR = path.join(FIXTURES, "plugins", "limits");
const LIMITS = { memoryMb: 64, timeoutMs: 20_000, maxConcurrentRuns: 4 };

async function specOf(name: string): Promise<PluginSpec> {
  const compiled = await compilePlugin(path.join(DIR, `${name}.ts`), { root: FIXTURES });
  return { plugin: name, version: 1, file: `plugins/${name}.ts`, code: compiled.code, sourceMap: compiled.sourceMap, limits: LIMITS };
}

/** The shared waitUntil, with this file's argument order, bound and pace. */
const waitFor = <T>(check: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> => waitUntil(check, { what, timeoutMs, intervalMs: 20 });


describe("sandbox process heartbeat and memory watch", () => {
  const restarts: string[] = [];
  const unresponsive: Array<{ missed: number; runs: number }> = [];
  const memory: Array<{ plugin?: string; rssMb: number }> = [];
  const heartbeat: HeartbeatSettings = { intervalMs: 150, misses: 3, processMemoryMb: 0 };
  let sandbox: SandboxSupervisor;
  let runs = 0;
  const previousHook = process.env.HOOKD_TEST_BLOCK_SANDBOX_PLUGIN;

  beforeAll(async () => {
    // Read by the sandbox process at spawn (SandboxProcess passes this process's environment).
    process.env.HOOKD_TEST_BLOCK_SANDBOX_PLUGIN = "blocker";
    sandbox = new SandboxSupervisor({
      secrets: {},
      services: testServices({ kv: async () => "v" }),
      heartbeat: () => heartbeat,
      onRestart: ({ reason }) => restarts.push(reason),
      onUnresponsive: (info) => unresponsive.push(info),
      onProcessMemory: (info) => memory.push(info),
    });
    await sandbox.start();
    for (const name of ["blocker", "neighbour", "hog", "kv-flood"]) await sandbox.load(await specOf(name));
  }, 60_000);

  afterAll(async () => {
    await sandbox.close();
    if (previousHook === undefined) delete process.env.HOOKD_TEST_BLOCK_SANDBOX_PLUGIN;
    else process.env.HOOKD_TEST_BLOCK_SANDBOX_PLUGIN = previousHook;
  });

  /** The serving process's resident memory, as it reported it in its latest heartbeat answer. */
  function rssMb(): number {
    return (sandbox.processMemory()?.rssBytes ?? 0) / (1024 * 1024);
  }

  function request(plugin: string, event: string): RunRequest {
    runs++;
    return runRequest(plugin, event, { runId: `run-${runs}`, eventId: `e${runs}` });
  }

  it("keeps the sandbox process small under 200,000 un-awaited ctx.kv.get (they wait in the isolate, 64 at a time)", async () => {
    await waitFor(() => (sandbox.processMemory()!.answers > 0 ? true : undefined), "the first heartbeat answer");
    const before = rssMb();
    const outcome = await sandbox.run(request("kv-flood", "attack.kv_flood"));
    expect(outcome.ok || outcome.error.code === "HOOKD_RUN_MEMORY", JSON.stringify(outcome)).toBe(true);
    // A fresh answer, taken after the flood: the process's RSS is what it reports there.
    const answers = sandbox.processMemory()!.answers;
    await waitFor(() => (sandbox.processMemory()!.answers > answers ? true : undefined), "a heartbeat answer after the flood");
    // It used to go from 84 MB to 1.95 GB; the isolate's own heap (64 MB) is most of what is left.
    expect(rssMb() - before).toBeLessThan(300);
  }, 60_000);

  it("kills a process whose event loop stopped answering; its runs fail as HOOKD_SANDBOX_UNRESPONSIVE, and it comes back", async () => {
    expect(await sandbox.run(request("neighbour", "test.ping"))).toMatchObject({ ok: true });
    expect(sandbox.notReadyReason()).toBeUndefined();
    const pidBefore = sandbox.pid;

    const block = request("blocker", "test.block");
    const hung = sandbox.run(block);
    let hungOutcome: RunOutcome | undefined;
    void hung.then((outcome) => (hungOutcome = outcome));
    // Meanwhile: not ready, saying why, and the hung process's run has its lease left alone.
    const reason = await waitFor(() => sandbox.notReadyReason(), "/readyz's reason while the process misses beats");
    expect(reason).toMatch(/not answering: \d of 3 heartbeats of 150 ms missed/);
    expect(hungOutcome === undefined ? sandbox.isStalled(block.runId) : "settled before the check").toBe(true);
    // A neighbour's run sent to the hung process is lost with it, and retried like a crash's.
    const neighbour = sandbox.run(request("neighbour", "test.ping"));

    expect(await hung).toMatchObject({ ok: false, retriable: true, error: { code: "HOOKD_SANDBOX_UNRESPONSIVE" } });
    expect(await neighbour).toMatchObject({ ok: false, retriable: true, error: { code: "HOOKD_SANDBOX_UNRESPONSIVE" } });
    expect(unresponsive[0]).toMatchObject({ missed: 3, runs: 2 });
    await waitFor(() => (restarts.length > 0 && sandbox.running ? true : undefined), "the restart");
    expect(restarts[0]).toMatch(/stopped answering \(3 heartbeats of 150 ms missed\)/);
    expect(sandbox.pid).not.toBe(pidBefore);
    expect(sandbox.notReadyReason()).toBeUndefined();
    expect(await sandbox.run(request("neighbour", "test.ping"))).toMatchObject({ ok: true });
  }, 60_000);

  it("replaces a process grown past sandbox.processMemoryMb and names the plugin holding the most heap", async () => {
    const pid = sandbox.pid!;
    // The ceiling sits above what the process uses now (its own latest report), below what it will.
    heartbeat.processMemoryMb = Math.ceil(rssMb()) + 100;
    // The memory watch takes its baseline from the first answer under a ceiling: wait for it.
    const answers = sandbox.processMemory()!.answers;
    await waitFor(() => (sandbox.processMemory()!.answers > answers ? true : undefined), "a heartbeat answer under the new ceiling");
    const pidsBefore = restarts.length;
    expect(await sandbox.run(request("hog", "test.hog"))).toMatchObject({ ok: true });

    const info = await waitFor(() => memory[0], `the memory watch (ceiling ${heartbeat.processMemoryMb} MB, process at ${rssMb().toFixed(0)} MB)`, 20_000);
    expect(info.plugin).toBe("hog");
    expect(info.rssMb).toBeGreaterThan(heartbeat.processMemoryMb);
    await waitFor(() => (restarts.length > pidsBefore && sandbox.pid !== pid ? true : undefined), "the replacement");
    expect(restarts.at(-1)).toMatch(/^replaced: the sandbox process uses \d+ MB, above sandbox\.processMemoryMb .*plugin hog holds the most heap/);
    heartbeat.processMemoryMb = 0;
    expect(await sandbox.run(request("neighbour", "test.ping"))).toMatchObject({ ok: true });
  }, 60_000);
});
