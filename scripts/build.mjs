#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm install` in a clone builds): hookd's core/ and sandbox/
// compiled to dist/ with tsc (tsconfig.build.json: JavaScript and .d.ts types), the console's
// static files copied beside their module, the in-isolate runtime bundled once here rather than
// at every start, the npm packages the daemon loads bundled into shared chunks, and a stamp that
// test/helpers checks for a stale build.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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

await bundlePackages();

writeFileSync(path.join(DIST, BUILD_STAMP), `${JSON.stringify({ sources: sourceFingerprint(REPO), builtAt: new Date().toISOString() }, null, 2)}\n`);
/**
 * A start loads some 800 files of npm packages (fastify, zod, ajv, prom-client, ...), and finding,
 * reading and compiling each one separately costs about twice what one file of the same code
 * does. So every module of dist/ is rewritten in place with the packages it imports bundled into
 * chunks shared by all of them (dist/chunks/, one copy of each package, so one zod). hookd's own
 * modules stay where they are, each in its file: they find their neighbours (the sandbox worker,
 * the writer thread, the shim, the console's assets) relative to import.meta.url.
 * Left to Node: native modules, esbuild (it starts its own binary), typescript (loaded only by
 * `hookd check`), pg (only for a PostgreSQL store), and pino with pino-pretty (worker threads
 * that load files by path). A plugin's own zod still comes from node_modules/zod.
 */
async function bundlePackages() {
  const esbuild = await import("esbuild");
  // Not the code that runs inside isolates (the shim plugins are bundled with, the runtime): it
  // has no Node, and esbuild bundles it again for each plugin.
  const isolateCode = new Set(["shim.js", "bootstrap.js", "web.js", "url.js", "fetch-api.js", "fetch-packages.js", runtime.RUNTIME_BUNDLE].map((name) => path.join(DIST, "sandbox/runtime", name)));
  // Only what tsc emitted (a module with its .d.ts): not the console's browser script.
  const entries = listJs(DIST).filter((file) => existsSync(file.replace(/\.js$/, ".d.ts")) && !isolateCode.has(file));
  await esbuild.build({
    entryPoints: entries,
    outdir: DIST,
    outbase: DIST,
    allowOverwrite: true,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node24",
    chunkNames: "chunks/[name]-[hash]",
    external: ["better-sqlite3", "isolated-vm", "esbuild", "typescript", "pg", "pino", "pino-pretty", "tsx"],
    // CommonJS packages in an ES module still call require() for Node's built-ins.
    banner: { js: 'import { createRequire as __hookdCreateRequire } from "node:module";\nconst require = __hookdCreateRequire(import.meta.url);' },
    plugins: [
      {
        name: "hookd-own-modules",
        setup(build) {
          // An import between hookd's own modules stays an import of that file.
          build.onResolve({ filter: /^\.\.?\// }, (args) => (args.importer.startsWith(DIST + path.sep) && !args.importer.includes(`${path.sep}node_modules${path.sep}`) ? { path: args.path, external: true } : undefined));
        },
      },
    ],
    logLevel: "warning",
  });
}

function listJs(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return listJs(full);
    return entry.name.endsWith(".js") ? [full] : [];
  });
}

process.stdout.write(`hookd: built dist/ in ${Math.round(performance.now() - started)} ms\n`);
