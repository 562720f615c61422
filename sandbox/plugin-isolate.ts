/**
 * One plugin version in one V8 isolate: create it, run the runtime bootstrap and the plugin's
 * bundle, then run handlers with a wall-time watchdog. A run that times out or exhausts memory
 * disposes the isolate (the only way to stop code stuck after an `await`); the next run
 * rebuilds it from the same code.
 */
import ivm from "isolated-vm";
import type { RunOutcome } from "../core/store/types.ts";
import type { PluginLimits, PluginManifest, PluginOptions, PluginSpec, RunRequest } from "./protocol.ts";
import { errorFromIsolate, type SourceMapper } from "./source-map.ts";

const COPY_IN_OUT = { arguments: { copy: true }, result: { promise: true, copy: true } } as const;

/** Host calls an isolate makes; `run` is the run the call belongs to (undefined once it ended). */
export type HostCallHandler = (op: string, args: unknown[], run: RunRequest) => Promise<unknown>;
export type HostLogHandler = (line: Record<string, unknown>, run: RunRequest) => void;

export interface PluginIsolateOptions {
  spec: PluginSpec;
  bootstrapCode: string;
  /** The value of a secret the plugin declared. */
  secret: (name: string) => string | undefined;
  sourceMapper: SourceMapper;
  onHostCall: HostCallHandler;
  onLog: HostLogHandler;
}

type KillReason = "timeout" | "memory" | "retired" | "closed";

export class PluginIsolate {
  readonly spec: PluginSpec;
  manifest: PluginManifest | undefined;
  /** Limits in force: the config's, overridden by the plugin's own `plugin({...})`. */
  limits: PluginLimits;
  private isolate: ivm.Isolate | undefined;
  private context: ivm.Context | undefined;
  private dispatch: ivm.Reference<(json: string) => Promise<string>> | undefined;
  private starting: Promise<PluginManifest> | undefined;
  private readonly inflight = new Map<string, RunRequest>();
  private readonly waiting: Array<() => void> = [];
  private killReason: KillReason | undefined;
  private retired = false;
  private drained: (() => void) | undefined;

  constructor(private readonly options: PluginIsolateOptions) {
    this.spec = options.spec;
    this.limits = { ...options.spec.limits };
  }

  /** Builds the isolate and runs the plugin's top level; resolves with what it declared. */
  start(): Promise<PluginManifest> {
    this.starting ??= this.build().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  get runsInFlight(): number {
    return this.inflight.size;
  }

  async heapUsedBytes(): Promise<number | undefined> {
    if (!this.isolate || this.isolate.isDisposed) return undefined;
    return (await this.isolate.getHeapStatistics()).used_heap_size;
  }

  async run(request: RunRequest): Promise<RunOutcome> {
    const started = performance.now();
    await this.acquireSlot();
    try {
      // A run queued before retire() still finishes on this version, rebuilding it if a
      // timeout or out-of-memory disposed the isolate meanwhile.
      if (!this.dispatch || this.isolate?.isDisposed) await this.start();
      return await this.runInIsolate(request, started);
    } catch (error) {
      // The isolate could not be (re)built: the run fails and is retried later.
      return {
        ok: false,
        retriable: true,
        durationMs: performance.now() - started,
        error: { code: "HOOKD_PLUGIN_LOAD", message: error instanceof Error ? error.message : String(error) },
      };
    } finally {
      this.releaseSlot();
    }
  }

  /** Stops taking runs; disposes once the runs in flight have finished. */
  retire(): Promise<void> {
    this.retired = true;
    if (this.idle) {
      this.kill("retired");
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.drained = () => {
        this.kill("retired");
        resolve();
      };
    });
  }

  dispose(): void {
    this.retired = true;
    this.kill("closed");
  }

  private async build(): Promise<PluginManifest> {
    const started = performance.now();
    let manifest = await this.evaluate(this.limits.memoryMb);
    const declaredMemory = manifest.options.memoryMb;
    // The heap limit is fixed when an isolate is created: a plugin that declares its own
    // memoryMb is evaluated once more in an isolate of that size.
    if (declaredMemory !== undefined && declaredMemory !== this.limits.memoryMb) {
      manifest = await this.evaluate(declaredMemory);
    }
    this.limits = mergeLimits(this.spec.limits, manifest.options);
    manifest.loadMs = performance.now() - started;
    this.manifest = manifest;
    return manifest;
  }

  private async evaluate(memoryMb: number): Promise<PluginManifest> {
    this.kill("closed");
    this.killReason = undefined;
    const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
    this.isolate = isolate;
    try {
      const context = await isolate.createContext();
      const hostRef = new ivm.Reference(this.hostCall);
      const runtime = (await context.evalClosure(
        `${this.options.bootstrapCode}\nconst d = __hookdRuntime.install($0); return { dispatch: d, finishLoading: d.finishLoading, setSecrets: d.setSecrets };`,
        [hostRef],
        { result: { reference: true }, timeout: this.limits.timeoutMs },
      )) as ivm.Reference<{ dispatch: (json: string) => Promise<string>; finishLoading: () => string; setSecrets: (json: string) => void }>;
      const script = await isolate.compileScript(this.spec.code, { filename: scriptFilename(this.spec) });
      try {
        await script.run(context, { timeout: this.limits.timeoutMs });
      } catch (error) {
        throw errorFromIsolate(error, this.spec, this.options.sourceMapper, "HOOKD_PLUGIN_LOAD");
      }
      const finishLoading = (await runtime.get("finishLoading", { reference: true })) as ivm.Reference<() => string>;
      const declared = JSON.parse((await finishLoading.apply(undefined, [], { result: { copy: true } })) as string) as {
        events: string[];
        actions: string[];
        options: PluginOptions;
      };
      // Secrets go in only now that the plugin has said which ones it needs.
      const declaredSecrets: Record<string, string | undefined> = {};
      for (const name of declared.options.secrets ?? []) {
        if (typeof name === "string") declaredSecrets[name] = this.options.secret(name);
      }
      const setSecrets = (await runtime.get("setSecrets", { reference: true })) as ivm.Reference<(json: string) => void>;
      await setSecrets.apply(undefined, [JSON.stringify(declaredSecrets)], { arguments: { copy: true } });
      this.context = context;
      this.dispatch = (await runtime.get("dispatch", { reference: true })) as ivm.Reference<(json: string) => Promise<string>>;
      return { ...declared, loadMs: 0 };
    } catch (error) {
      if (!isolate.isDisposed) isolate.dispose();
      throw error;
    }
  }

  private async runInIsolate(request: RunRequest, started: number): Promise<RunOutcome> {
    const isolate = this.isolate!;
    const dispatch = this.dispatch!;
    this.inflight.set(request.runId, request);
    let timedOut = false;
    const watchdog = setTimeout(() => {
      timedOut = true;
      this.kill("timeout");
    }, this.limits.timeoutMs);
    try {
      const reply = (await dispatch.apply(undefined, [JSON.stringify(request)], {
        ...COPY_IN_OUT,
        timeout: this.limits.timeoutMs,
      })) as string;
      const parsed = JSON.parse(reply) as { ok: boolean; retriable?: boolean; error?: { code: string; message: string; stack?: string; issues?: unknown[] } };
      const durationMs = performance.now() - started;
      if (parsed.ok) return { ok: true, durationMs };
      const mapped = errorFromIsolate(parsed.error, this.spec, this.options.sourceMapper, "HOOKD_RUN_FAILED");
      return { ok: false, durationMs, retriable: parsed.retriable !== false, error: mapped };
    } catch (error) {
      const durationMs = performance.now() - started;
      const reason = timedOut ? "timeout" : isolate.isDisposed ? (this.killReason ?? "memory") : undefined;
      if (reason === "timeout") {
        return { ok: false, durationMs, retriable: true, error: { code: "HOOKD_RUN_TIMEOUT", message: `run exceeded its wall time of ${this.limits.timeoutMs} ms` } };
      }
      if (reason === "memory" || isMemoryError(error)) {
        this.killReason ??= "memory";
        return { ok: false, durationMs, retriable: true, error: { code: "HOOKD_RUN_MEMORY", message: `run exceeded the isolate memory limit of ${this.limits.memoryMb} MB` } };
      }
      if (reason !== undefined) {
        return { ok: false, durationMs, retriable: true, error: { code: "HOOKD_RUN_ABORTED", message: `run aborted: the isolate was disposed (${reason}) while it ran` } };
      }
      return { ok: false, durationMs, retriable: true, error: errorFromIsolate(error, this.spec, this.options.sourceMapper, "HOOKD_RUN_FAILED") };
    } finally {
      clearTimeout(watchdog);
      this.inflight.delete(request.runId);
    }
  }

  /** The one host function an isolate can call; it never throws into the isolate. */
  private readonly hostCall = (op: string, json: string): Promise<string> | undefined => {
    let parsed: { runId?: string; args?: unknown[] } & Record<string, unknown>;
    try {
      parsed = JSON.parse(json) as typeof parsed;
    } catch {
      return Promise.resolve(JSON.stringify({ ok: false, error: { code: "HOOKD_HOST_CALL_UNKNOWN", message: "malformed host call" } }));
    }
    const run = typeof parsed.runId === "string" ? this.inflight.get(parsed.runId) : undefined;
    if (op === "log") {
      if (run) this.options.onLog(parsed, run);
      return undefined;
    }
    if (!run) {
      return Promise.resolve(
        JSON.stringify({ ok: false, error: { code: "HOOKD_RUN_ABORTED", message: "ctx was used after its run finished" } }),
      );
    }
    return this.options
      .onHostCall(op, Array.isArray(parsed.args) ? parsed.args : [], run)
      .then(
        (value) => JSON.stringify({ ok: true, value: value === undefined ? null : value }),
        (error: unknown) => JSON.stringify({ ok: false, error: plainError(error) }),
      );
  };

  private acquireSlot(): Promise<void> {
    if (this.inflight.size + this.pendingStarts < this.limits.maxConcurrentRuns) {
      this.pendingStarts++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push(() => {
        this.pendingStarts++;
        resolve();
      });
    });
  }

  private pendingStarts = 0;

  private releaseSlot(): void {
    this.pendingStarts--;
    const next = this.waiting.shift();
    if (next) next();
    else if (this.retired && this.idle) this.drained?.();
  }

  /** No run in flight, starting, or queued for a slot. */
  private get idle(): boolean {
    return this.inflight.size === 0 && this.pendingStarts === 0 && this.waiting.length === 0;
  }

  private kill(reason: KillReason): void {
    if (this.isolate && !this.isolate.isDisposed) {
      this.killReason = reason;
      this.isolate.dispose();
    }
    this.dispatch = undefined;
    this.context = undefined;
  }
}

function mergeLimits(base: PluginLimits, declared: PluginOptions): PluginLimits {
  return {
    memoryMb: declared.memoryMb ?? base.memoryMb,
    timeoutMs: declared.timeoutMs ?? base.timeoutMs,
    maxConcurrentRuns: declared.maxConcurrentRuns ?? base.maxConcurrentRuns,
  };
}

function isMemoryError(error: unknown): boolean {
  return error instanceof Error && /memory limit|out of memory|allocation failed/i.test(error.message);
}

/** The name stack frames carry; the source mapper turns it back into the plugin's .ts path. */
export function scriptFilename(spec: PluginSpec): string {
  return `hookd-plugin://${spec.plugin}@${spec.version}.js`;
}

/** Host errors cross into the isolate as code and message only: no host stack or paths. */
function plainError(error: unknown): { code: string; message: string } {
  const code = typeof (error as { code?: unknown })?.code === "string" ? (error as { code: string }).code : "HOOKD_RUN_FAILED";
  const message = error instanceof Error ? error.message : String(error);
  return { code, message };
}
