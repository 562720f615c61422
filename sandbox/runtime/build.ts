/** Bundles the in-isolate runtime once per process; every plugin isolate evaluates the result. */
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

let built: Promise<string> | undefined;

export function runtimeBootstrapCode(): Promise<string> {
  built ??= esbuild
    .build({
      entryPoints: [fileURLToPath(new URL("./bootstrap.ts", import.meta.url))],
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
  return built;
}
