/**
 * Config reload: watches the files events.config.ts read (its `inputs`), loads the config again
 * after a change, and hands a valid one over. An invalid edit keeps the config in force and
 * says why. Settings bound at start (address, store, plugins folder, log level, secrets) keep
 * their old values until a restart, with a warning naming them.
 */
import { toRunError } from "../../sandbox/contract/to-run-error.ts";
import path from "node:path";
import { watch, type FSWatcher } from "chokidar";
import { z } from "zod";
import type { Logger } from "../base/log.ts";
import type { RunError } from "../store/types.ts";
import { MissedChangeCheck } from "../watch/missed-change.ts";
import type { ResolvedConfig } from "./settings.ts";

/** What one config reload did; the dev console prints it as one line. */
export interface ConfigReloadResult {
  ok: boolean;
  file: string;
  /** Top-level settings that changed and took effect (`events`, `routes`, `delivery`, ...). */
  changed: string[];
  /** Settings that changed but apply only after a restart. */
  needsRestart: string[];
  error?: RunError;
}

export interface ConfigWatcherOptions {
  /** The config in force; its `inputs` are the files watched. */
  current: () => ResolvedConfig;
  /** Loads the config again from the same file with the same overrides. */
  load: () => Promise<ResolvedConfig>;
  /** Puts a new, valid config in force. */
  apply: (next: ResolvedConfig, changes: ConfigChanges) => Promise<void> | void;
  logger: Logger;
  onReload?: (result: ConfigReloadResult) => void;
  /** Someone else reports reloads through `onReload` (`hookd dev`): log them at the trace level. */
  quietLogs?: boolean;
  /** Quiet time after the last change before the config loads again. */
  debounceMs?: number;
}

export interface ConfigChanges {
  changed: string[];
  needsRestart: string[];
  /** The catalog's event names or the sandbox limits changed: plugins load again against them. */
  reloadPlugins: boolean;
}

/** Settings read once at start: a reload keeps their old values. */
const RESTART_ONLY = ["server.host", "server.port", "server.bodyLimit", "store", "plugins", "dataDir", "log", "secrets", "sandbox.wall"] as const;

export class ConfigWatcher {
  private watcher: FSWatcher | undefined;
  private watched = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly missed = new MissedChangeCheck(() => this.schedule());
  private readonly log: Logger;

  constructor(private readonly options: ConfigWatcherOptions) {
    this.log = options.logger.child({ component: "config" });
  }

  async start(): Promise<void> {
    this.watched = new Set(this.options.current().inputs);
    // Folders, not files: an editor's save by rename replaces the file a file watch follows.
    this.watcher = watch([...folders(this.watched)], {
      ignoreInitial: true,
      depth: 0,
      ignored: (file, stats) => stats?.isFile() === true && !this.watched.has(path.resolve(file)),
    });
    this.watcher.on("all", (event, file) => {
      if (!(event === "add" || event === "change" || event === "unlink") || !this.watched.has(path.resolve(file))) return;
      this.schedule();
      if (event !== "unlink") this.missed.arm(path.resolve(file));
    });
    this.watcher.on("error", (error) => this.log.debug({ err: error }, "config watcher error"));
    await new Promise<void>((resolve) => this.watcher!.once("ready", () => resolve()));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.missed.close();
    await this.running;
    await this.watcher?.close();
  }

  /** Loads the config again now; resolves once it was applied or refused. */
  reload(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.reloadOnce();
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), this.options.debounceMs ?? 50);
  }

  private async reloadOnce(): Promise<void> {
    const current = this.options.current();
    for (const input of this.watched) this.missed.reading(input);
    let next: ResolvedConfig;
    try {
      next = await this.options.load();
    } catch (thrown) {
      const error = toRunError(thrown, "HOOKD_CONFIG_COMPILE");
      this.log[this.options.quietLogs ? "trace" : "error"]({ code: error.code, file: current.file }, `${error.message}; the previous config stays in force`);
      this.options.onReload?.({ ok: false, file: current.file, changed: [], needsRestart: [], error });
      return;
    }
    if (this.closed) return;
    const changes = compareConfigs(current, next);
    await this.options.apply(keepRestartOnly(current, next), changes);
    this.follow(next.inputs);
    if (changes.needsRestart.length > 0) {
      this.log.warn({ settings: changes.needsRestart }, `changed settings apply after a restart: ${changes.needsRestart.join(", ")}`);
    }
    this.log[this.options.quietLogs ? "trace" : "info"]({ file: current.file, changed: changes.changed, reloadPlugins: changes.reloadPlugins }, "config reloaded");
    this.options.onReload?.({ ok: true, file: current.file, changed: changes.changed, needsRestart: changes.needsRestart });
  }

  /** The config may import other files now: watch what the new version read. */
  private follow(inputs: string[]): void {
    const added = inputs.filter((input) => !this.watched.has(input));
    this.watched = new Set(inputs);
    if (added.length > 0) this.watcher?.add([...folders(added)]);
  }
}

/** Which top-level settings differ, which of them need a restart, and whether plugins reload. */
export function compareConfigs(current: ResolvedConfig, next: ResolvedConfig): ConfigChanges {
  const changed: string[] = [];
  const needsRestart: string[] = [];
  const eventsChanged = !sameEventNames(current.events, next.events);
  if (eventsChanged || !sameSchemas(current.events, next.events)) changed.push("events");
  for (const key of ["routes", "webhooks", "delivery", "sandbox", "server.token"] as const) {
    if (!sameJson(read(current, key), read(next, key))) changed.push(key);
  }
  for (const key of RESTART_ONLY) {
    if (!sameJson(read(current, key), read(next, key))) needsRestart.push(key);
  }
  return { changed, needsRestart, reloadPlugins: eventsChanged || changed.includes("sandbox") };
}

/** The new config, with the settings bound at start kept as they were. */
export function keepRestartOnly(current: ResolvedConfig, next: ResolvedConfig): ResolvedConfig {
  return Object.freeze({
    ...next,
    server: { ...next.server, host: current.server.host, port: current.server.port, bodyLimit: current.server.bodyLimit },
    store: current.store,
    plugins: current.plugins,
    dataDir: current.dataDir,
    log: current.log,
    secrets: current.secrets,
    // The sandbox process is started with its wall; a new one takes effect at the next start.
    sandbox: { ...next.sandbox, wall: current.sandbox.wall },
  });
}

function folders(files: Iterable<string>): Set<string> {
  return new Set([...files].map((file) => path.dirname(file)));
}

function read(config: ResolvedConfig, dotted: string): unknown {
  let value: unknown = config;
  for (const key of dotted.split(".")) value = (value as Record<string, unknown> | undefined)?.[key];
  return value;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameEventNames(a: ResolvedConfig["events"], b: ResolvedConfig["events"]): boolean {
  const left = Object.keys(a).sort();
  const right = Object.keys(b).sort();
  return left.length === right.length && left.every((name, i) => name === right[i]);
}

/** Schemas compared through their JSON Schema; one that cannot be expressed counts as changed. */
function sameSchemas(a: ResolvedConfig["events"], b: ResolvedConfig["events"]): boolean {
  return Object.keys(a).every((name) => {
    const left = a[name];
    const right = b[name];
    if (left === right) return true;
    if (!left || !right) return false;
    try {
      return sameJson(z.toJSONSchema(left, { unrepresentable: "any" }), z.toJSONSchema(right, { unrepresentable: "any" }));
    } catch {
      return false;
    }
  });
}
