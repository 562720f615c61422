// Isolate start-up and idle heap with the in-isolate runtime, for one or more runtime bundles,
// measured interleaved in one process (so that machine noise hits them alike):
//   node bench/isolate-startup.mjs dist/sandbox/runtime/bootstrap.bundle.js [other.bundle.js ...]
// Each sample: create an isolate and a context, evaluate the runtime, install it (no plugin).
import ivm from "isolated-vm";
import { readFileSync } from "node:fs";

const MARKER = "\n//# hookd-lazy-url\n";
const files = process.argv.slice(2);
const bundles = files.map((file) => readFileSync(file, "utf8").split(MARKER));
const ROUNDS = Number(process.env.ROUNDS ?? 200);
const times = files.map(() => []);
const heaps = files.map(() => []);

async function sample(i) {
  const [boot, lazy = ""] = bundles[i];
  const started = performance.now();
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  const context = await isolate.createContext();
  const sync = new ivm.Reference((op) => (op === "url" ? lazy : ""));
  await context.evalClosure(`${boot}\nconst d = __hookdRuntime.install($0, $1, $2); return 1;`, [new ivm.Reference(() => undefined), 64, sync], { result: { copy: true } });
  times[i].push(performance.now() - started);
  heaps[i].push((await isolate.getHeapStatistics()).used_heap_size);
  isolate.dispose();
}

for (let round = 0; round < ROUNDS; round++) for (let i = 0; i < files.length; i++) await sample(i);
const median = (list) => list.slice(10).sort((a, b) => a - b)[Math.floor((list.length - 10) / 2)];
for (let i = 0; i < files.length; i++) {
  console.log(JSON.stringify({ file: files[i], runtimeChars: bundles[i][0].length, startMedianMs: +median(times[i]).toFixed(2), idleHeapKiB: Math.round(median(heaps[i]) / 1024) }));
}
