/**
 * The isolate host: every loaded plugin version in its own isolate, and the host side of the
 * ctx API. It implements the Sandbox interface in-process; the sandbox process (worker.ts) wraps
 * it so the daemon can keep it at arm's length.
 */
import { HookdError } from "../core/errors.ts";
import type { RunOutcome } from "../core/store/types.ts";
import { defaultFetchLimits, fetchForPlugin, type FetchLimits, type PluginFetchInit } from "./host-fetch.ts";
import { PluginIsolate } from "./plugin-isolate.ts";
import type { HostServices, PluginLogRecord, PluginManifest, PluginSpec, RunRequest, Sandbox } from "./protocol.ts";
import { runtimeBootstrapCode } from "./runtime/build.ts";
import { SourceMapper } from "./source-map.ts";

export interface IsolateHostOptions {
  services: HostServices;
  /** Values for declared secrets (else the environment); a plugin sees only the names it declares. */
  secrets?: Record<string, string | undefined>;
  fetchLimits?: FetchLimits;
  /** Log lines one run may write; the rest are dropped with one warning. */
  maxLogLinesPerRun?: number;
  /** Largest ctx.kv value, as JSON bytes. */
  maxKvValueBytes?: number;
}

const LOG_LEVELS = new Set(["debug", "info", "warn", "error"]);

export class IsolateHost implements Sandbox {
  private readonly versions = new Map<string, Map<number, PluginIsolate>>();
  private readonly sourceMapper = new SourceMapper();
  private readonly logLines = new Map<string, number>();
  private secrets: Record<string, string | undefined>;

  constructor(private readonly options: IsolateHostOptions) {
    this.secrets = options.secrets ?? {};
  }

  setSecrets(secrets: Record<string, string | undefined>): void {
    this.secrets = secrets;
  }

  async load(spec: PluginSpec): Promise<PluginManifest> {
    const isolate: PluginIsolate = new PluginIsolate({
      spec,
      bootstrapCode: await runtimeBootstrapCode(),
      secret: (name) => this.secrets[name] ?? process.env[name],
      sourceMapper: this.sourceMapper,
      onHostCall: (op, args, run): Promise<unknown> => this.serveHostCall(isolate, op, args, run),
      onLog: (line, run) => this.forwardLog(line, run),
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

  run(request: RunRequest): Promise<RunOutcome> {
    const isolate = this.versions.get(request.plugin)?.get(request.version);
    if (!isolate) {
      return Promise.resolve({
        ok: false,
        retriable: true,
        durationMs: 0,
        error: { code: "HOOKD_PLUGIN_NOT_LOADED", message: `plugin ${request.plugin} version ${request.version} is not loaded` },
      });
    }
    return isolate.run(request).finally(() => this.logLines.delete(request.runId));
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

  async close(): Promise<void> {
    for (const byVersion of this.versions.values()) for (const isolate of byVersion.values()) isolate.dispose();
    this.versions.clear();
  }

  private async serveHostCall(isolate: PluginIsolate, op: string, args: unknown[], run: RunRequest): Promise<unknown> {
    const plugin = run.plugin;
    switch (op) {
      case "kv.get":
        return this.options.services.kv(plugin, "get", [checkKey(args[0])]);
      case "kv.set": {
        const key = checkKey(args[0]);
        const json = JSON.stringify(args[1] ?? null);
        const max = this.options.maxKvValueBytes ?? 256 * 1024;
        if (Buffer.byteLength(json) > max) throw new HookdError("HOOKD_KV_INVALID", [`value of ${key} is larger than ${max} bytes`]);
        return this.options.services.kv(plugin, "set", [key, args[1] ?? null]);
      }
      case "kv.delete":
        return this.options.services.kv(plugin, "delete", [checkKey(args[0])]);
      case "kv.list": {
        const prefix = typeof args[0] === "string" ? args[0] : "";
        const limit = Math.min(Math.max(Number(args[1]) || 100, 1), 1000);
        return this.options.services.kv(plugin, "list", [prefix, limit]);
      }
      case "emit": {
        if (typeof args[0] !== "string") throw new HookdError("HOOKD_EVENT_UNKNOWN", [String(args[0])]);
        return this.options.services.emit(plugin, run.meta, args[0], args[1]);
      }
      case "fetch": {
        const patterns = isolate.manifest?.options.fetch ?? [];
        const init = (typeof args[1] === "object" && args[1] !== null ? args[1] : {}) as PluginFetchInit;
        const limits = this.options.fetchLimits ?? defaultFetchLimits;
        // A fetch never outlives the run's own wall time.
        return fetchForPlugin(patterns, String(args[0]), init, { ...limits, timeoutMs: Math.min(limits.timeoutMs, isolate.limits.timeoutMs) });
      }
      default:
        throw new HookdError("HOOKD_HOST_CALL_UNKNOWN", [op]);
    }
  }

  private forwardLog(line: Record<string, unknown>, run: RunRequest): void {
    const count = (this.logLines.get(run.runId) ?? 0) + 1;
    this.logLines.set(run.runId, count);
    const max = this.options.maxLogLinesPerRun ?? 1000;
    if (count > max + 1) return;
    const base = { plugin: run.plugin, runId: run.runId, eventId: run.meta.eventId, event: run.meta.eventName };
    const record: PluginLogRecord =
      count === max + 1
        ? { ...base, level: "warn", msg: `log limit of ${max} lines per run reached: further lines of this run are dropped` }
        : {
            ...base,
            level: LOG_LEVELS.has(line.level as string) ? (line.level as PluginLogRecord["level"]) : "info",
            msg: typeof line.msg === "string" ? line.msg.slice(0, 8192) : undefined,
            fields: typeof line.fields === "object" && line.fields !== null ? (line.fields as Record<string, unknown>) : undefined,
          };
    this.options.services.log(record);
  }
}

function checkKey(key: unknown): string {
  if (typeof key !== "string" || key.length === 0 || key.length > 512) {
    throw new HookdError("HOOKD_KV_INVALID", ["keys are non-empty strings of at most 512 characters"]);
  }
  return key;
}
