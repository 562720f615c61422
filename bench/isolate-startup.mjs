// Isolate start-up and idle heap with the in-isolate runtime, for one or more runtime bundles,
// measured interleaved in one process (so that machine noise hits them alike):
//   node bench/isolate-startup.mjs [closure:|cached:]bundle.js ...
// e.g. node bench/isolate-startup.mjs closure:/tmp/old.bundle.js cached:dist/sandbox/runtime/bootstrap.bundle.js
// Each sample: create an isolate and a context, evaluate the runtime, install it (no plugin).
// `closure:` evaluates it as hookd did before issue 20 (evalClosure, compiled every time);
// `cached:` as sandbox/plugin-isolate.ts does now (a script compiled from V8's code cache).
import ivm from "isolated-vm";
import { readFileSync } from "node:fs";

const MARKER = "\n//# hookd-lazy-url\n";
const specs = process.argv.slice(2).map((arg) => {
  const [, mode = "cached", file] = /^(?:(closure|cached):)?(.*)$/.exec(arg);
  return { arg, mode, boot: readFileSync(file, "utf8").split(MARKER)[0], cache: undefined, times: [], heaps: [] };
});
const ROUNDS = Number(process.env.ROUNDS ?? 200);

async function sample(spec) {
  const started = performance.now();
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  const context = await isolate.createContext();
  const refs = [new ivm.Reference(() => undefined), 64, new ivm.Reference(() => "")];
  if (spec.mode === "closure") {
    await context.evalClosure(`${spec.boot}\n__hookdRuntime.install($0, $1, $2); return 1;`, refs, { result: { copy: true } });
  } else {
    const source = `(function () {\n${spec.boot}\nreturn (h, m, s) => { __hookdRuntime.install(h, m, s); return {}; };\n})()`;
    const script = await isolate.compileScript(source, spec.cache ? { cachedData: spec.cache } : { produceCachedData: true });
    spec.cache ??= script.cachedData;
    const install = await script.run(context, { reference: true });
    await install.apply(undefined, refs, { result: { reference: true } });
  }
  spec.times.push(performance.now() - started);
  spec.heaps.push((await isolate.getHeapStatistics()).used_heap_size);
  isolate.dispose();
}

for (let round = 0; round < ROUNDS; round++) for (const spec of specs) await sample(spec);
const median = (list) => list.slice(10).sort((a, b) => a - b)[Math.floor((list.length - 10) / 2)];
for (const spec of specs) {
  console.log(JSON.stringify({ bundle: spec.arg, runtimeChars: spec.boot.length, startMedianMs: +median(spec.times).toFixed(2), idleHeapKiB: Math.round(median(spec.heaps) / 1024) }));
}
