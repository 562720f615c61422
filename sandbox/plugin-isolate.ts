/**
 * One plugin version in one V8 isolate: create it, run the runtime bootstrap and the plugin's
 * bundle, then run handlers under watch. The host ends a run that exceeds its wall time (awaited
 * continuations and host calls included) or its CPU time by disposing the isolate, the only way
 * to stop code stuck after an `await`; the next run rebuilds it from the same code.
 *
 * Some out-of-memory paths leave V8 unable to stop the isolate at all (isolated-vm reports them
 * as catastrophic errors; left unhandled they abort the process). The isolate is then abandoned:
 * its runs fail at once, the next run gets a new isolate, and the owner is told, so that it can
 * replace the whole process (the abandoned isolate's thread and heap stay taken until then).
 */
import { randomBytes } from "node:crypto";
import ivm from "isolated-vm";
import { HookdError } from "./contract/errors.ts";
import type { PluginManifest, PluginOptions, PluginSpec, RunError, RunOutcome, RunRequest } from "./contract/run.ts";
import { errorCodeOr } from "./contract/to-run-error.ts";
import { jsonProblem } from "./contract/json-guard.ts";
import { LAZY_URL_MARKER } from "./runtime/marker.ts";
import { baseLimits, DEFAULT_LOAD_TIMEOUT_MS, DEFAULT_MAX_HOST_CALLS_IN_FLIGHT, resolveLimits, runtimeLimits, type ResolvedLimits } from "./contract/limits.ts";
import { limitError, plainHostError, pluginError, type LimitReason } from "./run-errors.ts";
import { errorFromIsolate, type SourceMapper } from "./source-map.ts";

// Requests and replies are strings, which cross as they are: asking isolated-vm to copy them
// (its structured-clone path) costs more than the run itself.
const STRING_IN_PROMISED_STRING_OUT = { result: { promise: true } } as const;

/** Host calls an isolate makes, for a run in flight; `signal` aborts when the run ends. */
export type HostCallHandler = (op: string, args: unknown[], run: RunRequest, signal: AbortSignal) => Promise<unknown>;
/** One log line of a run; `chars` is the length of its JSON. */
export type HostLogHandler = (line: Record<string, unknown>, run: RunRequest, chars: number) => void;

export interface PluginIsolateOptions {
  spec: PluginSpec;
  bootstrapCode: string;
  /**
   * The values of the secrets the plugin declared, asked for once its top-level code said which
   * (in the sandbox process, from the daemon: the process holds no secret nobody declared).
   */
  secrets: (names: string[]) => Promise<Record<string, string | undefined>>;
  sourceMapper: SourceMapper;
  onHostCall: HostCallHandler;
  onLog: HostLogHandler;
  /** V8 lost control of this isolate: its memory and thread are gone for good. */
  onCatastrophe?: (message: string) => void;
}

type KillReason = LimitReason | "retired" | "closed";

/** One run in flight: settled once, by its result or by whatever ended the isolate first. */
interface LiveRun {
  request: RunRequest;
  started: number;
  cpuStart: bigint;
  wallTimer: NodeJS.Timeout;
  /** Made on the first host call that can be aborted (most runs never make one). */
  abort: AbortController | undefined;
  /** Host calls of the run waiting on the host now (bounded by `sandbox.maxHostCallsInFlight`). */
  hostCalls: number;
  /** The run's one host sleep for its timers (op "timer"), and how to say it was superseded. */
  sleep: NodeJS.Timeout | undefined;
  superseded: (() => void) | undefined;
  settle: (outcome: RunOutcome) => void;
}

/** One build of the isolate; a kill or a catastrophe ends it and a new one is built. */
interface Generation {
  isolate: ivm.Isolate;
  /** Rejects when the isolate is killed or lost, so nothing waits on it forever. */
  ended: Promise<never>;
  end: (reason: KillReason) => void;
  reason: KillReason | undefined;
  catastrophic: boolean;
}

/**
 * A host reply for a run that has ended: it never arrives, so no plugin code wakes up outside a
 * run. A new promise each time, so that what waits on it is collected with it.
 */
function never(): Promise<never> {
  return new Promise<never>(() => undefined);
}

export class PluginIsolate {
  readonly spec: PluginSpec;
  manifest: PluginManifest | undefined;
  /** Limits in force: the config's, overridden by the plugin's own `plugin({...})`. */
  limits: ResolvedLimits;
  /** Times the isolate was disposed to end a run (timeout, CPU, memory) and rebuilt. */
  kills = 0;
  private generation: Generation | undefined;
  private dispatch: ivm.Reference<(json: string) => Promise<string>> | undefined;
  private starting: Promise<PluginManifest> | undefined;
  private readonly live = new Map<string, LiveRun>();
  private readonly waiting: Array<() => void> = [];
  private pendingStarts = 0;
  private cpuTimer: NodeJS.Timeout | undefined;
  private retired = false;
  private drained: (() => void) | undefined;

  constructor(private readonly options: PluginIsolateOptions) {
    this.spec = options.spec;
    this.limits = baseLimits(options.spec.limits);
  }

  /** Builds the isolate and runs the plugin's top level; resolves with what it declared. */
  start(): Promise<PluginManifest> {
    this.starting ??= this.build().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  get runsInFlight(): number {
    return this.live.size;
  }

  async heapUsedBytes(): Promise<number | undefined> {
    const isolate = this.generation?.isolate;
    if (!isolate || isolate.isDisposed || this.generation?.reason) return undefined;
    return (await isolate.getHeapStatistics()).used_heap_size;
  }

  async run(request: RunRequest, payloadJson?: string): Promise<RunOutcome> {
    const started = performance.now();
    await this.acquireSlot();
    try {
      // A run queued before retire() still finishes on this version, rebuilding it if a
      // limit disposed the isolate meanwhile.
      if (!this.dispatch || this.generation?.reason) await this.start();
      return await this.runInIsolate(request, started, payloadJson ?? request.payloadJson ?? JSON.stringify(request.payload) ?? "null");
    } catch (error) {
      // The isolate could not be (re)built: the run fails and is retried later.
      const raw = error as { code?: unknown; message?: unknown };
      return fail(started, { code: errorCodeOr(raw?.code, "HOOKD_PLUGIN_LOAD"), message: typeof raw?.message === "string" ? raw.message : String(error) }, true);
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
    const firstBuild = this.manifest === undefined;
    try {
      let manifest = await this.evaluate(this.limits.memoryMb);
      let limits = resolveLimits(this.spec.limits, manifest.options, this.spec.file);
      // The heap limit is fixed when an isolate is created: a plugin that declares its own
      // memoryMb is evaluated once more in an isolate of that size (later rebuilds start there).
      if (firstBuild && limits.memoryMb !== this.limits.memoryMb) {
        this.limits = limits;
        manifest = await this.evaluate(limits.memoryMb);
        limits = resolveLimits(this.spec.limits, manifest.options, this.spec.file);
      }
      this.limits = limits;
      manifest.loadMs = performance.now() - started;
      this.manifest = manifest;
      return manifest;
    } catch (error) {
      this.kill("closed");
      throw error;
    }
  }

  /**
   * Creates an isolate and runs the runtime and the plugin's top level in it, within the load
   * time (`sandbox.loadTimeoutMs`): top-level code that loops or exhausts memory fails the load.
   */
  private async evaluate(memoryMb: number): Promise<PluginManifest> {
    this.kill("closed");
    const generation = this.newGeneration(memoryMb);
    const { isolate } = generation;
    // The config's load time, not the plugin's run time: a plugin that asks for short runs
    // still gets the usual time to be built again on a busy machine.
    const deadline = setTimeout(() => this.endGeneration(generation, "timeout"), this.loadBudgetMs);
    const step = <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, generation.ended]);
    try {
      const context = await step(isolate.createContext());
      const hostRef = new ivm.Reference(this.hostCall);
      const syncRef = new ivm.Reference(this.syncHostCall);
      // The runtime is compiled from V8's code cache after the first isolate of the process: it
      // is evaluated in every isolate, and compiling it is most of an isolate's start-up.
      const source = runtimeSource(this.runtimeCode[0]);
      const cached = runtimeCache.data;
      const runtimeScript = (await step(isolate.compileScript(source, cached ? { cachedData: cached } : { produceCachedData: true }))) as ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer>; cachedDataRejected?: boolean };
      if (cached === undefined || runtimeScript.cachedDataRejected === true) {
        const fresh = cached === undefined ? runtimeScript : ((await step(isolate.compileScript(source, { produceCachedData: true }))) as typeof runtimeScript);
        runtimeCache.data = fresh.cachedData;
      }
      const install = (await step(runtimeScript.run(context, { reference: true }))) as ivm.Reference<(...args: unknown[]) => unknown>;
      const runtime = (await step(
        // The heap limit doubles as the budget of WebAssembly memories, which V8 keeps off the heap.
        install.apply(undefined, [hostRef, memoryMb, syncRef], { result: { reference: true } }),
      )) as ivm.Reference<{ dispatch: (json: string) => Promise<string>; finishLoading: () => string; setSecrets: (json: string) => void }>;
      const script = await step(isolate.compileScript(this.spec.code, { filename: scriptFilename(this.spec) }));
      try {
        await step(script.run(context));
      } catch (error) {
        throw generation.reason ? this.loadLimitError(generation) : errorFromIsolate(error, this.spec, this.options.sourceMapper, "HOOKD_PLUGIN_LOAD");
      }
      const finishLoading = (await step(runtime.get("finishLoading", { reference: true }))) as ivm.Reference<() => string>;
      const declared = JSON.parse((await step(finishLoading.apply(undefined, [], { result: { copy: true } }))) as string) as {
        events: string[];
        actions: string[];
        options: PluginOptions;
        actionInputs?: Record<string, unknown>;
      };
      // Secrets go in only now that the plugin has said which ones it needs.
      const names = (Array.isArray(declared.options.secrets) ? declared.options.secrets : []).filter((name): name is string => typeof name === "string");
      const declaredSecrets = names.length === 0 ? {} : await step(this.options.secrets(names));
      const setSecrets = (await step(runtime.get("setSecrets", { reference: true }))) as ivm.Reference<(json: string) => void>;
      await step(setSecrets.apply(undefined, [JSON.stringify(declaredSecrets)], { arguments: { copy: true } }));
      this.dispatch = (await step(runtime.get("dispatch", { reference: true }))) as ivm.Reference<(json: string) => Promise<string>>;
      return { ...declared, loadMs: 0 };
    } catch (error) {
      this.endGeneration(generation, generation.reason ?? "closed");
      if (generation.reason && generation.reason !== "closed" && generation.reason !== "retired") throw this.loadLimitError(generation);
      throw error;
    } finally {
      clearTimeout(deadline);
    }
  }

  private get loadBudgetMs(): number {
    return this.spec.limits.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
  }

  private loadLimitError(generation: Generation): HookdError {
    const reason = generation.reason as LimitReason;
    const limits = reason === "timeout" ? { ...this.limits, timeoutMs: this.loadBudgetMs } : this.limits;
    const detail = limitError(reason, limits).message.replace(/^run /, "");
    return new HookdError("HOOKD_PLUGIN_LOAD", [this.spec.file, `its top-level code ${detail}`]);
  }

  private newGeneration(memoryMb: number): Generation {
    let end!: (reason: KillReason) => void;
    const generation = {} as Generation;
    generation.ended = new Promise<never>((_, reject) => {
      end = (reason) => {
        if (generation.reason) return;
        generation.reason = reason;
        reject(new Error(`isolate ended: ${reason}`));
      };
    });
    generation.ended.catch(() => undefined);
    generation.end = end;
    generation.reason = undefined;
    generation.catastrophic = false;
    generation.isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      onCatastrophicError: (message) => this.catastrophe(generation, message),
    });
    this.generation = generation;
    this.dispatch = undefined;
    return generation;
  }

  private async runInIsolate(request: RunRequest, started: number, payloadJson: string): Promise<RunOutcome> {
    const generation = this.generation!;
    const dispatch = this.dispatch!;
    let settle!: (outcome: RunOutcome) => void;
    const outcome = new Promise<RunOutcome>((resolve) => (settle = resolve));
    const live: LiveRun = {
      request,
      started,
      cpuStart: cpuTimeOf(generation.isolate),
      wallTimer: setTimeout(() => this.limitExceeded(generation, live, "timeout"), this.limits.timeoutMs),
      abort: undefined,
      hostCalls: 0,
      sleep: undefined,
      superseded: undefined,
      settle: (result) => {
        if (!this.live.delete(request.runId)) return;
        clearTimeout(live.wallTimer);
        // A pending timer dies with its run: its sleep never answers.
        clearTimeout(live.sleep);
        live.abort?.abort();
        if (this.live.size === 0) this.stopCpuWatch();
        settle(result);
      },
    };
    this.live.set(request.runId, live);
    this.watchCpu();

    // The payload is spliced in as text: it may arrive as JSON already, and is never parsed here.
    const { payload: _payload, payloadJson: _payloadJson, ...rest } = request;
    const payload = `{"payload":${payloadJson},${JSON.stringify({ ...rest, limits: runtimeLimits(this.limits, this.spec.limits.maxHostCallsInFlight) }).slice(1)}`;
    try {
      dispatch.apply(undefined, [payload], STRING_IN_PROMISED_STRING_OUT).then(
        (reply) => live.settle(this.readReply(reply, started)),
        (error: unknown) => live.settle(this.classifyRejection(generation, live, error)),
      );
    } catch (error) {
      live.settle(this.classifyRejection(generation, live, error));
    }
    return outcome;
  }

  /** The runtime's answer; a plugin that subverted its own runtime gets a failed run, nothing more. */
  private readReply(reply: unknown, started: number): RunOutcome {
    let parsed: { ok?: unknown; retriable?: unknown; error?: unknown };
    try {
      parsed = JSON.parse(String(reply)) as typeof parsed;
    } catch {
      parsed = {};
    }
    if (parsed === null || typeof parsed !== "object" || typeof parsed.ok !== "boolean") {
      return fail(started, { code: "HOOKD_RUN_FAILED", message: "the plugin's runtime returned a malformed result (were built-ins replaced?)" }, true);
    }
    if (parsed.ok) return { ok: true, durationMs: performance.now() - started };
    const error = pluginError(parsed.error, this.spec, this.options.sourceMapper, this.limits);
    const retriable = parsed.retriable !== false && error.code !== "HOOKD_RUN_STACK_OVERFLOW";
    return fail(started, error, retriable);
  }

  private classifyRejection(generation: Generation, live: LiveRun, error: unknown): RunOutcome {
    // isolated-vm disposes an isolate that reached its heap limit by itself.
    if (!generation.reason && (generation.isolate.isDisposed || isMemoryError(error))) {
      this.limitExceeded(generation, live, "memory");
      return fail(live.started, limitError("memory", this.limits), true);
    }
    if (generation.reason) return fail(live.started, { code: "HOOKD_RUN_ABORTED", message: `the isolate was disposed (${generation.reason}) while the run was in flight` }, true);
    return fail(live.started, pluginError(error, this.spec, this.options.sourceMapper, this.limits), true);
  }

  /**
   * A run exceeded a limit: it fails with that limit's code, the isolate is disposed, and any
   * other run of this plugin in the same isolate fails with HOOKD_RUN_NEIGHBOUR_LIMIT: the culprit
   * is known, so the others are retried with their attempt given back (core/delivery).
   */
  private limitExceeded(generation: Generation, culprit: LiveRun, reason: LimitReason): void {
    if (generation.reason || this.generation !== generation) return;
    this.kills++;
    // Neither a lost isolate nor a subverted runtime's flood of host calls goes better on a retry.
    culprit.settle(fail(culprit.started, limitError(reason, this.limits), reason !== "catastrophic" && reason !== "hostCalls"));
    this.endGeneration(generation, reason);
    for (const other of [...this.live.values()]) {
      other.settle(
        fail(
          other.started,
          {
            code: "HOOKD_RUN_NEIGHBOUR_LIMIT",
            message: `the isolate was disposed because run ${culprit.request.runId} of the same plugin exceeded a limit (${reason}): this run goes again, its attempt given back`,
          },
          true,
        ),
      );
    }
  }

  /** V8 lost this isolate: every run in it fails now; the owner replaces the process. */
  private catastrophe(generation: Generation, message: string): void {
    if (generation.catastrophic) return;
    generation.catastrophic = true;
    if (this.generation === generation) {
      this.kills++;
      this.dispatch = undefined;
      const inFlight = [...this.live.values()];
      if (inFlight.length === 1) {
        // The only run in the isolate is the culprit: retrying would take down another the same way.
        inFlight[0]!.settle(fail(inFlight[0]!.started, limitError("catastrophic", this.limits), false));
      } else {
        // Which of several concurrent runs exhausted the heap is unknowable: each fails as a lost
        // sandbox, so the dispatcher runs them again one at a time (crash suspects, attempt
        // refunded) and only the one that does it again alone is charged and dead-lettered.
        for (const live of inFlight) {
          live.settle(
            fail(
              live.started,
              {
                code: "HOOKD_SANDBOX_CRASHED",
                message: `the isolate was lost to an out-of-memory V8 cannot recover from, with ${inFlight.length} runs in flight; each runs again alone`,
              },
              true,
            ),
          );
        }
      }
    }
    generation.end("catastrophic");
    this.stopCpuWatch();
    this.options.onCatastrophe?.(message);
  }

  private endGeneration(generation: Generation, reason: KillReason): void {
    generation.end(reason);
    if (this.generation === generation) this.dispatch = undefined;
    // An isolate V8 gave up on is left alone: disposing it would wait on a thread that never returns.
    if (reason !== "catastrophic" && !generation.isolate.isDisposed) generation.isolate.dispose();
  }

  /** Samples the isolate's CPU clock while runs are in flight. */
  private watchCpu(): void {
    if (this.cpuTimer) return;
    const every = Math.max(5, Math.min(50, Math.floor(this.limits.cpuTimeMs / 4)));
    this.cpuTimer = setInterval(() => {
      const generation = this.generation;
      if (!generation || generation.reason || generation.isolate.isDisposed) return;
      const now = cpuTimeOf(generation.isolate);
      const limit = BigInt(this.limits.cpuTimeMs) * 1_000_000n;
      // Runs of one isolate take turns on its thread, so the oldest run's share is the largest.
      for (const live of this.live.values()) {
        if (now - live.cpuStart > limit) {
          this.limitExceeded(generation, live, "cpu");
          return;
        }
      }
    }, every);
    this.cpuTimer.unref();
  }

  private stopCpuWatch(): void {
    clearInterval(this.cpuTimer);
    this.cpuTimer = undefined;
  }

  /** The one host function an isolate can call; it never throws into the isolate. */
  private readonly hostCall = (op: unknown, json: unknown): Promise<string> | undefined => {
    try {
      if (typeof op !== "string" || typeof json !== "string") return reply({ code: "HOOKD_HOST_CALL_INVALID", message: "host calls take two strings", retriable: false });
      const problem = jsonProblem(json);
      const runId = problem ? runIdOf(json) : undefined;
      let parsed: { runId?: unknown; args?: unknown } & Record<string, unknown> = {};
      if (!problem) parsed = JSON.parse(json) as typeof parsed;
      const live = this.live.get(String(problem ? runId : parsed.runId));
      if (op === "log") {
        if (live) {
          const line = problem ? { level: "warn", msg: `log line dropped: ${problem}`, fields: { code: "HOOKD_HOST_CALL_INVALID" } } : parsed;
          this.options.onLog(line, live.request, json.length);
        }
        return undefined;
      }
      if (!live) return never();
      if (problem) return reply({ code: "HOOKD_HOST_CALL_INVALID", message: `${op}: ${problem}`, retriable: false });
      if (op === "timer") return this.sleep(live, parsed.args);
      const still = () => this.live.get(live.request.runId) === live;
      // The runtime keeps a run's calls under the limit; past it, the runtime was subverted and the
      // isolate goes, so that its flood stops costing the sandbox process memory.
      if (live.hostCalls >= (this.spec.limits.maxHostCallsInFlight ?? DEFAULT_MAX_HOST_CALLS_IN_FLIGHT)) {
        if (this.generation) this.limitExceeded(this.generation, live, "hostCalls");
        return never();
      }
      live.hostCalls++;
      live.abort ??= new AbortController();
      return this.options.onHostCall(op, Array.isArray(parsed.args) ? parsed.args : [], live.request, live.abort.signal).then(
        // `value` left out when undefined: `ctx.kv.get` of a missing key is undefined, not null.
        (value) => (live.hostCalls--, still() ? JSON.stringify({ ok: true, value }) : never()),
        (error: unknown) => (live.hostCalls--, still() ? JSON.stringify({ ok: false, error: plainHostError(error) }) : never()),
      );
    } catch {
      return reply({ code: "HOOKD_HOST_CALL_INVALID", message: "malformed host call", retriable: false });
    }
  };

  /**
   * The run's timers wake it through one sleep at a time: a new one supersedes the last (which
   * answers false at once), and the run's end clears it without an answer, so no timer fires
   * outside its run. Not counted as a host call in flight: a run has at most two.
   */
  private sleep(live: LiveRun, args: unknown): Promise<string> {
    const ms = Math.min(Math.max(Number(Array.isArray(args) ? args[0] : 0) || 0, 0), 2 ** 31 - 1);
    clearTimeout(live.sleep);
    live.superseded?.();
    return new Promise<string>((resolve) => {
      live.superseded = () => resolve('{"ok":true,"value":false}');
      live.sleep = setTimeout(() => {
        live.sleep = undefined;
        live.superseded = undefined;
        if (this.live.get(live.request.runId) === live) resolve('{"ok":true,"value":true}');
      }, ms);
    });
  }

  /** The runtime, and the code it evaluates on first use (URL), split at the bundle's marker once. */
  private get runtimeCode(): [string, string] {
    if (!this.splitRuntime) {
      const code = this.options.bootstrapCode;
      const at = code.indexOf(LAZY_URL_MARKER);
      this.splitRuntime = at < 0 ? [code, ""] : [code.slice(0, at), code.slice(at + LAZY_URL_MARKER.length)];
    }
    return this.splitRuntime;
  }
  private splitRuntime: [string, string] | undefined;

  /**
   * The synchronous host function: random bytes for crypto.getRandomValues (at most 64 KiB a
   * call, as Web Crypto says), and the URL code the first time a plugin touches URL.
   */
  private readonly syncHostCall = (op: unknown, n: unknown): string => {
    if (op === "url") return this.runtimeCode[1];
    const size = Number(n);
    if (op !== "random" || !Number.isInteger(size) || size < 0 || size > 65_536) throw new Error("invalid synchronous host call");
    return randomBytes(size).toString("base64");
  };

  private acquireSlot(): Promise<void> {
    if (this.live.size + this.pendingStarts < this.limits.maxConcurrentRuns) {
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

  private releaseSlot(): void {
    this.pendingStarts--;
    const next = this.waiting.shift();
    if (next) next();
    else if (this.retired && this.idle) this.drained?.();
  }

  /** No run in flight, starting, or queued for a slot. */
  private get idle(): boolean {
    return this.live.size === 0 && this.pendingStarts === 0 && this.waiting.length === 0;
  }

  private kill(reason: KillReason): void {
    const generation = this.generation;
    if (generation && !generation.reason) this.endGeneration(generation, reason);
    this.dispatch = undefined;
  }
}


/** V8's code cache of the runtime script, for the runtime this process evaluates. */
const runtimeCache: { source?: string; data?: ivm.ExternalCopy<ArrayBuffer> } = {};

/**
 * The runtime as a script whose value is its install function; wrapped in a function, so that
 * the bundle's top-level name stays out of the plugin's global scope.
 */
function runtimeSource(code: string): string {
  if (runtimeCache.source !== code) {
    runtimeCache.source = code;
    runtimeCache.data = undefined;
  }
  return `(function () {\n${code}\nreturn (host, memoryMb, syncHost) => {\n  const d = __hookdRuntime.install(host, memoryMb, syncHost);\n  return { dispatch: d, finishLoading: d.finishLoading, setSecrets: d.setSecrets };\n};\n})()`;
}

function fail(started: number, error: RunError, retriable: boolean): RunOutcome {
  return { ok: false, durationMs: performance.now() - started, retriable, error };
}

function reply(error: { code: string; message: string; retriable?: false }): Promise<string> {
  return Promise.resolve(JSON.stringify({ ok: false, error }));
}

/** The run id of a host call too large or too deep to parse: it leads the JSON the runtime writes. */
function runIdOf(json: string): string | undefined {
  return /^\{"runId":"([^"\\]{1,100})"/.exec(json)?.[1];
}

/** The isolate's CPU clock; 0 once it is gone. */
function cpuTimeOf(isolate: ivm.Isolate): bigint {
  try {
    return isolate.cpuTime;
  } catch {
    return 0n;
  }
}

function isMemoryError(error: unknown): boolean {
  return error instanceof Error && /memory limit|out of memory|allocation failed/i.test(error.message);
}

/** The name stack frames carry; the source mapper turns it back into the plugin's .ts path. */
export function scriptFilename(spec: PluginSpec): string {
  return `hookd-plugin://${spec.plugin}@${spec.version}.js`;
}
