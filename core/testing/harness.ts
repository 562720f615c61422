/**
 * One plugin under test: compiled by the daemon's compiler, loaded into a real V8 isolate with
 * the project's limits, and driven with typed events. The host services behind ctx are fakes
 * that record what the plugin did (logs, emitted events, kv writes, outbound calls), so a test
 * asserts behaviour without a daemon, a store or a network.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { catalog as shippedCatalog } from "../catalog/index.ts";
import { compilePlugin } from "../compile/compile-plugin.ts";
import { parseFlowRules } from "../routing/flow-rules.ts";
import type { EventCatalog } from "../config/define.ts";
import { loadConfig } from "../config/load.ts";
import { settingsSchema } from "../config/settings.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { errorCodeOr } from "../../sandbox/contract/to-run-error.ts";
import type { RunError } from "../store/types.ts";
import { createSandbox, type EventInput, type EventName } from "../../sandbox/index.ts";
import type { PluginLimits, PluginLogRecord, PluginManifest, RunMeta } from "../../sandbox/contract/run.ts";
import type { Sandbox } from "../../sandbox/contract/sandbox.ts";
import { fakeServices, validateEvent, type EmittedEvent } from "./fake-services.ts";
import type { CalendarConfig } from "../time/calendar-config.ts";
import { FakeNetwork, type OutboundCall } from "./fake-network.ts";

export type { EmittedEvent } from "./fake-services.ts";
import { MemoryKv, type KvWrite } from "./memory-kv.ts";
import { FakeWorkstations, type WorkstationCall } from "./fake-workstations.ts";

export interface LoadPluginOptions {
  /**
   * The events.config.ts whose catalog and sandbox limits apply. Default: the nearest one in
   * the plugin's folder or above it; without one, the shipped catalog and default limits.
   */
  config?: string;
  /** A catalog to use instead of the config's (event name -> zod schema). */
  catalog?: EventCatalog;
  /** Values of the secrets the plugin declares; the environment is never read. */
  secrets?: Record<string, string | undefined>;
  /** What ctx.kv holds before the first run. */
  kv?: Record<string, unknown>;
  /** Limits over the config's `sandbox` settings (the plugin's own `plugin({...})` still wins). */
  limits?: Partial<PluginLimits>;
}

export interface SendOptions {
  /** ctx.event.attempt (default 1): test what a handler does on a retry. */
  attempt?: number;
  /** ctx.event.id (default a fresh UUID). */
  id?: string;
  /** ctx.event.receivedAt (default now). */
  receivedAt?: Date;
}

/** A line the plugin wrote with ctx.log. */
export interface LogEntry {
  level: "debug" | "info" | "warn" | "error";
  msg: string | undefined;
  fields: Record<string, unknown> | undefined;
}


/** What one run did. */
export interface RunReport {
  ok: boolean;
  durationMs: number;
  /** Why the run failed: `retriable: false` for NonRetriableError and invalid action input. */
  error: (RunError & { retriable: boolean }) | undefined;
  logs: LogEntry[];
  emitted: EmittedEvent[];
  kvWrites: KvWrite[];
  fetches: OutboundCall[];
  /** The ctx.oktell calls of the run, as the workstations' bridges would have received them. */
  oktellCalls: WorkstationCall[];
}

/** Loads a plugin file into a real isolate. Relative paths start at the working directory. */
export async function loadPlugin(file: string | URL, options: LoadPluginOptions = {}): Promise<PluginHarness> {
  assertIsolatesCanRun();
  const entry = path.resolve(file instanceof URL ? fileURLToPath(file) : file);
  if (!existsSync(entry)) throw new HookdError("HOOKD_PLUGIN_COMPILE", [entry, "file not found"]);
  const configFile = options.config ? path.resolve(options.config) : findConfig(path.dirname(entry));
  const config = configFile ? await loadConfig({ configFile }) : undefined;
  const catalog = options.catalog ?? config?.events ?? (shippedCatalog as EventCatalog);
  const limits: PluginLimits = { ...(config?.sandbox ?? settingsSchema.shape.sandbox.parse(undefined)), ...options.limits };
  const root = config && isInside(entry, config.plugins.dir) ? path.dirname(config.plugins.dir) : path.dirname(path.dirname(entry));

  // The plugin's folder as the daemon would see it: a folder plugin's index sits one level down.
  const pluginsDir = config && isInside(entry, config.plugins.dir) ? config.plugins.dir : path.dirname(/^index\.[mc]?[jt]s$/.test(path.basename(entry)) ? path.dirname(entry) : entry);
  const compiled = await compilePlugin(entry, { root, pluginsDir });
  const harness = new PluginHarness(pluginName(entry), catalog, { ...config?.secrets, ...options.secrets }, options.kv, config?.calendars);
  await harness.start({ file: path.relative(root, entry), code: compiled.code, sourceMap: compiled.sourceMap, limits });
  return harness;
}

export class PluginHarness {
  /** What ctx.kv holds; `plugin.kv.writes` lists every write. */
  readonly kv: MemoryKv;
  /** The fake network: `plugin.fetch.respond(pattern, reply)`; `plugin.fetch.calls` lists requests. */
  readonly fetch = new FakeNetwork();
  /** The faked telephony workstations: `plugin.oktell.respond(method, answer)`; `plugin.oktell.calls` lists calls. */
  readonly oktell = new FakeWorkstations();
  /** Every ctx.log line of every run. */
  readonly logs: LogEntry[] = [];
  /** Every ctx.emit of every run. */
  readonly emitted: EmittedEvent[] = [];
  private readonly host: Sandbox;
  private loaded: PluginManifest | undefined;
  private file = "";
  /** Runs go one at a time, so each report holds exactly its own calls. */
  private queue: Promise<unknown> = Promise.resolve();
  private runs = 0;

  /** Use `loadPlugin()`. */
  constructor(
    readonly name: string,
    private readonly catalog: EventCatalog,
    secrets: Record<string, string | undefined>,
    kv: Record<string, unknown> | undefined,
    /** The config's business-hours calendars, for ctx.emit's `within`. */
    calendars: Record<string, CalendarConfig> = {},
  ) {
    this.kv = new MemoryKv(kv);
    this.host = createSandbox({
      mode: "inline",
      secrets,
      environmentSecrets: false,
      services: fakeServices({
        catalog: this.catalog,
        kv: this.kv,
        network: this.fetch,
        secrets,
        calendars,
        workstations: { fake: this.oktell, declared: () => this.loaded?.options.oktell === true },
        onLog: (record) => this.logs.push(toLogEntry(record)),
        onEmit: (event) => this.emitted.push(event),
      }),
    });
  }

  /** What the plugin declared: events, actions and `plugin({...})` options. */
  get manifest(): { events: string[]; actions: string[]; options: PluginManifest["options"] } {
    const { events, actions, options } = this.loaded!;
    return { events, actions, options };
  }

  /** @internal Loads the compiled plugin; a load failure rejects with its code and location. */
  async start(spec: { file: string; code: string; sourceMap: string; limits: PluginLimits }): Promise<void> {
    this.file = spec.file;
    try {
      this.loaded = await this.host.load({ plugin: this.name, version: 1, ...spec });
    } catch (thrown) {
      await this.host.close();
      const raw = thrown as Partial<RunError>;
      const code = errorCodeOr(raw.code, "HOOKD_PLUGIN_LOAD");
      throw Object.assign(new HookdError(code, [spec.file, String(raw.message ?? thrown)], { message: String(raw.message ?? thrown), cause: thrown }), {
        location: raw.location,
      });
    }
    const unknown = this.loaded.events.filter((event) => !Object.hasOwn(this.catalog, event));
    if (unknown.length > 0) {
      await this.host.close();
      throw new HookdError("HOOKD_PLUGIN_UNKNOWN_EVENT", [spec.file, unknown.join(", ")]);
    }
    // Flow options the daemon would refuse at load (HOOKD_FLOW_INVALID) fail here too.
    try {
      parseFlowRules(spec.file, this.loaded.flow, this.catalog);
    } catch (error) {
      await this.host.close();
      throw error;
    }
  }

  /**
   * Sends an event through the catalog's validation (an invalid payload throws
   * HOOKD_EVENT_INVALID, as the HTTP ingress answers 400) and runs the plugin's handlers for it.
   */
  async send<K extends EventName>(name: K, payload: EventInput<K>, options: SendOptions = {}): Promise<RunReport> {
    const stored = validateEvent(this.catalog, name, payload);
    if (!this.manifest.events.includes(name)) throw new HookdError("HOOKD_RUN_NO_HANDLER", [this.file, name]);
    return this.execute("event", name, stored, name, options);
  }

  /**
   * Runs a schedule's handler for one tick at `at` (default now), as the daemon does when the
   * tick comes: `cron` picks the schedule (needed only when the plugin declares several).
   */
  async tick(cron?: string, options: SendOptions & { at?: Date } = {}): Promise<RunReport> {
    const declared = this.loaded!.schedules ?? [];
    const matching = cron === undefined ? declared : declared.filter((s) => s.cron.trim() === cron.trim());
    if (matching.length !== 1) {
      throw new HookdError("HOOKD_RUN_NO_HANDLER", [this.file, cron === undefined ? `a schedule (it declares ${declared.length}: pass the cron)` : `schedule(${JSON.stringify(cron)})`]);
    }
    const schedule = matching[0]!;
    const tick = { scheduledAt: (options.at ?? new Date()).toISOString(), cron: schedule.cron.trim(), tz: schedule.tz ?? "UTC" };
    return this.execute("event", schedule.key, tick, schedule.key, options);
  }

  /** Starts an action with an input, as a route or `POST /actions/{name}` would. */
  async run(action: string, input: unknown, options: SendOptions = {}): Promise<RunReport> {
    if (!this.manifest.actions.includes(action)) throw new HookdError("HOOKD_ACTION_UNKNOWN", [action]);
    return this.execute("action", action, input ?? null, `action:${action}`, options);
  }

  /** Forgets the recorded logs, emits, kv writes and calls (not the kv contents nor fake answers). */
  clearRecords(): void {
    this.logs.length = 0;
    this.emitted.length = 0;
    this.kv.writes.length = 0;
    this.fetch.calls.length = 0;
    this.oktell.calls.length = 0;
  }

  /** Disposes the isolate. */
  close(): Promise<void> {
    return this.host.close();
  }

  private execute(kind: "event" | "action", name: string, payload: unknown, eventName: string, options: SendOptions): Promise<RunReport> {
    const report = this.queue.then(async (): Promise<RunReport> => {
      const mark = { logs: this.logs.length, emitted: this.emitted.length, kv: this.kv.writes.length, calls: this.fetch.calls.length, oktell: this.oktell.calls.length };
      const meta: RunMeta = {
        eventId: options.id ?? randomUUID(),
        eventName,
        receivedAt: (options.receivedAt ?? new Date()).getTime(),
        attempt: options.attempt ?? 1,
        depth: 0,
      };
      const outcome = await this.host.run({ runId: String(++this.runs), plugin: this.name, version: 1, kind, name, payload, meta });
      return {
        ok: outcome.ok,
        durationMs: outcome.durationMs,
        error: outcome.ok ? undefined : { ...outcome.error, retriable: outcome.retriable },
        logs: this.logs.slice(mark.logs),
        emitted: this.emitted.slice(mark.emitted),
        kvWrites: this.kv.writes.slice(mark.kv),
        fetches: this.fetch.calls.slice(mark.calls),
        oktellCalls: this.oktell.calls.slice(mark.oktell),
      };
    });
    this.queue = report.catch(() => undefined);
    return report;
  }
}

/** The catalog's validation, as the ingress does it; returns what hookd would store. */

/**
 * Node 20+ aborts the whole process when an isolate is created without --no-node-snapshot; a
 * clear error beats a crashed test worker.
 */
function assertIsolatesCanRun(): void {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
  if (!flags.includes("--no-node-snapshot")) throw new HookdError("HOOKD_TESTING_NODE_FLAGS");
}

function findConfig(dir: string): string | undefined {
  for (let current = dir; ; current = path.dirname(current)) {
    const candidate = path.join(current, "events.config.ts");
    if (existsSync(candidate)) return candidate;
    if (path.dirname(current) === current || existsSync(path.join(current, "package.json"))) return undefined;
  }
}

/** `plugins/<name>.ts` is `<name>`; `plugins/<name>/index.ts` is `<name>`. */
function pluginName(entry: string): string {
  const base = path.basename(entry).replace(/\.[mc]?[jt]s$/, "");
  return base === "index" ? path.basename(path.dirname(entry)) : base;
}

function isInside(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative);
}

function toLogEntry(record: PluginLogRecord): LogEntry {
  return { level: record.level, msg: record.msg, fields: record.fields };
}
