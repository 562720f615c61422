/**
 * The web platform's price (issue 20), measured beside its baselines in the same run:
 *
 * 1. Start-up: an isolated-vm isolate with a context, bare, against the same with hookd's
 *    runtime evaluated and installed the way sandbox/plugin-isolate.ts does it (one script
 *    compiled per process, then from V8's code cache). Interleaved rounds. Target <= 1.3x.
 * 2. Idle memory of a plugin: the isolate's heap in use (and V8's total, reserved pages included,
 *    for the bare isolate too) after the runtime is installed,
 *    and the same after a plugin touched Request/Response (the lazily evaluated part: URL, Blob,
 *    FormData, streams). Target <= 1.5 MB for an idle plugin.
 * 3. crypto.subtle.digest("SHA-256") of 1 KB: calls/s inside a real plugin isolate (through the
 *    host-call path), one call awaited after the other, against Node's own Web Crypto doing the
 *    same in this process. Reported, no target.
 *
 *   node --no-node-snapshot --import tsx bench/web.bench.ts [--quick]
 */
import ivm from "isolated-vm";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { compilePlugin } from "../core/compile/compile-plugin.ts";
import { testServices } from "../test/helpers/services.ts";
import { IsolateHost } from "../sandbox/isolate-host.ts";
import { runtimeBootstrapCode } from "../sandbox/runtime/build.ts";
import { LAZY_URL_MARKER } from "../sandbox/runtime/marker.ts";
import type { RunRequest } from "../sandbox/contract/run.ts";
import { figure, ratio, round, type Figure } from "./lib/stats.ts";

const TARGET_STARTUP_RATIO = 1.3;
const TARGET_IDLE_MB = 1.5;

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const rounds = opts.quick ? 60 : 300;
  const bundle = await runtimeBootstrapCode();
  const at = bundle.indexOf(LAZY_URL_MARKER);
  const runtime = bundle.slice(0, at);
  const lazy = bundle.slice(at + LAZY_URL_MARKER.length);
  const source = `(function () {\n${runtime}\nreturn (h, m, s) => { __hookdRuntime.install(h, m, s); return {}; };\n})()`;
  let cache: ivm.ExternalCopy<ArrayBuffer> | undefined;

  const bare: number[] = [];
  const withRuntime: number[] = [];
  const idleUsed: number[] = [];
  const idleTotal: number[] = [];
  const bareUsed: number[] = [];
  const bareTotal: number[] = [];
  const touchedUsed: number[] = [];
  for (let i = 0; i < rounds + 5; i++) {
    {
      const started = performance.now();
      const isolate = new ivm.Isolate({ memoryLimit: 64 });
      const context = await isolate.createContext();
      const elapsed = performance.now() - started;
      if (i >= 5) bare.push(elapsed);
      if (i >= 5 && i % 10 === 0) {
        const stats = await isolate.getHeapStatistics();
        bareUsed.push(stats.used_heap_size);
        bareTotal.push(stats.total_heap_size);
      }
      context.release();
      isolate.dispose();
    }
    {
      const started = performance.now();
      const isolate = new ivm.Isolate({ memoryLimit: 64 });
      const context = await isolate.createContext();
      const script = (await isolate.compileScript(source, cache ? { cachedData: cache } : { produceCachedData: true })) as ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer> };
      cache ??= script.cachedData;
      const install = await script.run(context, { reference: true });
      const refs = [new ivm.Reference(async () => '{"ok":true,"value":null}'), 64, new ivm.Reference((op: string) => (op === "url" ? lazy : ""))];
      await (install as ivm.Reference).apply(undefined, refs, { result: { reference: true } });
      const elapsed = performance.now() - started;
      if (i >= 5) withRuntime.push(elapsed);
      if (i >= 5 && i % 10 === 0) {
        const stats = await isolate.getHeapStatistics();
        idleUsed.push(stats.used_heap_size);
        idleTotal.push(stats.total_heap_size);
        // A plugin that uses Request/Response/Blob: the lazily evaluated part is in its heap too.
        await context.eval(`void [typeof Response, new Blob(["x"]).size, new URL("https://a.example/").href]`);
        touchedUsed.push((await isolate.getHeapStatistics()).used_heap_size);
      }
      context.release();
      isolate.dispose();
    }
  }
  const mb = (list: number[]) => list.map((bytes) => bytes / 1024 / 1024);
  const startup = { bare: figure(bare, "ms"), withRuntime: figure(withRuntime, "ms") };
  const memory = {
    bareIsolateUsedMb: figure(mb(bareUsed), "MB"),
    bareIsolateTotalMb: figure(mb(bareTotal), "MB"),
    idlePluginUsedMb: figure(mb(idleUsed), "MB"),
    idlePluginTotalMb: figure(mb(idleTotal), "MB"),
    afterFetchClassesUsedMb: figure(mb(touchedUsed), "MB"),
  };

  const digest = await digestRates(opts.quick);
  const startupRatio = ratio(startup.withRuntime, startup.bare, "with runtime / bare isolate");
  const result = {
    settings: { rounds, runtimeChars: runtime.length, lazyChars: lazy.length },
    startupMs: startup,
    memory,
    digest,
    ratios: { startupWithRuntimeVsBare: startupRatio, digestIsolateVsNode: ratio(digest.isolate, digest.node, "isolate / Node") },
    targets: {
      startup: { target: `<= ${TARGET_STARTUP_RATIO} x bare`, holds: startupRatio === undefined ? null : startupRatio.ratio <= TARGET_STARTUP_RATIO },
      // The heap in use; V8's total (reserved pages) is reported beside it, bare and with the runtime.
      idleMemory: { target: `<= ${TARGET_IDLE_MB} MB used heap`, holds: memory.idlePluginUsedMb.median <= TARGET_IDLE_MB },
    },
  };
  return result;
}

/** SHA-256 of 1 KB, one awaited call after another: in a plugin isolate, and in Node. */
async function digestRates(quick: boolean): Promise<{ isolate: Figure; node: Figure; callsPerRound: number }> {
  const calls = quick ? 1000 : 5000;
  const dir = mkdtempSync(path.join(tmpdir(), "hookd-bench-web-"));
  const stored = new Map<string, unknown>();
  const host = new IsolateHost({
    environmentSecrets: false,
    services: testServices({
      kv: async (op, _caller, args) => {
        if (op === "set") stored.set(String(args[0]), args[1]);
        return null;
      },
    }),
  });
  try {
    const file = path.join(dir, "digest.ts");
    writeFileSync(
      file,
      `import { action } from "hookd";
action("digest", async (input, ctx) => {
  const { calls } = input as { calls: number };
  const data = new Uint8Array(1024).map((_, i) => i);
  const started = performance.now();
  for (let i = 0; i < calls; i++) await crypto.subtle.digest("SHA-256", data);
  await ctx.kv.set("ms", performance.now() - started);
});`,
    );
    const compiled = await compilePlugin(file, { root: dir });
    await host.load({ plugin: "digest", version: 1, file: "plugins/digest.ts", code: compiled.code, sourceMap: compiled.sourceMap, limits: { memoryMb: 64, timeoutMs: 60_000, maxConcurrentRuns: 1, maxHostCallsInFlight: 64 } });
    const isolateRates: number[] = [];
    const nodeRates: number[] = [];
    const data = new Uint8Array(1024).map((_, i) => i);
    for (let roundNo = 0; roundNo < (quick ? 5 : 9); roundNo++) {
      const runId = `digest-${roundNo}`;
      const outcome = await host.run({ runId, plugin: "digest", version: 1, kind: "action", name: "digest", payload: { calls }, meta: { eventId: runId, eventName: "digest", receivedAt: Date.now(), attempt: 1, depth: 0 } } as RunRequest);
      if (!outcome.ok) throw new Error(`digest run failed: ${JSON.stringify(outcome)}`);
      isolateRates.push(calls / ((stored.get("ms") as number) / 1000));
      const started = performance.now();
      for (let i = 0; i < calls; i++) await crypto.subtle.digest("SHA-256", data);
      nodeRates.push(calls / ((performance.now() - started) / 1000));
    }
    return { isolate: figure(isolateRates.slice(1), "calls/s"), node: figure(nodeRates.slice(1), "calls/s"), callsPerRound: calls };
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = (await run({ quick: process.argv.includes("--quick") })) as Record<string, Record<string, Figure | { ratio: number } | undefined>>;
  console.log(JSON.stringify(result, null, 2));
  const f = (x: unknown) => round((x as Figure).median, 3);
  console.log(`start-up: bare ${f(result.startupMs!.bare)} ms, with runtime ${f(result.startupMs!.withRuntime)} ms`);
}
