/**
 * The isolate host: every loaded plugin version in its own isolate, and the host side of the
 * ctx API with each plugin's limits (log volume, kv value size and key count, emits per run).
 * Host calls are checked by their specs (sandbox/host-calls/) and passed to the daemon's services
 * (ctx.fetch to its fetch service, which holds its limits). It implements the Sandbox interface
 * in-process; the sandbox process (worker.ts) wraps it so the daemon can keep it at arm's length.
 */
import { fetchPolicy, type FetchPolicy } from "./contract/fetch.ts";
import { serveDaemonCall, type DaemonCallName, type HostCallArgs, type HostCaller, type HostServices } from "./contract/host-calls.ts";
import type { PluginLogRecord, PluginManifest, PluginSpec, RunOutcome, RunRequest } from "./contract/run.ts";
import type { Sandbox, SandboxStatus } from "./contract/sandbox.ts";
import { checkHostCall, type RunUsage as CallUsage } from "./host-calls/index.ts";
import { PluginIsolate } from "./plugin-isolate.ts";
import { SecretResolver } from "./secrets.ts";
import { SourceMapper } from "./source-map.ts";

export interface IsolateHostOptions {
  services: HostServices;
  /** The config's secrets (see sandbox/secrets.ts for who may read which). */
  secrets?: Record<string, string | undefined>;
  /** Read secrets missing from `secrets` from the environment (default true; the test kit turns it off). */
  environmentSecrets?: boolean;
  /**
   * Where the declared secrets of a plugin version come from instead of `secrets` (the sandbox
   * process asks the daemon, which alone holds the config's secrets and its environment).
   */
  secretsFor?: (plugin: string, version: number, names: string[]) => Promise<Record<string, string | undefined>>;
  /**
   * The in-isolate runtime, bundled already (the sandbox process gets it from the daemon: it may
   * not start esbuild, a child process). Bundled here when absent.
   */
  bootstrapCode?: () => Promise<string>;
  /**
   * An isolate was lost for good (V8 could not stop it after it exhausted its memory): its
   * thread and heap stay taken until the process ends, so the owner should replace the process.
   */
  onCatastrophe?: (info: { plugin: string; version: number; message: string }) => void;
}

const LOG_LEVELS = new Set(["debug", "info", "warn", "error"]);
/** A log message longer than this is cut. */
const MAX_LOG_MESSAGE_CHARS = 8192;

/** What one run has used of its budgets, counted on the host whatever the runtime says. */
interface RunUsage extends CallUsage {
  logLines: number;
  logChars: number;
  logWarned: boolean;
}

export class IsolateHost implements Sandbox {
  private readonly versions = new Map<string, Map<number, PluginIsolate>>();
  /** Loads under way, so a run sent right behind its plugin's load waits for it. */
  private readonly loading = new Map<string, Promise<unknown>>();
  private readonly sourceMapper = new SourceMapper();
  private readonly usage = new Map<string, RunUsage>();
  private readonly secrets: SecretResolver;
  private readonly fetchPolicies = new WeakMap<PluginIsolate, FetchPolicy>();

  constructor(private readonly options: IsolateHostOptions) {
    this.secrets = this.secretResolver(options.secrets ?? {});
  }

  /** Inline, isolates are ready as soon as the host exists. */
  start(): Promise<void> {
    return Promise.resolve();
  }

  status(): SandboxStatus {
    return { mode: "inline", running: true, restarts: 0 };
  }

  load(spec: PluginSpec): Promise<PluginManifest> {
    const key = `${spec.plugin}@${spec.version}`;
    const loaded = this.loadVersion(spec);
    this.loading.set(key, loaded);
    const forget = () => {
      if (this.loading.get(key) === loaded) this.loading.delete(key);
    };
    loaded.then(forget, forget);
    return loaded;
  }

  private async loadVersion(spec: PluginSpec): Promise<PluginManifest> {
    const isolate: PluginIsolate = new PluginIsolate({
      spec,
      bootstrapCode: await (this.options.bootstrapCode ?? (await import("./runtime/build.ts")).runtimeBootstrapCode)(),
      secrets: (names) => this.declaredSecrets(spec, names),
      sourceMapper: this.sourceMapper,
      onHostCall: (op, args, run, signal): Promise<unknown> => this.serveHostCall(isolate, op, args, run, signal),
      onLog: (line, run, chars) => this.forwardLog(isolate, line, run, chars),
      onCatastrophe: (message) => this.options.onCatastrophe?.({ plugin: spec.plugin, version: spec.version, message }),
    });
    const manifest = await isolate.start();
    let byVersion = this.versions.get(spec.plugin);
    if (!byVersion) this.versions.set(spec.plugin, (byVersion = new Map()));
    byVersion.get(spec.version)?.dispose();
    byVersion.set(spec.version, isolate);
    return manifest;
  }

  async unload(plugin: string, version: number): Promise<void> {
    const byVersion = this.versions.get(plugin);
    const isolate = byVersion?.get(version);
    if (!isolate) return;
    byVersion!.delete(version);
    if (byVersion!.size === 0) this.versions.delete(plugin);
    this.sourceMapper.forget(isolate.spec);
    await isolate.retire();
  }

  /** `payloadJson`, when given, is the payload as JSON text (what the sandbox process receives). */
  async run(request: RunRequest, payloadJson?: string): Promise<RunOutcome> {
    const pending = this.loading.get(`${request.plugin}@${request.version}`);
    if (pending) await pending.catch(() => undefined);
    const isolate = this.versions.get(request.plugin)?.get(request.version);
    if (!isolate) {
      return {
        ok: false,
        retriable: true,
        durationMs: 0,
        error: { code: "HOOKD_PLUGIN_NOT_LOADED", message: `plugin ${request.plugin} version ${request.version} is not loaded` },
      };
    }
    this.usage.set(request.runId, newUsage());
    try {
      return await isolate.run(request, payloadJson);
    } finally {
      this.usage.delete(request.runId);
    }
  }

  /** Heap in use per loaded plugin version, for metrics. */
  async heapUsage(): Promise<Array<{ plugin: string; version: number; bytes: number }>> {
    const usage: Array<{ plugin: string; version: number; bytes: number }> = [];
    for (const [plugin, byVersion] of this.versions) {
      for (const [version, isolate] of byVersion) {
        const bytes = await isolate.heapUsedBytes();
        if (bytes !== undefined) usage.push({ plugin, version, bytes });
      }
    }
    return usage;
  }

  /** Times each loaded plugin's isolate was disposed to end a run and rebuilt. */
  isolateRestarts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [plugin, byVersion] of this.versions) {
      for (const isolate of byVersion.values()) counts[plugin] = (counts[plugin] ?? 0) + isolate.kills;
    }
    return counts;
  }

  async close(): Promise<void> {
    for (const byVersion of this.versions.values()) for (const isolate of byVersion.values()) isolate.dispose();
    this.versions.clear();
  }

  /**
   * One host call of a run: checked by its spec (sandbox/host-calls/), then answered here (the
   * crypto calls) or passed to the daemon's services with the caller as this host's records say.
   */
  private async serveHostCall(isolate: PluginIsolate, name: string, raw: unknown[], run: RunRequest, signal: AbortSignal): Promise<unknown> {
    const usage = this.usage.get(run.runId) ?? newUsage();
    const call = checkHostCall(name, raw, { limits: isolate.limits, usage });
    if (call.serve) return call.serve();
    const caller: HostCaller = {
      plugin: run.plugin,
      version: run.version,
      runId: run.runId,
      meta: run.meta,
      kvMaxKeys: isolate.limits.kvMaxKeys,
      fetchPolicy: this.fetchPolicyOf(isolate),
      signal,
    };
    return serveDaemonCall(this.options.services, call.name as DaemonCallName, caller, call.args as HostCallArgs<DaemonCallName>);
  }

  /** A version's fetch policy, worked out once per isolate from what it declared at load. */
  private fetchPolicyOf(isolate: PluginIsolate): FetchPolicy {
    let policy = this.fetchPolicies.get(isolate);
    if (!policy) this.fetchPolicies.set(isolate, (policy = fetchPolicy(isolate.limits, isolate.manifest?.options ?? {})));
    return policy;
  }

  private forwardLog(isolate: PluginIsolate, line: Record<string, unknown>, run: RunRequest, chars: number): void {
    const usage = this.usage.get(run.runId);
    if (!usage) return;
    const { maxLogLinesPerRun, maxLogBytesPerRun } = isolate.limits;
    usage.logLines++;
    usage.logChars += chars;
    const base = { plugin: run.plugin, runId: run.runId, eventId: run.meta.eventId, event: run.meta.eventName };
    if (usage.logLines > maxLogLinesPerRun || usage.logChars > maxLogBytesPerRun) {
      if (usage.logWarned) return;
      usage.logWarned = true;
      const limit = usage.logLines > maxLogLinesPerRun ? `${maxLogLinesPerRun} lines` : `${maxLogBytesPerRun} bytes`;
      this.options.services.log({
        ...base,
        level: "warn",
        msg: `log limit of ${limit} per run reached: further lines of this run are dropped`,
        fields: { code: "HOOKD_RUN_LOG_LIMIT" },
      });
      return;
    }
    const record: PluginLogRecord = {
      ...base,
      level: LOG_LEVELS.has(line.level as string) ? (line.level as PluginLogRecord["level"]) : "info",
      msg: typeof line.msg === "string" ? line.msg.slice(0, MAX_LOG_MESSAGE_CHARS) : undefined,
      fields: ownFields(line.fields),
    };
    this.options.services.log(record);
  }

  private async declaredSecrets(spec: PluginSpec, names: string[]): Promise<Record<string, string | undefined>> {
    if (this.options.secretsFor) return this.options.secretsFor(spec.plugin, spec.version, names);
    const values: Record<string, string | undefined> = {};
    for (const name of names) values[name] = this.secrets.resolve(spec.plugin, name);
    return values;
  }

  private secretResolver(configured: Record<string, string | undefined>): SecretResolver {
    return new SecretResolver({ configured, environment: this.options.environmentSecrets === false ? undefined : process.env });
  }
}

/** Fields of the log line hookd writes itself; a plugin's own are dropped rather than forge them. */
const RESERVED_FIELDS = new Set(["level", "time", "pid", "hostname", "msg", "component", "plugin", "runId", "eventId", "event", "v"]);

function ownFields(fields: unknown): Record<string, unknown> | undefined {
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) return undefined;
  const own: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) if (!RESERVED_FIELDS.has(name)) own[name] = value;
  return own;
}

function newUsage(): RunUsage {
  return { logLines: 0, logChars: 0, logWarned: false, emits: 0 };
}
