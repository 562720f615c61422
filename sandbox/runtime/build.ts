/**
 * The in-isolate runtime as one script; every plugin isolate evaluates it. The compiled build
 * bundles it once, at build time (scripts/build.mjs writes bootstrap.bundle.js beside this file),
 * so a running hookd reads a file instead of starting esbuild; from the sources it is bundled
 * once per process.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { COMPILED, ownFile } from "../contract/locate.ts";
import { LAZY_URL_MARKER } from "./marker.ts";

/** The prebuilt bundle's name beside this file in dist/. */
export const RUNTIME_BUNDLE = "bootstrap.bundle.js";

let built: Promise<string> | undefined;

export function runtimeBootstrapCode(): Promise<string> {
  built ??= COMPILED ? readFile(new URL(`./${RUNTIME_BUNDLE}`, import.meta.url), "utf8") : bundleRuntime(ownFile(import.meta.url, "./bootstrap.ts"));
  return built;
}


/**
 * Bundles the runtime from its entry file (bootstrap.ts), followed by the marker and the URL
 * bundle (url.ts beside it), which the host keeps apart and hands over on first use.
 */
export async function bundleRuntime(entry: string): Promise<string> {
  // Loaded only here: the compiled sandbox process never needs esbuild.
  const esbuild = await import("esbuild");
  const url = await esbuild.build({
    entryPoints: [path.join(path.dirname(entry), "url.ts")],
    bundle: true,
    write: false,
    format: "iife",
    globalName: "__hookdUrl",
    platform: "neutral",
    mainFields: ["module", "main"],
    target: "es2022",
    minify: true,
    legalComments: "none",
    banner: { js: '"use strict";' },
    plugins: [isolateStandIns],
    logLevel: "silent",
  });
  const runtime = await esbuild
    .build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: "iife",
      globalName: "__hookdRuntime",
      platform: "neutral",
      target: "es2022",
      // Strict code: `fn.caller` and `fn.arguments` of the runtime's functions stay closed to plugins.
      banner: { js: '"use strict";' },
      logLevel: "silent",
    })
    .then((result) => result.outputFiles[0]!.text);
  return `${runtime}${LAZY_URL_MARKER}${url.outputFiles[0]!.text}`;
}

/**
 * fetch-blob loads a Node stream module for itself (streams.cjs: `require("node:stream/web")`)
 * and its from.js reads files with node:fs; inside an isolate the streams come from
 * web-streams-polyfill (fetch-packages.ts) and there are no files, so the first is left out and
 * node-fetch's multipart parser gets fetch-blob's plain File instead of the file reader.
 */
const isolateStandIns = {
  name: "hookd-isolate-stand-ins",
  setup(build: { onResolve(options: { filter: RegExp }, callback: (args: { path: string; importer: string; resolveDir: string }) => unknown): void; onLoad(options: { filter: RegExp; namespace: string }, callback: () => unknown): void }) {
    build.onResolve({ filter: /streams\.cjs$/ }, (args) => (args.importer.includes(`${path.sep}fetch-blob${path.sep}`) ? { path: "fetch-blob-streams", namespace: "hookd-empty" } : undefined));
    build.onResolve({ filter: /^fetch-blob\/from\.js$/ }, (args) => ({ path: createRequire(args.importer).resolve("fetch-blob/file.js") }));
    build.onLoad({ filter: /.*/, namespace: "hookd-empty" }, () => ({ contents: "", loader: "js" }));
  },
};
