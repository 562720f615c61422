/**
 * One sandbox process as the daemon sees it: starts sandbox/worker.ts with a socket on its fd 3
 * (sandbox/channel.ts), matches its answers to loads and runs, and serves its host calls (kv,
 * emit, fetch) from the daemon's services. When it exits, its runs in flight fail with HOOKD_SANDBOX_CRASHED and its loads
 * reject; the supervisor decides what comes next.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Duplex } from "node:stream";
import { existsSync } from "node:fs";
import path from "node:path";
import { HookdError } from "./contract/errors.ts";
import { fetchPolicy, type FetchPolicy } from "./contract/fetch.ts";
import { isDaemonCall, serveDaemonCall, type DaemonCallName, type HostCallArgs, type HostServices } from "./contract/host-calls.ts";
import { COMPILED, ownFile, PACKAGE_ROOT } from "./contract/locate.ts";
import type { HeapUsage, PluginManifest, PluginSpec, RunMeta, RunOutcome, RunRequest } from "./contract/run.ts";
import { errorCodeOr } from "./contract/to-run-error.ts";
import { daemonCodec, LineChannel } from "./channel.ts";
import { checkHostCall, type RunUsage } from "./host-calls/index.ts";
import { baseLimits, resolveLimits, type ResolvedLimits } from "./contract/limits.ts";
import { Heartbeat, type HeartbeatSettings } from "./heartbeat.ts";
import type { FromSandbox, ToSandbox } from "./protocol.ts";
import { runtimeBootstrapCode } from "./runtime/build.ts";
import { SecretResolver } from "./secrets.ts";
import { sandboxCommand, type WallMode, type WallStatus } from "./wall.ts";

const WORKER = workerFile();

export interface SandboxProcessOptions {
  services: HostServices;
  secrets: Record<string, string | undefined>;
  /** The kernel wall around the process (sandbox/wall.ts); default "auto". */
  wall?: WallMode | undefined;
  onExit: (process: SandboxProcess, reason: string) => void;
  /** An isolate in this process was lost for good; the process should be replaced. */
  onCatastrophe: (process: SandboxProcess, info: { plugin: string; version: number; message: string }) => void;
}

interface PendingLoad {
  spec: PluginSpec;
  resolve: (manifest: PluginManifest) => void;
  reject: (error: unknown) => void;
}

export class SandboxProcess {
  readonly child: ChildProcess;
  /** Resolves once the worker said it is ready; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** An isolate in it was lost: it must not outlive its replacement. */
  tainted = false;
  /** Plugin versions loaded in it (`plugin@version`). */
  readonly loadedKeys = new Set<string>();
  private readonly outbox: LineChannel<FromSandbox, ToSandbox>;
  private readonly loads = new Map<string, PendingLoad>();
  private readonly runs = new Map<string, (outcome: RunOutcome) => void>();
  /**
   * The daemon's own record of each run in flight here: the version and meta it was sent with,
   * what its host calls used of its budgets. Its end aborts the run's fetches.
   */
  // `ended` is made on a run's first host call only: an AbortController's abort() builds a
  // DOMException with its stack, which was 5% of the daemon's CPU when every run made one.
  private readonly runRecords = new Map<string, { plugin: string; version: number; meta: RunMeta; usage: RunUsage; ended?: AbortController }>();
  /** Each loaded version's limits and fetch policy, from the spec sent and the manifest its load reported. */
  private readonly versions = new Map<string, { limits: ResolvedLimits; fetchPolicy: FetchPolicy }>();
  private readonly unloads = new Map<string, () => void>();
  private readonly heapRequests = new Map<number, (usage: HeapUsage[]) => void>();
  private nextHeapRequest = 1;
  private exitReason: string | undefined;
  private idleWaiter: (() => void) | undefined;
  private heartbeat: Heartbeat | undefined;
  /** Why the process was declared hung (it is being killed), once it was. */
  hungReason: string | undefined;
  /** What stands around this process besides its isolates. */
  readonly wall: WallStatus;
  /** Secrets stay in the daemon; the process gets a plugin's declared ones when its load asks. */
  private readonly secrets: SecretResolver;
  /** The names each plugin version declared the first time it asked: a later ask gets no others. */
  private readonly declaredSecrets = new Map<string, Set<string>>();

  constructor(private readonly options: SandboxProcessOptions) {
    // Throws HOOKD_SANDBOX_WALL_UNAVAILABLE when the wall is required and cannot be built.
    const command = sandboxCommand({ worker: WORKER, mode: options.wall ?? "auto" });
    this.wall = command.wall;
    this.secrets = new SecretResolver({ configured: options.secrets, environment: process.env });
    // The environment is the wall's (locale and time zone), never the daemon's: no HOOKD_*, no secrets.
    const child = spawn(command.command, command.args, {
      stdio: ["ignore", "inherit", "inherit", "pipe"],
      env: command.env,
    });
    this.child = child;
    let ready!: () => void;
    this.ready = new Promise<void>((resolve, reject) => {
      const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null) =>
        reject(new HookdError("HOOKD_SANDBOX_UNAVAILABLE", [], { message: `the sandbox process exited at start (${signal ?? code})` }));
      child.once("exit", onEarlyExit);
      ready = () => {
        child.off("exit", onEarlyExit);
        resolve();
      };
    });
    this.outbox = new LineChannel(child.stdio[3] as Duplex, daemonCodec, (message) => {
      if (message.t === "ready") ready();
      else this.handle(message);
    });
    // The runtime is bundled here, once per daemon: esbuild is a child process, which the
    // sandbox process may not start. Loads sent meanwhile wait for it in the worker.
    runtimeBootstrapCode().then(
      (bootstrapCode) => this.outbox.send({ t: "init", bootstrapCode }),
      (error: unknown) => {
        console.error("hookd: the in-isolate runtime does not build", error);
        child.kill("SIGKILL");
      },
    );
    this.ready.catch(() => undefined);
    child.once("exit", (code, signal) => this.onExit(signal ?? String(code)));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitReason === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get runsInFlight(): number {
    return this.runs.size;
  }

  /** Pings in a row the process left unanswered so far (0 while it answers or is not watched). */
  get missedBeats(): number {
    return this.heartbeat?.missed ?? 0;
  }

  /** Resident memory in the latest heartbeat answer (0 before the first), and how many answers came. */
  get memory(): { rssBytes: number; answers: number } {
    return { rssBytes: this.heartbeat?.rssBytes ?? 0, answers: this.heartbeat?.answers ?? 0 };
  }

  holdsRun(runId: string): boolean {
    return this.runs.has(runId);
  }

  /**
   * Watches the process's event loop (sandbox/heartbeat.ts). A process that misses its beats is
   * hung: its runs fail now with HOOKD_SANDBOX_UNRESPONSIVE (retriable; the dispatcher runs them
   * again as crash suspects) and it is killed, which the owner sees as an exit.
   */
  watch(
    settings: () => HeartbeatSettings,
    onMemoryHigh: (info: { rssBytes: number; limitMb: number }) => void,
    onHung?: (info: { missed: number; intervalMs: number; runs: number }) => void,
  ): void {
    this.heartbeat?.stop();
    this.heartbeat = new Heartbeat(settings, {
      ping: (seq) => this.outbox.send({ t: "ping", seq }),
      onMemoryHigh,
      onHung: (info) => {
        const runs = this.runs.size;
        this.declareHung(info.missed, info.intervalMs);
        onHung?.({ ...info, runs });
      },
    });
    this.heartbeat.start();
  }

  private declareHung(missed: number, intervalMs: number): void {
    if (!this.alive || this.hungReason) return;
    const message = `the sandbox process stopped answering (${missed} heartbeats of ${intervalMs} ms missed) while the run was in flight; it was restarted`;
    this.hungReason = `${missed} heartbeats of ${intervalMs} ms missed`;
    const outcome: RunOutcome = { ok: false, retriable: true, durationMs: 0, error: { code: "HOOKD_SANDBOX_UNRESPONSIVE", message } };
    // Failed before the kill, so that they carry this code rather than the exit's.
    for (const resolve of this.runs.values()) resolve(outcome);
    this.runs.clear();
    this.idleWaiter?.();
    this.child.kill("SIGKILL");
  }

  load(spec: PluginSpec): Promise<PluginManifest> {
    if (!this.alive) return Promise.reject(new HookdError("HOOKD_SANDBOX_CRASHED", [this.exitReason ?? "exited"]));
    const key = keyOf(spec.plugin, spec.version);
    return new Promise<PluginManifest>((resolve, reject) => {
      this.loads.set(key, { spec, resolve, reject });
      this.outbox.send({ t: "load", spec });
    });
  }

  unload(plugin: string, version: number): Promise<void> {
    const key = keyOf(plugin, version);
    this.loadedKeys.delete(key);
    this.versions.delete(key);
    this.declaredSecrets.delete(key);
    if (!this.alive) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.unloads.set(key, resolve);
      this.outbox.send({ t: "unload", plugin, version });
    });
  }

  run(request: RunRequest): Promise<RunOutcome> {
    if (!this.alive) {
      return Promise.resolve({ ok: false, retriable: true, durationMs: 0, error: { code: "HOOKD_SANDBOX_UNAVAILABLE", message: "the sandbox process is not running" } });
    }
    return new Promise((resolve) => {
      this.runs.set(request.runId, resolve);
      this.runRecords.set(request.runId, { plugin: request.plugin, version: request.version, meta: request.meta, usage: { emits: 0 } });
      const { payload, payloadJson, ...rest } = request;
      this.outbox.send({ t: "run", request: rest, payload: payloadJson ?? JSON.stringify(payload) ?? "null" });
    });
  }

  /** Heap in use per plugin version; empty when the process is gone or does not answer in time. */
  heapUsage(timeoutMs = 1000): Promise<HeapUsage[]> {
    if (!this.alive) return Promise.resolve([]);
    const requestId = this.nextHeapRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.heapRequests.delete(requestId);
        resolve([]);
      }, timeoutMs);
      this.heapRequests.set(requestId, (usage) => {
        clearTimeout(timer);
        resolve(usage);
      });
      this.outbox.send({ t: "heap", requestId });
    });
  }

  /** Resolves once no run is in flight (or the process is gone). */
  idle(): Promise<void> {
    if (this.runs.size === 0 || !this.alive) return Promise.resolve();
    return new Promise((resolve) => (this.idleWaiter = resolve));
  }

  /** Asks the process to end (it exits once disconnected); SIGKILL after `graceMs`. */
  async close(graceMs = 3000): Promise<void> {
    const child = this.child;
    if (!this.alive) return;
    // Ending on purpose: a slow goodbye is not a hang (SIGKILL after graceMs bounds it anyway).
    this.heartbeat?.stop();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // The worker exits when its end of the socket closes.
    this.outbox.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.alive) this.child.kill("SIGKILL");
  }

  private handle(message: FromSandbox): void {
    switch (message.t) {
      case "loaded":
      case "loadFailed": {
        const key = keyOf(message.plugin, message.version);
        const pending = this.loads.get(key);
        this.loads.delete(key);
        if (message.t === "loaded") {
          this.loadedKeys.add(key);
          if (pending) this.versions.set(key, loadedVersion(pending.spec, message.manifest));
          pending?.resolve(message.manifest);
        } else pending?.reject(message.error);
        return;
      }
      case "unloaded": {
        const key = keyOf(message.plugin, message.version);
        this.unloads.get(key)?.();
        this.unloads.delete(key);
        return;
      }
      case "heap":
        this.heapRequests.get(message.requestId)?.(message.usage);
        this.heapRequests.delete(message.requestId);
        return;
      case "result": {
        const resolve = this.runs.get(message.runId);
        this.runs.delete(message.runId);
        this.endFetches(message.runId);
        resolve?.(message.outcome);
        if (this.runs.size === 0) this.idleWaiter?.();
        return;
      }
      case "log":
        this.options.services.log(message.record);
        return;
      case "hostCall":
        void this.reply(message.callId, () => this.serveHostCall(message.name, message.plugin, message.runId, message.args));
        return;
      case "secrets":
        void this.reply(message.callId, async () => this.declaredSecretValues(message.plugin, message.version, message.names));
        return;
      case "pong":
        this.heartbeat?.answer(message.seq, message.rss);
        return;
      case "catastrophe":
        this.tainted = true;
        this.options.onCatastrophe(this, { plugin: message.plugin, version: message.version, message: message.message });
        return;
      case "ready":
        return;
    }
  }

  private async reply(callId: number, serve: () => Promise<unknown>): Promise<void> {
    try {
      this.outbox.send({ t: "hostReply", callId, ok: true, value: await serve() });
    } catch (error) {
      const raw = error as { code?: unknown; message?: unknown; issues?: unknown };
      this.outbox.send({
        t: "hostReply",
        callId,
        ok: false,
        error: {
          code: errorCodeOr(raw?.code, "HOOKD_RUN_FAILED"),
          message: typeof raw?.message === "string" ? raw.message : String(error),
          ...(Array.isArray(raw?.issues) ? { issues: raw.issues } : {}),
        },
      });
    }
  }

  /**
   * A daemon call of a run this process was sent and has not finished. The process names the run
   * and its plugin (which must match): the caller (version, meta, limits, fetch policy) comes
   * from this side's own records, and the call's checks run again here on arguments the process
   * could have forged.
   */
  private serveHostCall(name: unknown, plugin: unknown, runId: unknown, raw: unknown): Promise<unknown> {
    if (!isDaemonCall(name)) throw new HookdError("HOOKD_HOST_CALL_UNKNOWN", [String(name)]);
    const record = typeof runId === "string" ? this.runRecords.get(runId) : undefined;
    const run = record && record.plugin === plugin ? record : undefined;
    const loaded = run ? this.versions.get(keyOf(run.plugin, run.version)) : undefined;
    if (!run || !loaded) {
      if (name === "fetch") {
        const url = Array.isArray(raw) ? String(raw[0]) : "";
        throw new HookdError("HOOKD_FETCH_NOT_ALLOWED", [url, "nothing"], { message: `fetch to ${url} refused: no run of plugin ${String(plugin)} is in flight here under that id` });
      }
      throw new HookdError("HOOKD_HOST_CALL_INVALID", [name, "no run is in flight here under that id"]);
    }
    const call = checkHostCall(name, Array.isArray(raw) ? raw : [], { limits: loaded.limits, usage: run.usage });
    const caller = {
      plugin: run.plugin,
      version: run.version,
      runId: runId as string,
      meta: run.meta,
      kvMaxKeys: loaded.limits.kvMaxKeys,
      fetchPolicy: loaded.fetchPolicy,
      signal: (run.ended ??= new AbortController()).signal,
    };
    return serveDaemonCall(this.options.services, name, caller, call.args as HostCallArgs<DaemonCallName>);
  }

  private endFetches(runId: string): void {
    this.runRecords.get(runId)?.ended?.abort();
    this.runRecords.delete(runId);
  }

  /**
   * The values of the secrets a plugin version declared, for a version this process is loading
   * or has loaded. A process taken over by an escaped plugin can still ask in the name of the
   * plugins it hosts, but only for the names each declared first, resolved by the plugin rules
   * of sandbox/secrets.ts (never another plugin's scoped secret, never a HOOKD_* variable).
   */
  private declaredSecretValues(plugin: string, version: unknown, names: unknown): Record<string, string | undefined> {
    const key = keyOf(plugin, Number(version));
    if (!this.loads.has(key) && !this.loadedKeys.has(key)) throw new HookdError("HOOKD_HOST_CALL_INVALID", ["secrets", `${key} is not loading here`]);
    const asked = Array.isArray(names) ? names.filter((name): name is string => typeof name === "string") : [];
    let declared = this.declaredSecrets.get(key);
    if (!declared) this.declaredSecrets.set(key, (declared = new Set(asked)));
    const values: Record<string, string | undefined> = {};
    for (const name of asked) if (declared.has(name)) values[name] = this.secrets.resolve(plugin, name);
    return values;
  }

  private onExit(reason: string): void {
    this.exitReason = reason;
    this.heartbeat?.stop();
    this.outbox.discard();
    const crashed: RunOutcome = {
      ok: false,
      retriable: true,
      durationMs: 0,
      error: { code: "HOOKD_SANDBOX_CRASHED", message: `the sandbox process exited (${reason}) while the run was in flight` },
    };
    for (const resolve of this.runs.values()) resolve(crashed);
    this.runs.clear();
    for (const runId of [...this.runRecords.keys()]) this.endFetches(runId);
    this.idleWaiter?.();
    for (const pending of this.loads.values()) pending.reject(new HookdError("HOOKD_SANDBOX_CRASHED", [reason]));
    this.loads.clear();
    for (const resolve of this.unloads.values()) resolve();
    this.unloads.clear();
    this.options.onExit(this, reason);
  }
}

function keyOf(plugin: string, version: number): string {
  return `${plugin}@${version}`;
}

/**
 * The worker the sandbox process runs: the compiled one. Run from the sources (vitest), the
 * daemon still starts the built dist/sandbox/worker.js when there is one (`npm test` builds
 * first): Node 26 strips types but cannot transform the TypeScript hookd uses (parameter
 * properties), and tsx would start an esbuild child the permission model forbids. Without a
 * build, Node 24 runs worker.ts with its own type transform (sandbox/wall.ts).
 */
function workerFile(): string {
  if (COMPILED) return ownFile(import.meta.url, "./worker.ts");
  const built = path.join(PACKAGE_ROOT, "dist", "sandbox", "worker.js");
  return existsSync(built) ? built : ownFile(import.meta.url, "./worker.ts");
}

/** A loaded version's limits and fetch policy, worked out once from what the daemon sent and what the load reported. */
function loadedVersion(spec: PluginSpec, manifest: PluginManifest): { limits: ResolvedLimits; fetchPolicy: FetchPolicy } {
  let limits;
  try {
    limits = resolveLimits(spec.limits, manifest.options, spec.file);
  } catch {
    // The load would have failed with this; the config's limits are the safe reading.
    limits = baseLimits(spec.limits);
  }
  return { limits, fetchPolicy: fetchPolicy(limits, manifest.options) };
}

