// Issue 14, round two, in-process: real hostile plugin files (test/fixtures/plugins/limits/) in
// real isolates under an IsolateHost. Codes a plugin cannot forge, ceilings it cannot pass, host
// calls it cannot pile up in the sandbox process, WebAssembly memory it cannot hide off the heap.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../../core/compile/compile-plugin.ts";
import { describeIssues, settingsSchema } from "../../core/config/settings.ts";
import type { RunOutcome } from "../../core/store/types.ts";
import { IsolateHost } from "../../sandbox/isolate-host.ts";
import type { PluginLimits, PluginLogRecord, PluginSpec } from "../../sandbox/contract/run.ts";
import { testServices } from "../helpers/services.ts";
import { FIXTURES } from "../helpers/daemon.ts";
import { runRequest } from "../helpers/run-request.ts";

const DIR = path.join(FIXTURES, "plugins", "limits");
const LIMITS: PluginLimits = { memoryMb: 64, timeoutMs: 5000, maxConcurrentRuns: 4, maxHostCallsInFlight: 64 };

async function specOf(name: string, limits: PluginLimits = LIMITS): Promise<PluginSpec> {
  const compiled = await compilePlugin(path.join(DIR, `${name}.ts`), { root: FIXTURES });
  return { plugin: name, version: 1, file: `plugins/${name}.ts`, code: compiled.code, sourceMap: compiled.sourceMap, limits };
}

describe("containment, round two", () => {
  const logs: PluginLogRecord[] = [];
  let kvInFlight = 0;
  let kvMaxInFlight = 0;
  let kvCalls = 0;
  let host: IsolateHost;
  let runs = 0;

  beforeAll(async () => {
    host = new IsolateHost({
      environmentSecrets: false,
      services: testServices({
        log: (record) => logs.push(record),
        kv: async (op) => {
          kvCalls++;
          kvMaxInFlight = Math.max(kvMaxInFlight, ++kvInFlight);
          // Answered on a later turn, so that calls really overlap on the host.
          await new Promise((resolve) => setImmediate(resolve));
          kvInFlight--;
          return op === "list" ? [] : "v";
        },
      }),
    });
    for (const name of ["forge-aborted", "forge-reply", "kv-flood", "wasm-off", "wasm-memory"]) await host.load(await specOf(name));
  }, 60_000);

  afterAll(async () => {
    await host.close();
  });

  function run(plugin: string, event: string): Promise<RunOutcome> {
    runs++;
    return host.run(runRequest(plugin, event, { runId: `run-${runs}`, eventId: `event-${runs}` }));
  }

  describe("13: codes come from the host", () => {
    it("a thrown HOOKD_RUN_ABORTED is the plugin's own failure, its code kept aside as pluginCode", async () => {
      const outcome = await run("forge-aborted", "attack.forge_aborted");
      expect(outcome).toMatchObject({ ok: false, retriable: true, error: { code: "HOOKD_RUN_FAILED", pluginCode: "HOOKD_RUN_ABORTED" } });
    });

    it("so is a thrown plain object { code: \"HOOKD_RUN_ABORTED\" }", async () => {
      const outcome = await run("forge-aborted", "attack.forge_aborted_object");
      expect(outcome).toMatchObject({ ok: false, retriable: true, error: { code: "HOOKD_RUN_FAILED", pluginCode: "HOOKD_RUN_ABORTED" } });
    });

    it("a host error re-labelled by the plugin keeps the host's code", async () => {
      const outcome = await run("forge-reply", "attack.forge_relabel");
      expect(outcome).toMatchObject({ ok: false, error: { code: "HOOKD_KV_INVALID", pluginCode: "HOOKD_RUN_ABORTED" } });
    });

    it("a toJSON on Object.prototype cannot forge the runtime's reply", async () => {
      const outcome = await run("forge-reply", "attack.forge_tojson");
      expect(outcome).toMatchObject({ ok: false, error: { code: "HOOKD_RUN_FAILED" } });
      expect(outcome.ok === false && outcome.error.message).toContain("dressed as an abort");
    });
  });

  describe("6: host memory outside the isolate's limit", () => {
    it("200,000 un-awaited ctx.kv.get never have more than sandbox.maxHostCallsInFlight on the host", async () => {
      kvMaxInFlight = 0;
      kvCalls = 0;
      const rssBefore = process.memoryUsage.rss();
      const outcome = await run("kv-flood", "attack.kv_flood");
      // The calls wait in the isolate's heap: the run either gets through all of them or meets the
      // isolate's own memory limit. Neither costs the host more than 64 calls at a time.
      if (outcome.ok) expect(kvCalls).toBe(200_000);
      else expect(outcome.error.code).toBe("HOOKD_RUN_MEMORY");
      expect(kvMaxInFlight).toBeLessThanOrEqual(64);
      expect(kvMaxInFlight).toBeGreaterThan(1);
      // Before the bound this took the process up by well over a gigabyte.
      expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(400 * 1024 * 1024);
    }, 60_000);

    it("a fan-out above the limit still completes", async () => {
      kvMaxInFlight = 0;
      expect(await run("kv-flood", "test.parallel")).toMatchObject({ ok: true });
      expect(kvMaxInFlight).toBeLessThanOrEqual(64);
    });

    it("keeps WebAssembly away from a plugin that did not declare wasm: true", async () => {
      const outcome = await run("wasm-off", "attack.wasm_off");
      expect(outcome).toMatchObject({ ok: false, error: { code: "HOOKD_RUN_FAILED" } });
      expect(outcome.ok === false && outcome.error.message).toMatch(/WebAssembly is not defined/);
    });

    it("lets a declared wasm plugin use a bounded memory", async () => {
      // First: the attacks below leave memories alive (held, or not yet collected) in the budget.
      expect(await run("wasm-memory", "test.wasm_small")).toMatchObject({ ok: true });
      expect(logs.find((line) => line.plugin === "wasm-memory" && line.msg === "small memory")?.fields).toEqual({ bytes: 11 * 64 * 1024 });
    });

    it.each([
      ["attack.wasm_big_module", "a module whose binary declares 1 GiB of memory"],
      ["attack.wasm_unbounded_module", "a module whose memory has no maximum"],
      ["attack.wasm_big_memory", "new WebAssembly.Memory of 1 GiB"],
      ["attack.wasm_no_maximum", "new WebAssembly.Memory without a maximum"],
      ["attack.wasm_many_memories", "three memories that together pass memoryMb"],
      ["attack.wasm_constructor", "the unchecked constructor through memory.constructor"],
    ])("%s (%s) fails with HOOKD_RUN_WASM_MEMORY, not retried", async (event) => {
      const outcome = await run("wasm-memory", event);
      expect(outcome).toMatchObject({ ok: false, retriable: false, error: { code: "HOOKD_RUN_WASM_MEMORY" } });
    });

  });

  describe("12: the config's limits are ceilings", () => {
    it.each([
      ["greedy", "memoryMb"],
      ["greedy-emits", "maxEmitsPerRun"],
    ])("%s: a limit above the ceiling fails the load, naming sandbox.ceilings.%s", async (name, limit) => {
      const error = await host.load(await specOf(name)).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message?: string },
      );
      expect(error).toMatchObject({ code: "HOOKD_PLUGIN_LIMIT_ABOVE_CEILING" });
      expect(error?.message).toContain(`sandbox.ceilings.${limit}`);
    });

    it("loads the same plugin under a config whose ceiling allows it, and a plugin that lowers its limits", async () => {
      const manifest = await host.load(await specOf("greedy", { ...LIMITS, ceilings: { memoryMb: 1024 } }));
      expect(manifest.options).toMatchObject({ memoryMb: 1024 });
      await host.unload("greedy", 1);
      await expect(host.load(await specOf("modest"))).resolves.toMatchObject({ options: { memoryMb: 16 } });
      await host.unload("modest", 1);
    });

    it("the config's own value is always within its ceiling; a ceiling below it is a config error naming the key", () => {
      const parsed = settingsSchema.safeParse({ events: {}, sandbox: { memoryMb: 128, ceilings: { memoryMb: 64 } } });
      expect(parsed.success).toBe(false);
      expect(describeIssues(parsed.error!.issues)).toMatch(/^sandbox\.ceilings\.memoryMb: /);
      expect(settingsSchema.safeParse({ events: {}, sandbox: { ceilings: { memoryMB: 64 } } }).success).toBe(false);
      expect(settingsSchema.parse({ events: {} }).sandbox).toMatchObject({ maxHostCallsInFlight: 64, heartbeatMs: 1000, heartbeatMisses: 10, processMemoryMb: 2048 });
    });
  });
});
