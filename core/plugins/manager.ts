/**
 * The loaded plugins: compile each with esbuild, load the new version into its own isolate
 * beside the old one, and only when it evaluated and registered its handlers make it the version
 * that takes new runs. The old version finishes its runs, then is retired. A version that fails
 * to compile or load leaves the last good one serving and is reported with its location.
 */
import path from "node:path";
import type { EventCatalog } from "../config/define.ts";
import { compilePlugin } from "../compile/compile-plugin.ts";
import { HookdError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { RunError } from "../store/types.ts";
import type { PluginLimits, PluginManifest, PluginSpec, Sandbox } from "../../sandbox/protocol.ts";
import { discoverPlugins, type PluginEntry } from "./discover.ts";

/** Deliveries of routes and manual starts are claimed by action name, not by plugin. */
export const ACTION_KEY_PREFIX = "action:";

export type PluginState = "loading" | "loaded" | "failed" | "removed";

/** What `GET /api/plugins` shows for one plugin. */
export interface PluginStatus {
  name: string;
  file: string;
  state: PluginState;
  /** The version taking runs; null until one loaded. */
  version: number | null;
  loadedAt: string | null;
  events: string[];
  actions: string[];
  compileMs: number | null;
  loadMs: number | null;
  /** The last compile or load failure; cleared by the next good version. */
  lastError: (RunError & { at: string; version: number }) | null;
}

export interface ReloadResult {
  plugin: string;
  ok: boolean;
  version: number | null;
  compileMs?: number;
  loadMs?: number;
  error?: RunError;
}

interface LoadedVersion {
  version: number;
  manifest: PluginManifest;
  inputs: string[];
  loadedAt: Date;
  compileMs: number;
}

interface ManagedPlugin {
  entry: PluginEntry;
  current: LoadedVersion | undefined;
  lastError: PluginStatus["lastError"];
  state: PluginState;
  lastVersion: number;
  /** Reloads of one plugin run one after another. */
  chain: Promise<unknown>;
}

export interface PluginManagerOptions {
  sandbox: Sandbox;
  dir: string;
  /** Paths in messages are relative to this folder. */
  root: string;
  limits: PluginLimits;
  catalog: () => EventCatalog;
  logger: Logger;
  /** Called after the set of loaded versions changed (the dispatcher wakes up). */
  onChange?: () => void;
}

export class PluginManager {
  private readonly plugins = new Map<string, ManagedPlugin>();
  private subscriptions = new Map<string, string[]>();
  private actionOwners = new Map<string, string>();
  private keys: string[] = [];
  private readonly log: Logger;

  constructor(private readonly options: PluginManagerOptions) {
    this.log = options.logger.child({ component: "plugins" });
  }

  get dir(): string {
    return this.options.dir;
  }

  /** Loads every plugin of the folder; failures are reported, not thrown. */
  async loadAll(): Promise<ReloadResult[]> {
    const entries = await discoverPlugins(this.options.dir);
    return Promise.all(entries.map((entry) => this.reload(entry)));
  }

  /** Compiles and loads a new version of a plugin; the old one serves until it succeeds. */
  reload(entry: PluginEntry): Promise<ReloadResult> {
    const managed = this.managed(entry);
    const next = managed.chain.then(() => this.loadVersion(managed));
    managed.chain = next.catch(() => undefined);
    return next;
  }

  /** Unloads a plugin whose file is gone. Its pending runs stay in the store for its return. */
  remove(name: string): Promise<void> {
    const managed = this.plugins.get(name);
    if (!managed) return Promise.resolve();
    const next = managed.chain.then(async () => {
      const old = managed.current;
      managed.current = undefined;
      managed.state = "removed";
      this.reindex();
      this.log.info({ plugin: name, version: old?.version }, "plugin removed");
      if (old) await this.options.sandbox.unload(name, old.version);
    });
    managed.chain = next.catch(() => undefined);
    return next;
  }

  /** Plugins whose current version subscribes to an event. */
  subscribers(event: string): readonly string[] {
    return this.subscriptions.get(event) ?? [];
  }

  /** The plugin whose current version declares an action. */
  actionOwner(action: string): string | undefined {
    return this.actionOwners.get(action);
  }

  /** The version that takes new runs. */
  currentVersion(plugin: string): number | undefined {
    return this.plugins.get(plugin)?.current?.version;
  }

  /** What the dispatcher claims: loaded plugins' names and `action:<name>` of their actions. */
  claimKeys(): readonly string[] {
    return this.keys;
  }

  loadedNames(): string[] {
    return [...this.plugins.values()].filter((p) => p.current).map((p) => p.entry.name);
  }

  /** Plugins (by name) that bundle this file: the importers of a shared module. */
  importersOf(file: string): PluginEntry[] {
    const resolved = path.resolve(file);
    return [...this.plugins.values()]
      .filter((p) => p.state !== "removed" && p.current?.inputs.includes(resolved))
      .map((p) => p.entry);
  }

  known(name: string): PluginEntry | undefined {
    const managed = this.plugins.get(name);
    return managed && managed.state !== "removed" ? managed.entry : undefined;
  }

  list(): PluginStatus[] {
    return [...this.plugins.values()]
      .sort((a, b) => a.entry.name.localeCompare(b.entry.name))
      .map((p) => ({
        name: p.entry.name,
        file: path.relative(this.options.root, p.entry.file),
        state: p.state,
        version: p.current?.version ?? null,
        loadedAt: p.current?.loadedAt.toISOString() ?? null,
        events: p.current?.manifest.events ?? [],
        actions: p.current?.manifest.actions ?? [],
        compileMs: p.current ? round(p.current.compileMs) : null,
        loadMs: p.current ? round(p.current.manifest.loadMs) : null,
        lastError: p.lastError,
      }));
  }

  /** Waits for reloads under way (tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.plugins.values()].map((p) => p.chain));
  }

  private managed(entry: PluginEntry): ManagedPlugin {
    let managed = this.plugins.get(entry.name);
    if (!managed) {
      managed = { entry, current: undefined, lastError: null, state: "loading", lastVersion: 0, chain: Promise.resolve() };
      this.plugins.set(entry.name, managed);
    }
    managed.entry = entry;
    return managed;
  }

  private async loadVersion(managed: ManagedPlugin): Promise<ReloadResult> {
    const name = managed.entry.name;
    const version = ++managed.lastVersion;
    if (!managed.current) managed.state = "loading";
    let compileMs = 0;
    try {
      const compiled = await compilePlugin(managed.entry.file, { root: this.options.root });
      compileMs = compiled.compileMs;
      const spec: PluginSpec = {
        plugin: name,
        version,
        file: path.relative(this.options.root, managed.entry.file),
        code: compiled.code,
        sourceMap: compiled.sourceMap,
        limits: this.options.limits,
      };
      const manifest = await this.options.sandbox.load(spec);
      const unknown = manifest.events.filter((event) => !(event in this.options.catalog()));
      if (unknown.length > 0) {
        await this.options.sandbox.unload(name, version);
        throw new HookdError("HOOKD_PLUGIN_UNKNOWN_EVENT", [spec.file, unknown.join(", ")]);
      }
      const old = managed.current;
      managed.current = { version, manifest, inputs: compiled.inputs, loadedAt: new Date(), compileMs };
      managed.state = "loaded";
      managed.lastError = null;
      this.reindex();
      this.log.info(
        { plugin: name, version, events: manifest.events, actions: manifest.actions, compileMs: round(compileMs), loadMs: round(manifest.loadMs) },
        old ? "plugin reloaded" : "plugin loaded",
      );
      // The old version finishes the runs it started, then its isolate goes.
      if (old) void this.options.sandbox.unload(name, old.version);
      return { plugin: name, ok: true, version, compileMs, loadMs: manifest.loadMs };
    } catch (thrown) {
      const error = toRunError(thrown);
      managed.lastError = { ...error, at: new Date().toISOString(), version };
      if (!managed.current) managed.state = "failed";
      this.log.error(
        { plugin: name, version, code: error.code, location: error.location, servingVersion: managed.current?.version ?? null },
        error.message,
      );
      return { plugin: name, ok: false, version: managed.current?.version ?? null, compileMs, error };
    }
  }

  private reindex(): void {
    const subscriptions = new Map<string, string[]>();
    const actionOwners = new Map<string, string>();
    for (const managed of this.plugins.values()) {
      const current = managed.current;
      if (!current) continue;
      for (const event of current.manifest.events) {
        const list = subscriptions.get(event) ?? [];
        list.push(managed.entry.name);
        subscriptions.set(event, list);
      }
      for (const action of current.manifest.actions) {
        const owner = actionOwners.get(action);
        if (owner && owner !== managed.entry.name) {
          this.log.warn({ action, plugins: [owner, managed.entry.name] }, "two plugins declare the same action; the first one runs it");
          continue;
        }
        actionOwners.set(action, managed.entry.name);
      }
    }
    this.subscriptions = subscriptions;
    this.actionOwners = actionOwners;
    this.keys = [
      ...[...this.plugins.values()].filter((p) => p.current).map((p) => p.entry.name),
      ...[...actionOwners.keys()].map((action) => `${ACTION_KEY_PREFIX}${action}`),
    ];
    this.options.onChange?.();
  }
}

function toRunError(thrown: unknown): RunError {
  if (thrown instanceof HookdError) {
    const issues = thrown.issues as Array<{ file?: string; line?: number; column?: number }> | undefined;
    const first = issues?.[0];
    const location = first?.file ? `${first.file}:${first.line}:${first.column}` : undefined;
    return { code: thrown.code, message: thrown.message, ...(location ? { location } : {}) };
  }
  const raw = thrown as { code?: unknown; message?: unknown; location?: unknown };
  return {
    code: typeof raw?.code === "string" ? raw.code : "HOOKD_PLUGIN_LOAD",
    message: typeof raw?.message === "string" ? raw.message : String(thrown),
    ...(typeof raw?.location === "string" ? { location: raw.location } : {}),
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
