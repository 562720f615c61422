// Scratch: profile one end-to-end load of the real daemon (every process's main thread).
import { mkdirSync, rmSync } from "node:fs";
import { startHookd, measureCompletion } from "./lib/hookd.ts";
import { profilingEnv, readProfiles } from "./lib/profile.ts";
const dir = "/tmp/p2";
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const hookd = await startHookd({ plugins: 1, env: profilingEnv(dir) });
await measureCompletion(hookd, { connections: 32, durationSec: 1 });
const run = await measureCompletion(hookd, { connections: 32, durationSec: 4 });
console.log("rate", Math.round(run.completionRate));
await hookd.stop();
console.log(readProfiles(dir).map((p) => p.file).join("\n"));
