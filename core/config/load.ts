/**
 * Loads events.config.ts the way vite loads vite.config.ts: bundle it with esbuild, import the
 * result, validate it. `hookd/config`, `hookd/catalog` and `zod` resolve to hookd's own modules
 * (through a global, so the file works from any folder, /etc/hookd included, and its schemas are
 * built with the same zod the daemon validates with).
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as esbuild from "esbuild";
import { z } from "zod";
import * as catalogModule from "../catalog/index.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { routeInputPathProblems, type RouteRule } from "../routing/index.ts";
import * as defineModule from "./define.ts";
import { describeIssues, settingsSchema, type ResolvedConfig } from "./settings.ts";
import { scheduleConfigProblems } from "../time/schedules.ts";

export interface LoadConfigOptions {
  /** Path of the config file; default HOOKD_CONFIG, then ./events.config.ts. */
  configFile?: string | undefined;
  pluginsDir?: string | undefined;
  dataDir?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const VIRTUAL_KEY = Symbol.for("hookd.config.modules");
const VIRTUAL_MODULES: Record<string, string> = {
  "hookd/config": "config",
  "hookd/catalog": "catalog",
  zod: "zod",
};

/** Finds, bundles, imports and validates the config; env and options override the file. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = path.resolve(cwd, options.configFile ?? env.HOOKD_CONFIG ?? "events.config.ts");
  if (!existsSync(file)) throw new HookdError("HOOKD_CONFIG_NOT_FOUND", [file]);

  const { exported, inputs } = await importConfigFile(file);
  if (typeof exported !== "object" || exported === null || Array.isArray(exported)) {
    throw new HookdError("HOOKD_CONFIG_EXPORT", [file, exported === null ? "null" : typeof exported]);
  }

  const parsed = settingsSchema.safeParse(applyEnvOverrides(exported as Record<string, unknown>, env));
  if (!parsed.success) {
    throw new HookdError("HOOKD_CONFIG_INVALID", [file, describeIssues(parsed.error.issues)], {
      cause: parsed.error,
      issues: parsed.error.issues,
    });
  }
  const settings = parsed.data;
  checkEventReferences(file, settings);
  const scheduleProblems = scheduleConfigProblems(settings.events, settings.schedules, Object.keys(settings.calendars));
  if (scheduleProblems.length > 0) throw new HookdError("HOOKD_CONFIG_INVALID", [file, scheduleProblems.join("; ")]);

  const base = path.dirname(file);
  const chosenDataDir = options.dataDir ?? (env.HOOKD_DATA_DIR || undefined);
  const dataDir = path.resolve(base, chosenDataDir ?? "./data");
  const pluginsDir = path.resolve(base, options.pluginsDir ?? settings.plugins.dir);
  return Object.freeze({
    file,
    inputs,
    events: settings.events,
    routes: settings.routes,
    webhooks: settings.webhooks,
    webhookDelivery: settings.webhookDelivery,
    oktell: settings.oktell,
    server: settings.server,
    plugins: { ...settings.plugins, dir: pluginsDir },
    sandbox: settings.sandbox,
    store: {
      url: resolveStoreUrl(settings.store.url, base, chosenDataDir === undefined ? undefined : dataDir, Boolean(env.HOOKD_STORE_URL)),
      synchronous: settings.store.synchronous,
      statementTimeoutMs: settings.store.statementTimeoutMs,
      maxConnections: settings.store.maxConnections,
    },
    dataDir,
    delivery: settings.delivery,
    log: settings.log,
    secrets: settings.secrets,
    schedules: settings.schedules,
    calendars: settings.calendars,
  });
}

/** Bundles the config file and imports the result; returns the default export and the files read. */
export async function importConfigFile(file: string): Promise<{ exported: unknown; inputs: string[] }> {
  installVirtualModules();
  let result: esbuild.BuildResult<{ write: false; metafile: true }>;
  try {
    result = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      write: false,
      metafile: true,
      platform: "node",
      format: "esm",
      target: "node20",
      logLevel: "silent",
      sourcemap: "inline",
      plugins: [virtualModulesPlugin()],
    });
  } catch (error) {
    throw new HookdError("HOOKD_CONFIG_COMPILE", [file, describeBuildFailure(error)], { cause: error });
  }
  const inputs = Object.keys(result.metafile.inputs)
    .filter((input) => !input.startsWith("hookd-virtual:"))
    .map((input) => path.resolve(input));

  // Written beside nothing the user owns: /etc/hookd may be read-only under systemd.
  const temp = path.join(tmpdir(), `hookd-config-${randomUUID()}.mjs`);
  await writeFile(temp, result.outputFiles[0]!.text);
  try {
    const module = (await import(pathToFileURL(temp).href)) as { default?: unknown };
    return { exported: module.default, inputs };
  } catch (error) {
    throw new HookdError("HOOKD_CONFIG_COMPILE", [file, error instanceof Error ? error.message : String(error)], {
      cause: error,
    });
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

const virtualSources: Record<string, Record<string, unknown>> = {
  config: defineModule,
  catalog: catalogModule,
  zod: { z, default: z },
};

function installVirtualModules(): void {
  (globalThis as Record<symbol, unknown>)[VIRTUAL_KEY] = virtualSources;
}

function virtualModulesPlugin(): esbuild.Plugin {
  return {
    name: "hookd-virtual-modules",
    setup(build) {
      build.onResolve({ filter: /^(hookd\/config|hookd\/catalog|zod)$/ }, (args) => ({
        path: args.path,
        namespace: "hookd-virtual",
      }));
      build.onLoad({ filter: /.*/, namespace: "hookd-virtual" }, (args) => {
        const key = VIRTUAL_MODULES[args.path]!;
        const source = virtualSources[key]!;
        const names = Object.keys(source).filter((name) => name !== "default" && /^[A-Za-z_$][\w$]*$/.test(name));
        const access = `globalThis[Symbol.for("hookd.config.modules")][${JSON.stringify(key)}]`;
        const lines = names.map((name) => `export const ${name} = ${access}.${name};`);
        if ("default" in source) lines.push(`export default ${access}.default;`);
        return { contents: lines.join("\n"), loader: "js" };
      });
    },
  };
}

function applyEnvOverrides(exported: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const section = (key: string) => ({ ...((exported[key] as Record<string, unknown> | undefined) ?? {}) });
  const server = section("server");
  const plugins = section("plugins");
  const store = section("store");
  const log = section("log");
  const sandbox = section("sandbox");
  if (env.HOOKD_HOST) server.host = env.HOOKD_HOST;
  if (env.HOOKD_PORT) server.port = Number(env.HOOKD_PORT);
  if (env.HOOKD_TOKEN) server.token = env.HOOKD_TOKEN;
  if (env.HOOKD_PLUGINS_DIR) plugins.dir = env.HOOKD_PLUGINS_DIR;
  if (env.HOOKD_STORE_URL) store.url = env.HOOKD_STORE_URL;
  if (env.HOOKD_LOG_LEVEL) log.level = env.HOOKD_LOG_LEVEL;
  if (env.HOOKD_SANDBOX_WALL) sandbox.wall = env.HOOKD_SANDBOX_WALL;
  return { ...exported, server, plugins, store, log, sandbox };
}

/** Routes and webhooks must name events of the catalog: a typo is a start-up error, not silence. */
function checkEventReferences(file: string, settings: { events: Record<string, unknown>; routes: readonly RouteRule[]; webhooks: Array<{ on: string }> }): void {
  const problems: string[] = [];
  settings.routes.forEach((route, i) => {
    if (!(route.on in settings.events)) problems.push(`routes.${i}.on: unknown event "${route.on}"`);
  });
  settings.webhooks.forEach((hook, i) => {
    if (!(hook.on in settings.events)) problems.push(`webhooks.${i}.on: unknown event "${hook.on}"`);
  });
  problems.push(...routeInputPathProblems(settings.routes, settings.events));
  if (problems.length > 0) throw new HookdError("HOOKD_CONFIG_INVALID", [file, problems.join("; ")]);
}

/**
 * Where the store lives. The data folder decides, unless the store URL is absolute or comes from
 * HOOKD_STORE_URL: with `--data DIR` (or HOOKD_DATA_DIR) a relative `sqlite:` file of the config
 * goes into DIR under its own name (the shipped `sqlite:./data/hookd.db` used to keep writing
 * to the checkout's data/ whatever --data said); without one it is relative to the config file.
 */
function resolveStoreUrl(url: string | undefined, base: string, chosenDataDir: string | undefined, fromEnv: boolean): string {
  const dataDir = chosenDataDir ?? path.resolve(base, "./data");
  if (url === undefined) return `sqlite:${path.join(dataDir, "hookd.db")}`;
  if (url.startsWith("sqlite:")) {
    const location = url.slice("sqlite:".length);
    if (location === ":memory:") return url;
    if (path.isAbsolute(location) || fromEnv || chosenDataDir === undefined) return `sqlite:${path.resolve(base, location)}`;
    return `sqlite:${path.join(chosenDataDir, path.basename(location))}`;
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return url;
  throw new HookdError("HOOKD_STORE_UNSUPPORTED", [url]);
}

function describeBuildFailure(error: unknown): string {
  const failure = error as { errors?: esbuild.Message[] };
  if (!failure.errors?.length) return error instanceof Error ? error.message : String(error);
  return failure.errors
    .map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ${m.text}` : m.text))
    .join("; ");
}
