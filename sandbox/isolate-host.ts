/**
 * The isolate host: every loaded plugin version in its own isolate, and the host side of the
 * ctx API with each plugin's limits (log volume, kv value size and key count, emits per run).
 * ctx.fetch is passed on to the daemon's fetch service (core/fetch), which holds its limits. It implements the Sandbox interface in-process; the sandbox process
 * (worker.ts) wraps it so the daemon can keep it at arm's length.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from "node:crypto";
import { HookdError } from "../core/errors.ts";
import type { RunOutcome } from "../core/store/types.ts";
import { fetchPolicy, type PluginFetchInit } from "../core/fetch/policy.ts";
import { PluginIsolate } from "./plugin-isolate.ts";
import type { HostServices, PluginLogRecord, PluginManifest, PluginSpec, RunRequest, Sandbox } from "./protocol.ts";
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
interface RunUsage {
  logLines: number;
  logChars: number;
  logWarned: boolean;
  emits: number;
}

export class IsolateHost implements Sandbox {
  private readonly versions = new Map<string, Map<number, PluginIsolate>>();
  /** Loads under way, so a run sent right behind its plugin's load waits for it. */
  private readonly loading = new Map<string, Promise<unknown>>();
  private readonly sourceMapper = new SourceMapper();
  private readonly usage = new Map<string, RunUsage>();
  private readonly secrets: SecretResolver;

  constructor(private readonly options: IsolateHostOptions) {
    this.secrets = this.secretResolver(options.secrets ?? {});
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
    this.usage.set(request.runId, { logLines: 0, logChars: 0, logWarned: false, emits: 0 });
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

  private async serveHostCall(isolate: PluginIsolate, op: string, args: unknown[], run: RunRequest, signal: AbortSignal): Promise<unknown> {
    const plugin = run.plugin;
    const limits = isolate.limits;
    switch (op) {
      case "kv.get":
        return this.options.services.kv(plugin, "get", [checkKey(args[0])]);
      case "kv.set": {
        const key = checkKey(args[0]);
        const value = args[1] ?? null;
        const bytes = Buffer.byteLength(JSON.stringify(value));
        if (bytes > limits.kvMaxValueBytes) throw new HookdError("HOOKD_KV_LIMIT", [`value of ${key} is ${bytes} bytes, more than the limit of ${limits.kvMaxValueBytes}`]);
        return this.setWithinKeyLimit(plugin, key, value, limits.kvMaxKeys);
      }
      case "kv.delete":
        return this.options.services.kv(plugin, "delete", [checkKey(args[0])]);
      case "kv.list": {
        const prefix = typeof args[0] === "string" ? args[0] : "";
        const limit = Math.min(Math.max(Number(args[1]) || 100, 1), 1000);
        return this.options.services.kv(plugin, "list", [prefix, limit]);
      }
      case "emit": {
        const usage = this.usage.get(run.runId);
        if (usage && ++usage.emits > limits.maxEmitsPerRun) throw new HookdError("HOOKD_RUN_EMIT_LIMIT", [limits.maxEmitsPerRun]);
        if (typeof args[0] !== "string") throw new HookdError("HOOKD_EVENT_UNKNOWN", [String(args[0])]);
        return this.options.services.emit(plugin, run.meta, args[0], args[1]);
      }
      case "fetch": {
        // Performed by the daemon's fetch service, under what this version declared at load.
        const init = (typeof args[1] === "object" && args[1] !== null ? args[1] : {}) as PluginFetchInit;
        const policy = fetchPolicy(isolate.limits, isolate.manifest?.options ?? {});
        return this.options.services.fetch({ plugin, runId: run.runId, url: String(args[0]), init, policy, signal });
      }
      // --- ctx.oktell: performed by the daemon (core/integrations/oktell/bridge.ts), which checks the capability and arguments ---
      case "oktell":
        if (!this.options.services.oktell) throw new HookdError("HOOKD_OKTELL_UNAVAILABLE", ["no workstation bridge serves this host"]);
        return this.options.services.oktell({ plugin, runId: run.runId, method: String(args[0]), user: args[1], argument: args[2] ?? null, signal });
      // --- end ctx.oktell ---
      case "crypto.digest":
      case "crypto.hmac":
      case "crypto.aesgcm":
        return cryptoCall(op, args);
      default:
        throw new HookdError("HOOKD_HOST_CALL_UNKNOWN", [op]);
    }
  }

  /**
   * Refuses a new key past the plugin's key limit; overwriting a key is always fine. The store
   * counts and writes in one atomic step (the limit goes with the set): a count kept here,
   * apart from the write, let 500 concurrent sets of new keys through a limit of 50.
   */
  private async setWithinKeyLimit(plugin: string, key: string, value: unknown, maxKeys: number): Promise<unknown> {
    return this.options.services.kv(plugin, "set", [key, value, maxKeys]);
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

const HASHES = new Set(["sha1", "sha256", "sha384", "sha512"]);
/** Base64 of at most 4 MiB, what the runtime sends at most. */
const MAX_CRYPTO_BASE64 = Math.ceil((4 * 1024 * 1024) / 3) * 4;

/** crypto.subtle's digest and HMAC, on base64 bytes; the answer is base64 too. */
function cryptoCall(op: string, args: unknown[]): string {
  const hash = String(args[0]);
  const bytes = (value: unknown) => {
    if (typeof value !== "string" || value.length > MAX_CRYPTO_BASE64) throw new HookdError("HOOKD_HOST_CALL_INVALID", [op, "data must be base64 of at most 4 MiB"]);
    return Buffer.from(value, "base64");
  };
  if (op === "crypto.aesgcm") return aesGcm(args, bytes);
  if (!HASHES.has(hash)) throw new HookdError("HOOKD_HOST_CALL_INVALID", [op, `unknown hash ${hash}`]);
  if (op === "crypto.digest") return createHash(hash).update(bytes(args[1])).digest("base64");
  return createHmac(hash, bytes(args[1])).update(bytes(args[2])).digest("base64");
}

/** AES-GCM for crypto.subtle.encrypt/decrypt: [op, key, iv, additionalData, tagLength bits, data]; the ciphertext carries its tag last. */
function aesGcm(args: unknown[], bytes: (value: unknown) => Buffer): string {
  const [op, key, iv, aad, tagBits, data] = [args[0], bytes(args[1]), bytes(args[2]), bytes(args[3]), Number(args[4]), bytes(args[5])];
  if ((key.length !== 16 && key.length !== 24 && key.length !== 32) || iv.length === 0 || ![32, 64, 96, 104, 112, 120, 128].includes(tagBits)) {
    throw new HookdError("HOOKD_HOST_CALL_INVALID", ["crypto.aesgcm", "bad key, iv or tag length"]);
  }
  const algorithm = `aes-${key.length * 8}-gcm` as "aes-256-gcm";
  const tagLength = tagBits / 8;
  if (op === "encrypt") {
    const cipher = createCipheriv(algorithm, key, iv, { authTagLength: tagLength });
    if (aad.length > 0) cipher.setAAD(aad);
    return Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]).toString("base64");
  }
  if (data.length < tagLength) throw new HookdError("HOOKD_HOST_CALL_INVALID", ["crypto.aesgcm", "the data is shorter than its tag"]);
  const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: tagLength });
  decipher.setAuthTag(data.subarray(data.length - tagLength));
  if (aad.length > 0) decipher.setAAD(aad);
  return Buffer.concat([decipher.update(data.subarray(0, data.length - tagLength)), decipher.final()]).toString("base64");
}

function checkKey(key: unknown): string {
  if (typeof key !== "string" || key.length === 0 || key.length > 512) {
    throw new HookdError("HOOKD_KV_INVALID", ["keys are non-empty strings of at most 512 characters"]);
  }
  return key;
}
