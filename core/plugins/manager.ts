/**
 * The loaded plugins: compile each with esbuild, load the new version into its own isolate
 * beside the old one, and only when it evaluated and registered its handlers make it the version
 * that takes new runs. The old version finishes its runs, then is retired. A version that fails
 * to compile or load leaves the last good one serving and is reported with its location.
 *
 * Requests for one plugin are coalesced: while one load runs, any number of further changes
 * make one more load, which reads the file as it is when it starts (the latest save wins).
 *
 * This file is the version lifecycle. Beside it: the compile that waits for a file to hold still
 * (settled-compile.ts), the checks a version passes before it serves (load-checks.ts), the status
 * listing (status.ts); the subscriber index it rebuilds on every swap is core/routing's.
 */
import path from "node:path";
import type { EventCatalog } from "../config/define.ts";
import type { CompileOptions } from "../compile/compile-plugin.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { Logger } from "../base/log.ts";
import { actionKey, parseFlowRules, routeInputErrors, SubscriberIndex, type FlowRules, type FlowRuleSet, type RouteInputError, type RouteRule, type ServingVersion } from "../routing/index.ts";
import type { RunError } from "../store/types.ts";
import type { PluginLimits, PluginManifest, PluginSpec } from "../../sandbox/contract/run.ts";
import type { Sandbox } from "../../sandbox/contract/sandbox.ts";
import { toRunError } from "../../sandbox/contract/to-run-error.ts";
import { discoverPlugins, type PluginEntry } from "./discover.ts";
import { firstFailure, issueFiles, SOURCE_CHECKS, VERSION_CHECKS } from "./load-checks.ts";
import { compileWhenStill } from "./settled-compile.ts";
import { pluginStatuses, roundMs, withPendingRuns, type PluginHealth, type PluginState, type PluginStatus } from "./status.ts";
import { manifestScheduleProblem } from "../time/schedules.ts";

/** What one load, reload or removal did; the dev console prints one line per result. */
export interface ReloadResult {
  plugin: string;
  /** `failed`: the attempt failed and the previous version (if any) still serves. */
  outcome: "loaded" | "reloaded" | "failed" | "removed";
  ok: boolean;
  /** The version serving after this attempt; null when none does. */
  version: number | null;
  /** The version this attempt built. */
  attempted?: number;
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
  /** Its handlers' flow control, checked (`on(event, options, fn)`). */
  flow: FlowRuleSet;
}

type Intent = "load" | "remove";

interface ManagedPlugin {
  entry: PluginEntry;
  current: LoadedVersion | undefined;
  lastError: PluginStatus["lastError"];
  state: PluginState;
  lastVersion: number;
  /** Files the last attempt read, when it failed: fixing any of them retries the plugin. */
  failedInputs: string[];
  /** Actions of the last version that served: their pending runs still belong to this plugin. */
  lastActions: string[];
  /** What the queued job does when it starts: the latest request wins. */
  intent: Intent;
  /** A job requested but not started yet; further requests join it. */
  queued: Promise<ReloadResult> | undefined;
  /** Jobs of one plugin run one after another. */
  chain: Promise<unknown>;
}

export interface PluginManagerOptions {
  sandbox: Sandbox;
  dir: string;
  /** Paths in messages are relative to this folder. */
  root: string;
  /** A getter, so a reloaded config's limits apply to the next version loaded. */
  limits: () => PluginLimits;
  catalog: () => EventCatalog;
  logger: Logger;
  /** Called after the set of loaded versions changed (the dispatcher wakes up). */
  onChange?: () => void;
  /** Called after every load, reload, failed attempt and removal. */
  onReload?: (result: ReloadResult) => void;
  /** Counts pending deliveries of these claim keys (a plugin's name and its `action:` keys). */
  countPendingRuns?: (keys: readonly string[]) => Promise<number>;
  /** A plugin's run health (core/delivery/circuit-breaker.ts), shown in `list()`. */
  health?: (plugin: string) => PluginHealth;
  /** Config `routes`: checked against the input schema of each action a plugin declares. */
  routes?: () => readonly RouteRule[];
  /**
   * Someone else reports reloads (`hookd dev` prints one line per reload through `onReload`):
   * the manager's own reload lines, failures included, go to the trace level.
   */
  quietReloadLogs?: boolean;
  /** The compile's bounds and the paths no plugin may bundle (the config, the data folder); a getter, like `limits`. */
  compile?: () => Pick<CompileOptions, "limits" | "protectedPaths">;
}

/** Backoff of the loads that replace a version the sandbox lost: 1 s, doubling up to a minute. */
const LOST_RETRY_FIRST_MS = 1000;
const LOST_RETRY_MAX_MS = 60_000;

export class PluginManager {
  private readonly plugins = new Map<string, ManagedPlugin>();
  /** Which serving plugin handles what (core/routing), rebuilt whenever the serving versions change. */
  private index = SubscriberIndex.EMPTY;
  // Whether a serving version declares flow control (kept with the index, read on every claim).
  private flowDeclared = false;
  private readonly log: Logger;
  private stopped = false;

  constructor(private readonly options: PluginManagerOptions) {
    this.log = options.logger.child({ component: "plugins" });
  }

  get dir(): string {
    return this.options.dir;
  }

  /**
   * Loads every plugin of the folder (again), and removes known plugins whose file is gone.
   * Used at start and after a config reload changed the catalog or the limits. Failures are
   * reported, not thrown.
   */
  async loadAll(options: { waitMs?: number } = {}): Promise<ReloadResult[]> {
    const entries = await discoverPlugins(this.options.dir);
    const found = new Set(entries.map((entry) => entry.name));
    const gone = [...this.plugins.values()].filter((p) => p.state !== "removed" && !found.has(p.entry.name));
    const waitMs = options.waitMs;
    const loads = entries.map((entry) => (waitMs === undefined ? this.reload(entry) : this.reloadWithin(entry, waitMs)));
    return Promise.all([...loads, ...gone.map((p) => this.remove(p.entry.name))]);
  }

  /**
   * A load that has not finished in `waitMs` is reported as failed (HOOKD_PLUGIN_START_TIMEOUT)
   * and goes on: one plugin that hangs (a file system that does not answer, a compile near its
   * limit) must not keep the daemon from becoming ready, nor the other plugins from serving.
   */
  private reloadWithin(entry: PluginEntry, waitMs: number): Promise<ReloadResult> {
    const job = this.reload(entry);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<ReloadResult>((resolve) => {
      timer = setTimeout(() => {
        const error = new HookdError("HOOKD_PLUGIN_START_TIMEOUT", [entry.name, waitMs]);
        this.log.error({ plugin: entry.name, code: error.code, file: path.relative(this.options.root, entry.file) }, error.message);
        resolve({ plugin: entry.name, outcome: "failed", ok: false, version: null, error: { code: error.code, message: error.message } });
      }, waitMs);
    });
    return Promise.race([job, late]).finally(() => clearTimeout(timer));
  }

  /** Compiles and loads a new version of a plugin; the old one serves until it succeeds. */
  reload(entry: PluginEntry): Promise<ReloadResult> {
    const managed = this.managed(entry);
    managed.entry = entry;
    return this.request(managed, "load");
  }

  /** Unloads a plugin whose file is gone. Its pending runs stay in the store for its return. */
  remove(name: string): Promise<ReloadResult> {
    const managed = this.plugins.get(name);
    if (!managed) return Promise.resolve({ plugin: name, outcome: "removed", ok: true, version: null });
    return this.request(managed, "remove");
  }

  /**
   * The sandbox lost a version that was serving (it failed to load again after a sandbox
   * restart, e.g. its top-level code ran out of time on a busy machine). Until now the manager
   * kept routing runs to it and each came back "not loaded", for good. Now the version is
   * dropped (its runs wait in the store, unclaimed) and the plugin is loaded anew, with backoff,
   * until a version serves again or its file changes or goes.
   */
  versionLost(plugin: string, version: number, error: RunError): void {
    const managed = this.plugins.get(plugin);
    if (!managed || managed.current?.version !== version) return;
    managed.current = undefined;
    managed.state = "failed";
    managed.lastError = { ...error, at: new Date().toISOString(), version };
    this.reindex();
    this.log.error({ plugin, version, code: error.code }, `plugin version lost by the sandbox: loading it again (${error.message})`);
    this.retryLost(managed, LOST_RETRY_FIRST_MS);
  }

  private retryLost(managed: ManagedPlugin, delayMs: number): void {
    setTimeout(() => {
      if (this.stopped || managed.current || managed.state === "removed") return;
      void this.request(managed, "load").then((result) => {
        if (!result.ok && !managed.current && managed.state !== "removed") this.retryLost(managed, Math.min(delayMs * 2, LOST_RETRY_MAX_MS));
      });
    }, delayMs).unref();
  }

  /** Stops the retries of lost versions (the daemon is stopping). */
  stop(): void {
    this.stopped = true;
  }

  /** Plugins whose current version subscribes to an event. */
  subscribers(event: string): readonly string[] {
    return this.index.subscribers(event);
  }

  /** The plugin whose current version declares an action. */
  actionOwner(action: string): string | undefined {
    return this.index.actionOwner(action);
  }

  /** The JSON Schema of an action's input in its owner's current version, when it has one. */
  actionInputSchema(action: string): unknown {
    const owner = this.index.actionOwner(action);
    return owner === undefined ? undefined : this.plugins.get(owner)?.current?.manifest.actionInputs?.[action];
  }

  /** The version that takes new runs. */
  currentVersion(plugin: string): number | undefined {
    return this.plugins.get(plugin)?.current?.version;
  }

  /** What the current version declared with `plugin({...})` (its retry policy, limits). */
  declaredOptions(plugin: string): PluginManifest["options"] | undefined {
    return this.plugins.get(plugin)?.current?.manifest.options;
  }

  /** The flow control of the current version's handler of `event`, if it declared any. */
  flowRules(plugin: string, event: string): FlowRules | undefined {
    return this.plugins.get(plugin)?.current?.flow.get(event);
  }

  /** Whether a serving version declares flow control (the claim then looks for its deliveries). */
  hasFlowRules(): boolean {
    return this.flowDeclared;
  }

  /** What the current versions declare with `schedule(...)` (core/time/scheduler.ts runs them). */
  declaredSchedules(): Array<{ plugin: string; schedules: NonNullable<PluginManifest["schedules"]> }> {
    return [...this.plugins.values()].flatMap((p) => (p.current?.manifest.schedules?.length ? [{ plugin: p.entry.name, schedules: p.current.manifest.schedules }] : []));
  }

  /** What the dispatcher claims: loaded plugins' names and `action:<name>` of their actions. */
  claimKeys(): readonly string[] {
    return this.index.claimKeys();
  }

  loadedNames(): string[] {
    return [...this.plugins.values()].filter((p) => p.current).map((p) => p.entry.name);
  }

  /**
   * Plugins that bundle this file (the importers of a shared module), including plugins whose
   * last attempt failed in it, so fixing a broken shared module recovers its importers.
   */
  importersOf(file: string): PluginEntry[] {
    const resolved = path.resolve(file);
    return [...this.plugins.values()]
      .filter((p) => p.state !== "removed" && (p.current?.inputs.includes(resolved) || p.failedInputs.includes(resolved)))
      .map((p) => p.entry);
  }

  /** Plugins whose last attempt failed: a new shared module may be what they were missing. */
  failing(): PluginEntry[] {
    return [...this.plugins.values()].filter((p) => p.state !== "removed" && p.lastError !== null).map((p) => p.entry);
  }

  known(name: string): PluginEntry | undefined {
    const managed = this.plugins.get(name);
    return managed && managed.state !== "removed" ? managed.entry : undefined;
  }

  list(): PluginStatus[] {
    return pluginStatuses(this.plugins.values(), { root: this.options.root, routeErrors: (manifest) => this.routeErrorsOf(manifest), health: this.options.health });
  }

  /** Routes to the manifest's actions whose input mapping leaves out a field the action requires. */
  private routeErrorsOf(manifest: PluginManifest): RouteInputError[] {
    return routeInputErrors(this.options.routes?.() ?? [], manifest);
  }

  /** `list()` plus each plugin's pending runs, read from the store (its name and the `action:` keys of its last actions). */
  async listWithPendingRuns(): Promise<PluginStatus[]> {
    const statuses = this.list();
    const count = this.options.countPendingRuns;
    if (!count) return statuses;
    return withPendingRuns(statuses, (plugin) => [plugin, ...this.plugins.get(plugin)!.lastActions.map(actionKey)], count);
  }

  /** Waits for reloads under way (tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.plugins.values()].map((p) => p.chain));
  }

  private managed(entry: PluginEntry): ManagedPlugin {
    let managed = this.plugins.get(entry.name);
    if (!managed) {
      managed = {
        entry,
        current: undefined,
        lastError: null,
        state: "loading",
        lastVersion: 0,
        failedInputs: [],
        lastActions: [],
        intent: "load",
        queued: undefined,
        chain: Promise.resolve(),
      };
      this.plugins.set(entry.name, managed);
    }
    return managed;
  }

  /** Queues a job for a plugin, or joins the one already queued (it reads the latest intent). */
  private request(managed: ManagedPlugin, intent: Intent): Promise<ReloadResult> {
    managed.intent = intent;
    if (managed.queued) return managed.queued;
    const job = managed.chain.then(() => {
      managed.queued = undefined;
      return managed.intent === "remove" ? this.unloadPlugin(managed) : this.loadVersion(managed);
    });
    managed.queued = job;
    managed.chain = job.catch(() => undefined);
    return job;
  }

  private async unloadPlugin(managed: ManagedPlugin): Promise<ReloadResult> {
    const name = managed.entry.name;
    if (managed.state === "removed") return { plugin: name, outcome: "removed", ok: true, version: null };
    const old = managed.current;
    managed.current = undefined;
    managed.state = "removed";
    managed.lastError = null;
    managed.failedInputs = [];
    if (old) this.reindex();
    this.log[this.reloadLevel]({ plugin: name, version: old?.version ?? null }, "plugin removed");
    const result: ReloadResult = { plugin: name, outcome: "removed", ok: true, version: null };
    this.options.onReload?.(result);
    // Runs it started finish there; its pending runs stay in the store until it comes back.
    if (old) await this.options.sandbox.unload(name, old.version);
    return result;
  }

  private async loadVersion(managed: ManagedPlugin): Promise<ReloadResult> {
    const name = managed.entry.name;
    const version = ++managed.lastVersion;
    if (!managed.current) managed.state = "loading";
    let compileMs = 0;
    try {
      const unfit = firstFailure(SOURCE_CHECKS, { entry: managed.entry, root: this.options.root });
      if (unfit) throw unfit;
      const compiled = await compileWhenStill(managed.entry.file, { root: this.options.root, pluginsDir: this.options.dir, ...this.options.compile?.() });
      compileMs = compiled.compileMs;
      const spec: PluginSpec = {
        plugin: name,
        version,
        file: path.relative(this.options.root, managed.entry.file),
        code: compiled.code,
        sourceMap: compiled.sourceMap,
        limits: this.options.limits(),
      };
      managed.failedInputs = compiled.inputs;
      const manifest = await this.options.sandbox.load(spec);
      const rejected = firstFailure(VERSION_CHECKS, { file: spec.file, manifest, catalog: this.options.catalog() });
      if (rejected) {
        await this.options.sandbox.unload(name, version);
        throw rejected;
      }
      const badSchedule = manifestScheduleProblem(manifest.schedules);
      if (badSchedule !== undefined) {
        await this.options.sandbox.unload(name, version);
        throw new HookdError("HOOKD_SCHEDULE_INVALID", [spec.file, badSchedule]);
      }
      let flow: FlowRuleSet;
      try {
        flow = parseFlowRules(spec.file, manifest.flow, this.options.catalog());
      } catch (error) {
        await this.options.sandbox.unload(name, version);
        throw error;
      }
      // The swap: one synchronous step, so every run is sent to exactly one version.
      const old = managed.current;
      managed.current = { version, manifest, inputs: compiled.inputs, loadedAt: new Date(), compileMs, flow };
      managed.state = "loaded";
      managed.lastError = null;
      managed.failedInputs = [];
      managed.lastActions = manifest.actions;
      this.reindex();
      const outcome = old ? "reloaded" : "loaded";
      this.log[this.reloadLevel](
        { plugin: name, version, previousVersion: old?.version, events: manifest.events, actions: manifest.actions, compileMs: roundMs(compileMs), loadMs: roundMs(manifest.loadMs) },
        `plugin ${outcome}`,
      );
      for (const routeError of this.routeErrorsOf(manifest)) {
        this.log.error({ plugin: name, version, code: routeError.code, route: routeError.route, action: routeError.action }, routeError.message);
      }
      const result: ReloadResult = { plugin: name, outcome, ok: true, version, attempted: version, compileMs, loadMs: manifest.loadMs };
      this.options.onReload?.(result);
      // The old version finishes the runs it started, then its isolate goes.
      if (old) void this.options.sandbox.unload(name, old.version);
      return result;
    } catch (thrown) {
      const error = toRunError(thrown, "HOOKD_PLUGIN_LOAD");
      managed.lastError = { ...error, at: new Date().toISOString(), version };
      managed.failedInputs = [...new Set([...managed.failedInputs, path.resolve(managed.entry.file), ...issueFiles(thrown, this.options.root)])];
      if (!managed.current) managed.state = "failed";
      this.log[this.failureLevel](
        { plugin: name, version, code: error.code, location: error.location, servingVersion: managed.current?.version ?? null },
        error.message,
      );
      const result: ReloadResult = { plugin: name, outcome: "failed", ok: false, version: managed.current?.version ?? null, attempted: version, compileMs, error };
      this.options.onReload?.(result);
      return result;
    }
  }

  private get reloadLevel(): "info" | "trace" {
    return this.options.quietReloadLogs ? "trace" : "info";
  }

  private get failureLevel(): "error" | "trace" {
    return this.options.quietReloadLogs ? "trace" : "error";
  }

  /** One step: the index intake, the dispatcher and replay read is replaced whole. */
  private reindex(): void {
    this.index = SubscriberIndex.build(this.servingVersions(), (action, plugins) =>
      this.log.warn({ action, plugins: [...plugins] }, "two plugins declare the same action; the first one runs it"),
    );
    this.flowDeclared = [...this.plugins.values()].some((managed) => managed.current !== undefined && managed.current.flow.size > 0);
    this.options.onChange?.();
  }

  private *servingVersions(): Iterable<ServingVersion> {
    for (const managed of this.plugins.values()) {
      if (managed.current) yield { plugin: managed.entry.name, events: managed.current.manifest.events, actions: managed.current.manifest.actions };
    }
  }
}
