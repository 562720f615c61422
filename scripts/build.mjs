#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm install` in a clone builds): hookd's core/ and sandbox/
// compiled to dist/ with tsc (tsconfig.build.json: JavaScript, .d.ts types, source maps), the
// console's static files copied beside their module, the in-isolate runtime bundled once here
// rather than at every start, and a stamp that test/helpers checks for a stale build.
import { execFileSync } from "node:child_process";
import { cpSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BUILD_STAMP, sourceFingerprint } from "./dist-state.mjs";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const DIST = path.join(REPO, "dist");
const started = performance.now();

// From scratch: a module deleted from the sources must not live on in dist/.
rmSync(DIST, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", path.join(REPO, "tsconfig.build.json")], { stdio: "inherit" });

cpSync(path.join(REPO, "core/console/assets"), path.join(DIST, "core/console/assets"), { recursive: true });

// The same bundling as from the sources (sandbox/runtime/build.ts), from the same bootstrap.ts.
const runtime = await import(pathToFileURL(path.join(DIST, "sandbox/runtime/build.js")).href);
const bundle = await runtime.bundleRuntime(path.join(REPO, "sandbox/runtime/bootstrap.ts"));
writeFileSync(path.join(DIST, "sandbox/runtime", runtime.RUNTIME_BUNDLE), bundle);

writeFileSync(path.join(DIST, BUILD_STAMP), `${JSON.stringify({ sources: sourceFingerprint(REPO), builtAt: new Date().toISOString() }, null, 2)}\n`);
process.stdout.write(`hookd: built dist/ in ${Math.round(performance.now() - started)} ms\n`);
