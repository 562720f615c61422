// The sandbox process from the daemon's side: a real SandboxSupervisor with its worker process,
// driven directly (no HTTP, no store) so that crashes and replacements can be staged exactly.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../../core/compile/compile-plugin.ts";
import type { RunOutcome } from "../../core/store/types.ts";
import type { PluginLogRecord, PluginSpec, RunRequest } from "../../sandbox/contract/run.ts";
import { testServices } from "../helpers/services.ts";
import { SandboxSupervisor } from "../../sandbox/supervisor.ts";
import { FIXTURES, REPO } from "../helpers/daemon.ts";
import { runProcess } from "../helpers/run.ts";
import { runRequest } from "../helpers/run-request.ts";
import { waitUntil } from "../helpers/wait.ts";

const DIR = path.join(FIXTURES, "plugins", "hostile-supervisor");
const LIMITS = { memoryMb: 64, timeoutMs: 10_000, maxConcurrentRuns: 8 };

describe("sandbox supervisor", () => {
  const logs: PluginLogRecord[] = [];
  const restarts: string[] = [];
  /** While set, kv reads of `slow:*` keys wait for it to be released, so a run stays in flight. */
  let slowKv: { entered: number; release: () => void; released: Promise<void> } | undefined;
  const holdSlowKv = () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    slowKv = { entered: 0, release, released };
    return slowKv;
  };
  let sandbox: SandboxSupervisor;
  let runs = 0;

  beforeAll(async () => {
    sandbox = new SandboxSupervisor({
      secrets: {},
      services: testServices({
        log: (record) => logs.push(record),
        kv: async (op, _caller, args) => {
          if (op === "get" && String(args[0]).startsWith("slow:") && slowKv) {
            slowKv.entered++;
            await slowKv.released;
          }
          return op === "list" ? [] : op === "get" ? "kv-value" : undefined;
        },
      }),
      onRestart: ({ reason }) => restarts.push(reason),
    });
    await sandbox.start();
    for (const name of ["patient", "oom-keys"]) await sandbox.load(await specOf(name));
  }, 60_000);

  afterAll(async () => {
    await sandbox.close();
  });

  function run(plugin: string, event: string, n = 0): Promise<RunOutcome> {
    runs++;
    return sandbox.run(runRequest(plugin, event, { payload: { n }, runId: `run-${runs}`, eventId: `event-${runs}` }));
  }

  // Node 24's V8 aborts the whole process on this object; Node 26's recovers the isolate like any
  // other out-of-memory one. The supervisor's replacement path is for the first; on the second
  // the run simply fails with HOOKD_RUN_MEMORY.
  const NODE_MAJOR = Number(process.versions.node.split(".")[0]);
  const abortsOnThisNode = NODE_MAJOR < 26;

  it(`a plain isolated-vm host ${abortsOnThisNode ? "aborts" : "does not abort"} on the one-million-key object (the hazard being contained)`, async () => {
    const code = `
      const ivm = (await import("isolated-vm")).default;
      const context = await new ivm.Isolate({ memoryLimit: 32 }).createContext();
      await context.eval("const o = {}; for (let i = 0; i < 1e6; i++) o['k' + i] = i;", { timeout: 30000 });
      console.log("survived");
    `;
    const { code: exitCode, signal, stdout: output } = await runProcess(process.execPath, ["--no-node-snapshot", "--input-type=module", "-e", code], { cwd: REPO, timeoutMs: 55_000 });
    if (!abortsOnThisNode) {
      // The eval fails (the isolate hit its limit) and the process ends by itself, not by an abort.
      expect(signal).toBeNull();
      expect(exitCode).not.toBe(134);
      return;
    }
    expect(output).not.toContain("survived");
    expect(signal === "SIGABRT" || signal === "SIGTRAP" || exitCode === 134).toBe(true);
  }, 60_000);

  it("replaces a process that lost an isolate, and another plugin's run in flight still finishes", async () => {
    const gate = holdSlowKv();
    const pidBefore = sandbox.pid;
    const patient = run("patient", "test.ping", 1);
    // In flight: it waits in its host call.
    await waitUntil(() => gate.entered === 1, { what: "the patient run's kv call" });
    const lost = await run("oom-keys", "attack.oom_keys");
    expect(lost).toMatchObject({ ok: false, error: { code: "HOOKD_RUN_MEMORY" } });
    gate.release();

    expect(await patient).toMatchObject({ ok: true });
    expect(logs.find((l) => l.msg === "patient handled")).toMatchObject({ fields: { n: 1, value: "kv-value" } });
    if (!abortsOnThisNode) {
      // The isolate was recovered: nothing to replace, and the plugin runs on in the same process.
      expect(sandbox.pid).toBe(pidBefore);
      slowKv = undefined;
      expect(await run("patient", "test.ping", 2)).toMatchObject({ ok: true });
      return;
    }
    expect(lost).toMatchObject({ retriable: false });
    await waitUntil(() => restarts.some((reason) => reason.startsWith("replaced: an isolate of plugin oom-keys")), { timeoutMs: 30_000 });
    expect(sandbox.pid).not.toBe(pidBefore);
    // The old process goes once its runs are done.
    await waitUntil(() => !isAlive(pidBefore!), { timeoutMs: 15_000 });

    slowKv = undefined;
    expect(await run("patient", "test.ping", 2)).toMatchObject({ ok: true });
  }, 60_000);

  it("restarts a process that died, fails its runs in flight with HOOKD_SANDBOX_CRASHED and loads the plugins again", async () => {
    const gate = holdSlowKv();
    const restartsBefore = restarts.length;
    const inFlight = run("patient", "test.ping", 3);
    await waitUntil(() => gate.entered === 1, { what: "the patient run's kv call" });
    process.kill(sandbox.pid!, "SIGKILL");
    expect(await inFlight).toMatchObject({ ok: false, retriable: true, error: { code: "HOOKD_SANDBOX_CRASHED" } });
    // While it is down, runs are refused at once (the dispatcher gives their attempt back).
    expect(await run("patient", "test.ping", 4)).toMatchObject({ ok: false, error: { code: "HOOKD_SANDBOX_UNAVAILABLE" } });

    await waitUntil(() => restarts.length > restartsBefore, { timeoutMs: 30_000 });
    gate.release();
    slowKv = undefined;
    expect(await run("patient", "test.ping", 5)).toMatchObject({ ok: true });
  }, 60_000);
});

async function specOf(name: string): Promise<PluginSpec> {
  const compiled = await compilePlugin(path.join(DIR, `${name}.ts`), { root: FIXTURES });
  return { plugin: name, version: 1, file: `plugins/${name}.ts`, code: compiled.code, sourceMap: compiled.sourceMap, limits: LIMITS };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
