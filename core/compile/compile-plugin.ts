/**
 * Compiles one plugin with esbuild into a self-contained script for an isolate: `hookd` maps to
 * the in-isolate runtime, npm packages are bundled, Node built-ins are a compile error.
 */
import { builtinModules } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { HookdError } from "../errors.ts";
import { ownFile } from "../locate.ts";

// An absolute path, so `hookd` in a plugin is this installation's shim however hookd was installed
// (node_modules/hookd through the npm:hookd-daemon alias, a linked folder, or these sources).
const SHIM = ownFile(import.meta.url, "../../sandbox/runtime/shim.ts");
const ZOD_DIR = path.dirname(fileURLToPath(import.meta.resolve("zod/package.json")));
const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

export interface CompiledPlugin {
  code: string;
  sourceMap: string;
  /** Absolute paths of every source file bundled in: the plugin's watch list. */
  inputs: string[];
  compileMs: number;
}

export interface CompileOptions {
  /** Paths in messages and source maps are relative to this folder (the plugins folder's parent). */
  root: string;
}

export interface CompileIssue {
  file: string;
  line: number;
  column: number;
  text: string;
}

export async function compilePlugin(entry: string, options: CompileOptions): Promise<CompiledPlugin> {
  const started = performance.now();
  // The `hookd` shim re-exports zod, and linking zod's hundreds of modules costs esbuild tens of
  // milliseconds per build even when tree shaking drops all of it: most plugins never use `z`.
  // So the first build puts a stand-in where zod would be; only a bundle that still refers to
  // it (or fails) is built again with the real zod. That keeps a hot reload in single-digit ms.
  let result: esbuild.BuildResult<{ write: false; metafile: true }> | undefined;
  try {
    result = await bundle(entry, options, "stand-in");
  } catch (error) {
    // A real mistake in the plugin fails the same way with zod: report it without a second build.
    if (!JSON.stringify((error as { errors?: unknown }).errors ?? "").includes(ZOD_STAND_IN)) throw compileError(entry, options.root, error);
  }
  if (!result || result.outputFiles.some((file) => file.path.endsWith(".js") && file.text.includes(ZOD_STAND_IN))) {
    try {
      result = await bundle(entry, options, "zod");
    } catch (error) {
      throw compileError(entry, options.root, error);
    }
  }
  const code = result.outputFiles.find((file) => file.path.endsWith(".js"))!.text;
  const sourceMap = result.outputFiles.find((file) => file.path.endsWith(".js.map"))?.text ?? "";
  const inputs = Object.keys(result.metafile.inputs)
    .filter((input) => !input.includes("node_modules") && !input.startsWith("hookd-"))
    .map((input) => path.resolve(options.root, input))
    .filter((input) => input !== SHIM);
  return { code, sourceMap, inputs, compileMs: performance.now() - started };
}

/** Marks the stand-in for zod; a bundle that contains it uses zod. */
const ZOD_STAND_IN = "hookd-zod-stand-in";

function bundle(entry: string, options: CompileOptions, zod: "zod" | "stand-in"): Promise<esbuild.BuildResult<{ write: false; metafile: true }>> {
  return esbuild.build({
    entryPoints: [entry],
    absWorkingDir: options.root,
    outdir: options.root,
    bundle: true,
    write: false,
    metafile: true,
    format: "iife",
    platform: "neutral",
    mainFields: ["module", "main"],
    conditions: ["import", "default"],
    target: "es2022",
    sourcemap: "external",
    sourcesContent: false,
    logLevel: "silent",
    plugins: [isolateResolver(zod)],
  });
}

function isolateResolver(zod: "zod" | "stand-in"): esbuild.Plugin {
  return {
    name: "hookd-isolate-resolver",
    setup(build) {
      build.onResolve({ filter: /^hookd$/ }, () => ({ path: SHIM }));
      if (zod === "stand-in") {
        // Pure, so tree shaking drops it unless the plugin really refers to `z`.
        build.onResolve({ filter: /^zod(\/.*)?$/ }, () => ({ path: "zod", namespace: ZOD_STAND_IN }));
        build.onLoad({ filter: /.*/, namespace: ZOD_STAND_IN }, () => ({
          contents: `export const z = /* @__PURE__ */ Symbol("${ZOD_STAND_IN}");\nexport default z;\n`,
          loader: "js",
        }));
      }
      // Plugins share hookd's zod, so `import { z } from "zod"` works without installing it.
      build.onResolve({ filter: /^zod(\/.*)?$/ }, async (args) => {
        if (args.pluginData === "hookd-zod") return undefined;
        const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: ZOD_DIR, pluginData: "hookd-zod" });
        return resolved.errors.length ? { errors: resolved.errors } : { path: resolved.path };
      });
      build.onResolve({ filter: /^[a-z_:][\w:/.-]*$/ }, (args) => {
        if (!BUILTINS.has(args.path)) return undefined;
        return {
          errors: [
            {
              text: `imports the Node built-in "${args.path}": plugins run in an isolate without Node APIs; use ctx.fetch, ctx.kv and ctx.log`,
              pluginName: "hookd-node-builtin",
            },
          ],
        };
      });
    },
  };
}

function compileError(entry: string, root: string, error: unknown): HookdError {
  const failure = error as { errors?: esbuild.Message[] };
  const messages = failure.errors ?? [];
  const issues: CompileIssue[] = messages.map((m) => ({
    file: m.location?.file ?? path.relative(root, entry),
    line: m.location?.line ?? 0,
    column: (m.location?.column ?? 0) + 1,
    text: m.text,
  }));
  const summary = issues.length
    ? issues.map((i) => `${i.file}:${i.line}:${i.column}: ${i.text}`).join("; ")
    : error instanceof Error
      ? error.message
      : String(error);
  const builtin = messages.some((m) => m.pluginName === "hookd-node-builtin");
  return new HookdError(builtin ? "HOOKD_PLUGIN_NODE_BUILTIN" : "HOOKD_PLUGIN_COMPILE", [path.relative(root, entry), summary], {
    cause: error,
    issues,
    message: `plugin ${path.relative(root, entry)} does not compile: ${summary}`,
  });
}
