/**
 * Compiles one plugin with esbuild into a self-contained script for an isolate: `hookd` maps to
 * the in-isolate runtime, npm packages are bundled, Node built-ins are a compile error.
 *
 * The compiler is also a way into the host: esbuild reads whatever a plugin imports, wherever it
 * is (`import env from "/proc/self/environ" with { type: "text" }`), and one hostile file can
 * crash its service for every later compile. So a compile reads only the files a plugin may
 * consist of (see `pluginJail`), each through `readSourceFile` (regular files only, bounded in size),
 * bounded in time, and a dead esbuild service is restarted (see `runBuild`).
 */
import { builtinModules } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { HookdError, type HookdErrorCode } from "../../sandbox/contract/errors.ts";
import { readSourceFile, realPathOrUndefined, SourceFileError } from "./source-file.ts";
import { RUNTIME_FILES } from "../../sandbox/contract/runtime-files.ts";

// An absolute path, so `hookd` in a plugin is this installation's shim however hookd was installed
// (node_modules/hookd through the npm:hookd-daemon alias, a linked folder, or these sources).
const SHIM = RUNTIME_FILES.shim;
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
  /**
   * The plugins folder the entry belongs to: its `lib/` and `_*` modules may be imported. By
   * default `<root>/plugins` when the entry is in it, else the entry's own folder.
   */
  pluginsDir?: string;
  /** Files and folders never bundled even when inside the plugins folder (the config, the data folder). */
  protectedPaths?: readonly string[];
  limits?: Partial<CompileLimits>;
}

/** The bounds of one compile; the defaults are those of `plugins.*` in the settings. */
export interface CompileLimits {
  timeoutMs: number;
  maxSourceBytes: number;
  /** All the files one compile reads, together (zod aside). */
  maxBundleBytes: number;
  /** Deepest bracket nesting in one source file; 0: unchecked. */
  maxNesting: number;
}

export const DEFAULT_COMPILE_LIMITS: CompileLimits = { timeoutMs: 10_000, maxSourceBytes: 4 * 1024 * 1024, maxBundleBytes: 64 * 1024 * 1024, maxNesting: 1000 };

export interface CompileIssue {
  file: string;
  line: number;
  column: number;
  text: string;
}

export async function compilePlugin(entry: string, options: CompileOptions): Promise<CompiledPlugin> {
  const started = performance.now();
  const limits = { ...DEFAULT_COMPILE_LIMITS, ...options.limits };
  const jail = pluginJail(entry, options);
  // The `hookd` shim re-exports zod, and linking zod's hundreds of modules costs esbuild tens of
  // milliseconds per build even when tree shaking drops all of it: most plugins never use `z`.
  // So the first build puts a stand-in where zod would be; only a bundle that still refers to
  // it (or fails) is built again with the real zod. That keeps a hot reload in single-digit ms.
  let result: esbuild.BuildResult<{ write: false; metafile: true }> | undefined;
  try {
    result = await runBuild(entry, options.root, limits, () => bundle(entry, options, "stand-in", jail, limits));
  } catch (error) {
    // A real mistake in the plugin fails the same way with zod: report it without a second build.
    if (!JSON.stringify((error as { errors?: unknown }).errors ?? "").includes(ZOD_STAND_IN)) throw compileError(entry, options.root, error, jail);
  }
  if (!result || result.outputFiles.some((file) => file.path.endsWith(".js") && file.text.includes(ZOD_STAND_IN))) {
    try {
      result = await runBuild(entry, options.root, limits, () => bundle(entry, options, "zod", jail, limits));
    } catch (error) {
      throw compileError(entry, options.root, error, jail);
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

type Bundle = esbuild.BuildResult<{ write: false; metafile: true }>;

function bundle(entry: string, options: CompileOptions, zod: "zod" | "stand-in", jail: Jail, limits: CompileLimits): Promise<Bundle> {
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
    // Never a tsconfig.json from the plugin's folder or above: its `paths`, `baseUrl` and
    // `extends` would make esbuild read files outside the jail (and quote them in errors).
    // These are the options of the project template's tsconfig that change the output.
    tsconfigRaw: { compilerOptions: { target: "ES2022", strict: true, verbatimModuleSyntax: true, useDefineForClassFields: true } },
    loader: LOADERS,
    plugins: [isolateResolver(zod), jailPlugin(jail, limits)],
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

/**
 * esbuild reads some files itself, outside onLoad (a folder's package.json), and its parse
 * errors quote them ("Unexpected "HOOKD_TOKEN" in JSON"). A message about a file the plugin may
 * not read says only that, so a package.json symlinked to /proc/self/environ leaks nothing.
 */
function withheld(message: esbuild.Message, root: string, jail: Jail): esbuild.Message {
  const file = message.location?.file;
  if (!file) return message;
  const real = realPathOrUndefined(path.resolve(root, file));
  if (real === undefined || mayRead(jail, real)) return message;
  return { ...message, text: "refers to a file outside the files a plugin may read (a symlink that leads out?)", pluginName: "hookd-forbidden-import" };
}

/** The files a compile may read: real paths, so a symlink is judged by where it leads. */
interface Jail {
  root: string;
  /** The plugins folder, real path: `_*` entries in it are shared modules. */
  pluginsDir: string;
  /** A file plugin's own file, or a folder plugin's own folder. */
  ownFile: string | undefined;
  ownDir: string | undefined;
  /** Shared modules, packages, and hookd's own runtime. */
  dirs: string[];
  files: string[];
  protectedPaths: string[];
  /** hookd's zod folder, with a trailing separator. */
  hookdZod: string;
  /** Importers whose imports onResolve leaves to onLoad (zod, node_modules), with a trailing separator. */
  trustedImporters: string[];
}

const JAIL_RESOLVE = "hookd-jail-resolve";
/** Marks the messages of the refusals, so the error gets its own code. */
const REFUSALS: Record<string, HookdErrorCode> = {
  "hookd-forbidden-import": "HOOKD_COMPILE_FORBIDDEN_IMPORT",
  "hookd-not-a-file": "HOOKD_COMPILE_NOT_A_FILE",
  "hookd-too-large": "HOOKD_COMPILE_TOO_LARGE",
  "hookd-node-builtin": "HOOKD_PLUGIN_NODE_BUILTIN",
};

/**
 * What one plugin may bundle: its own file (`plugins/x.ts`) or folder (`plugins/x/`), the shared
 * `plugins/lib/` and `plugins/_*`, packages in `plugins/node_modules/` and the project's
 * `node_modules/`, and hookd's shim and zod. Each is taken lexically under the real plugins
 * folder, then files are judged by their real path: a symlink that leads out (`plugins/x` ->
 * /etc, `lib/` -> /, a package linked with `npm link`) is out. A linked package has to be
 * installed as a copy (`npm install <folder>` with install-links, or `npm pack`) to be bundled.
 */
function pluginJail(entry: string, options: CompileOptions): Jail {
  const root = realOr(options.root);
  const lexicalPlugins = options.pluginsDir ?? (isInside(entry, path.join(options.root, "plugins")) ? path.join(options.root, "plugins") : path.dirname(entry));
  const pluginsDir = realOr(lexicalPlugins);
  const relative = path.relative(lexicalPlugins, entry);
  const [first, ...rest] = relative.split(path.sep);
  const outside = !first || relative.startsWith("..") || path.isAbsolute(relative);
  return {
    root: options.root,
    pluginsDir,
    ownFile: outside ? path.join(realOr(path.dirname(entry)), path.basename(entry)) : rest.length === 0 ? path.join(pluginsDir, first) : undefined,
    ownDir: !outside && rest.length > 0 ? path.join(pluginsDir, first) : undefined,
    dirs: [path.join(pluginsDir, "lib"), path.join(pluginsDir, "node_modules"), path.join(root, "node_modules"), realOr(ZOD_DIR)],
    files: [realOr(SHIM)],
    protectedPaths: (options.protectedPaths ?? []).map((p) => realOr(path.resolve(p))),
    hookdZod: ZOD_DIR + path.sep,
    trustedImporters: [ZOD_DIR, path.join(pluginsDir, "node_modules"), path.join(root, "node_modules"), path.join(options.root, "node_modules")].map((dir) => dir + path.sep),
  };
}

function mayRead(jail: Jail, real: string): boolean {
  if (jail.protectedPaths.some((p) => isInside(real, p))) return false;
  if (real === jail.ownFile || jail.files.includes(real)) return true;
  if (jail.ownDir !== undefined && isInside(real, jail.ownDir)) return true;
  if (jail.dirs.some((dir) => isInside(real, dir))) return true;
  const relative = path.relative(jail.pluginsDir, real);
  return relative.startsWith("_") && !path.isAbsolute(relative);
}

/**
 * Every import goes through here, whatever its kind (`import`, `require`, `import()`, CSS
 * `@import` and `url()`, package.json `imports`/`browser` maps): esbuild resolves it, and the
 * result must be inside the jail. Every file esbuild would read goes through `onLoad`, which
 * reads it itself, so glob imports (`require("../" + name)`, which skip onResolve) and symlinks
 * swapped after the check are caught as well, and only regular files of bounded size are read.
 */
function jailPlugin(jail: Jail, limits: CompileLimits): esbuild.Plugin {
  const shown = (file: string) => {
    const relative = path.relative(jail.root, file);
    return relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
  };
  const refuse = (text: string, pluginName = "hookd-forbidden-import") => ({ errors: [{ text, pluginName }] });
  return {
    name: "hookd-jail",
    setup(build) {
      // Per build: esbuild holds every file it read until the build ends.
      let bytesRead = 0;
      build.onResolve({ filter: /.*/ }, async (args) => {
        // Its own nested resolution, and zod's (hookd's copy: judged again by onLoad).
        if (args.pluginData === JAIL_RESOLVE || args.pluginData === "hookd-zod") return undefined;
        if (args.kind === "entry-point") {
          const file = path.resolve(jail.root, args.path);
          const real = realPathOrUndefined(file);
          if (real !== undefined && !mayRead(jail, real)) return refuse(`the plugin file ${shown(file)} leads out of the plugins folder`);
          // The real path, as esbuild's own resolver gives (and as every import is): the watch
          // list then names the file that changes when a symlinked plugin's target is edited.
          return { path: real ?? file };
        }
        // Inside hookd's zod, and inside packages, the import site says little: what they
        // resolve to is still judged by onLoad, and this saves a round trip per import.
        if (jail.trustedImporters.some((dir) => args.importer.startsWith(dir))) return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          namespace: args.namespace,
          resolveDir: args.resolveDir,
          with: args.with,
          pluginData: JAIL_RESOLVE,
        });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        if (resolved.namespace !== "file" || resolved.external) return resolved;
        const real = realPathOrUndefined(resolved.path);
        if (real !== undefined && !mayRead(jail, real)) {
          return refuse(`imports "${args.path}", which is outside the files a plugin may read (its own file or folder, plugins/lib/, plugins/_* modules, node_modules)`);
        }
        return { path: resolved.path, namespace: resolved.namespace, sideEffects: resolved.sideEffects, suffix: resolved.suffix, pluginData: resolved.pluginData };
      });
      build.onLoad({ filter: /.*/, namespace: "file" }, async (args) => {
        // hookd's own zod: not the plugin's to change, read by esbuild as it is (hundreds of files).
        if (args.path.startsWith(jail.hookdZod)) return undefined;
        // Judged before opening (opening a device can have effects), and again on what was opened.
        const before = realPathOrUndefined(args.path);
        if (before !== undefined && !mayRead(jail, before)) return refuse(`reads ${shown(args.path)}, which is outside the files a plugin may read`);
        let source: Awaited<ReturnType<typeof readSourceFile>>;
        try {
          source = await readSourceFile(args.path, limits.maxSourceBytes);
        } catch (error) {
          if (!(error instanceof SourceFileError)) throw error;
          const limit = error.problem === "too-large" ? " (plugins.maxSourceBytes)" : "";
          return refuse(`${shown(args.path)} ${error.detail}${limit}`, error.problem === "too-large" ? "hookd-too-large" : "hookd-not-a-file");
        }
        if (!mayRead(jail, source.realPath)) return refuse(`reads ${shown(args.path)}, which is outside the files a plugin may read`);
        bytesRead += source.bytes.length;
        if (bytesRead > limits.maxBundleBytes) {
          return refuse(`${shown(args.path)} takes the files this plugin bundles past ${limits.maxBundleBytes} bytes (plugins.maxBundleBytes)`, "hookd-too-large");
        }
        const loader = loaderFor(args.path, args.with);
        if (loader === undefined) {
          return { errors: [{ text: `${shown(args.path)}: no loader for ${args.with.type ? `type "${args.with.type}"` : `"${path.extname(args.path)}" files`}` }] };
        }
        if (limits.maxNesting > 0 && PARSED_LOADERS.has(loader) && nestingDepth(source.bytes, limits.maxNesting) > limits.maxNesting) {
          return refuse(`${shown(args.path)} nests brackets deeper than ${limits.maxNesting} levels (plugins.maxNesting)`, "hookd-too-large");
        }
        const contents = PARSED_LOADERS.has(loader) ? withoutSourceMapUrls(source.bytes.toString("utf8")) : source.bytes;
        return { contents, loader, resolveDir: path.dirname(args.path) };
      });
    },
  };
}

/** esbuild's default loaders, set explicitly: the `file`, `copy`, `dataurl`... loaders stay off. */
const LOADERS: Record<string, esbuild.Loader> = {
  ".ts": "ts",
  ".mts": "ts",
  ".cts": "ts",
  ".tsx": "tsx",
  ".js": "js",
  ".mjs": "js",
  ".cjs": "js",
  ".jsx": "jsx",
  ".json": "json",
  ".txt": "text",
  ".css": "css",
};
/** Import attributes esbuild understands: `with { type: "text" }` and friends. */
const TYPE_LOADERS: Record<string, esbuild.Loader> = { json: "json", text: "text", bytes: "binary" };
const PARSED_LOADERS = new Set<esbuild.Loader>(["ts", "tsx", "js", "jsx", "json", "css"]);

function loaderFor(file: string, attributes: Record<string, string>): esbuild.Loader | undefined {
  const type = attributes.type;
  if (type !== undefined) return Object.hasOwn(TYPE_LOADERS, type) ? TYPE_LOADERS[type] : undefined;
  const ext = path.extname(file);
  return Object.hasOwn(LOADERS, ext) ? LOADERS[ext] : undefined;
}

/**
 * How deep `(`, `[` and `{` nest, counted over the raw text (strings and comments included:
 * real code never comes near the limit), stopping past `limit`.
 */
function nestingDepth(bytes: Uint8Array, limit: number): number {
  let depth = 0;
  let deepest = 0;
  for (const byte of bytes) {
    if (byte === 0x28 || byte === 0x5b || byte === 0x7b) {
      if (++depth > deepest && (deepest = depth) > limit) return deepest;
    } else if ((byte === 0x29 || byte === 0x5d || byte === 0x7d) && depth > 0) depth--;
  }
  return deepest;
}

/** esbuild reads the file a `sourceMappingURL` comment names, outside onLoad: never let it. */
function withoutSourceMapUrls(text: string): string {
  return text.replace(/([/][/*][#@]\s*)sourceMappingURL=(?!data:)/g, "$1hookd-ignored-sourceMappingURL=");
}

/**
 * esbuild's JS API keeps one service process for the whole daemon. A file that crashes it (a
 * megabyte of nested `[` overflows the parser's stack) leaves it dead, and every later build
 * fails with "The service is no longer running". So a build that saw the service die stops it
 * (`esbuild.stop()`: the next build starts a fresh one), and runs once more alone: only builds
 * in flight together died with it, and the one that kills a service it has to itself is the
 * culprit (HOOKD_COMPILE_CRASHED). A build past `timeoutMs` is cut the same way: stopping the
 * service is what ends esbuild's work on it.
 */
async function runBuild(entry: string, root: string, limits: CompileLimits, build: () => Promise<Bundle>): Promise<Bundle> {
  const shown = path.relative(root, entry);
  try {
    return await gate.shared(() => timed(build, limits, shown));
  } catch (error) {
    if (!isServiceDeath(error)) throw error;
  }
  try {
    return await gate.exclusive(() => timed(build, limits, shown));
  } catch (error) {
    if (!isServiceDeath(error)) throw error;
    throw new HookdError("HOOKD_COMPILE_CRASHED", [shown, String((error as Error).message).split("\n")[0]!], { cause: error });
  }
}

/** Bumped at each stop, so the builds that died together restart the service once. */
let serviceGeneration = 0;

function restartService(generation: number): void {
  if (generation !== serviceGeneration) return;
  serviceGeneration++;
  void esbuild.stop();
}

async function timed(build: () => Promise<Bundle>, limits: CompileLimits, shown: string): Promise<Bundle> {
  const generation = serviceGeneration;
  const timedOut = Symbol("timeout");
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof timedOut>((resolve) => (timer = setTimeout(() => resolve(timedOut), limits.timeoutMs)));
  try {
    const result = await Promise.race([build(), deadline]);
    if (result === timedOut) {
      restartService(generation);
      throw new HookdError("HOOKD_COMPILE_TIMEOUT", [shown, limits.timeoutMs]);
    }
    return result;
  } catch (error) {
    if (isServiceDeath(error)) restartService(generation);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function isServiceDeath(error: unknown): boolean {
  const message = error instanceof Error ? error.message : "";
  return message.includes("The service is no longer running") || message.includes("The service was stopped");
}

/** Builds share the service; a build retried after a crash has it to itself. */
class CompileGate {
  private active = 0;
  private alone = false;
  private readonly waiting: Array<{ alone: boolean; start: () => void }> = [];

  shared<T>(run: () => Promise<T>): Promise<T> {
    return this.with(false, run);
  }

  exclusive<T>(run: () => Promise<T>): Promise<T> {
    return this.with(true, run);
  }

  private async with<T>(alone: boolean, run: () => Promise<T>): Promise<T> {
    // First come, first served: a shared build does not overtake an exclusive one that waits.
    if (this.waiting.length > 0 || !this.canStart(alone)) await new Promise<void>((start) => this.waiting.push({ alone, start }));
    else this.take(alone);
    try {
      return await run();
    } finally {
      this.active--;
      if (alone) this.alone = false;
      this.pump();
    }
  }

  private canStart(alone: boolean): boolean {
    return !this.alone && (!alone || this.active === 0);
  }

  private take(alone: boolean): void {
    this.active++;
    if (alone) this.alone = true;
  }

  /** Starts waiting builds in order, each with its slot already taken. */
  private pump(): void {
    while (this.waiting.length > 0 && this.canStart(this.waiting[0]!.alone)) {
      const next = this.waiting.shift()!;
      this.take(next.alone);
      next.start();
    }
  }
}

const gate = new CompileGate();

function isInside(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return relative === "" || (!relative.startsWith(`..${path.sep}`) && relative !== ".." && !path.isAbsolute(relative));
}

function realOr(file: string): string {
  return realPathOrUndefined(file) ?? file;
}

function compileError(entry: string, root: string, error: unknown, jail: Jail): HookdError {
  if (error instanceof HookdError) return error;
  const failure = error as { errors?: esbuild.Message[] };
  const messages = (failure.errors ?? []).map((m) => withheld(m, root, jail));
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
  // A refusal names what was refused: it is the code, even beside other errors.
  const refusal = Object.keys(REFUSALS).find((name) => messages.some((m) => m.pluginName === name));
  return new HookdError(refusal ? REFUSALS[refusal]! : "HOOKD_PLUGIN_COMPILE", [path.relative(root, entry), summary], {
    cause: error,
    issues,
    message: `plugin ${path.relative(root, entry)} does not compile: ${summary}`,
  });
}
