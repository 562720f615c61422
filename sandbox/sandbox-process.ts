/**
 * One sandbox process as the daemon sees it: starts sandbox/worker.ts with a socket on its fd 3
 * (sandbox/channel.ts), matches its answers to loads and runs, and serves its host calls (kv,
 * emit) from the daemon's services. When it exits, its runs in flight fail with HOOKD_SANDBOX_CRASHED and its loads
 * reject; the supervisor decides what comes next.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Duplex } from "node:stream";
import { HookdError } from "../core/errors.ts";
import { COMPILED, ownFile } from "../core/locate.ts";
import type { RunOutcome } from "../core/store/types.ts";
import { daemonCodec, LineChannel } from "./channel.ts";
import type { FromSandbox, HeapUsage, HostServices, PluginManifest, PluginSpec, RunRequest, ToSandbox } from "./protocol.ts";

const WORKER = ownFile(import.meta.url, "./worker.ts");
// Compiled, the worker is plain JavaScript; from the sources (vitest) it needs a TypeScript loader.
const LOADER: string[] = COMPILED ? [] : ["--import", import.meta.resolve("tsx")];

export interface SandboxProcessOptions {
  services: HostServices;
  secrets: Record<string, string | undefined>;
  onExit: (process: SandboxProcess, reason: string) => void;
  /** An isolate in this process was lost for good; the process should be replaced. */
  onCatastrophe: (process: SandboxProcess, info: { plugin: string; version: number; message: string }) => void;
}

interface PendingLoad {
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
  private readonly unloads = new Map<string, () => void>();
  private readonly heapRequests = new Map<number, (usage: HeapUsage[]) => void>();
  private nextHeapRequest = 1;
  private exitReason: string | undefined;
  private idleWaiter: (() => void) | undefined;

  constructor(private readonly options: SandboxProcessOptions) {
    const child = spawn(process.execPath, ["--no-node-snapshot", ...LOADER, WORKER], {
      stdio: ["ignore", "inherit", "inherit", "pipe"],
      env: process.env,
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
    this.outbox.send({ t: "init", secrets: options.secrets });
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

  load(spec: PluginSpec): Promise<PluginManifest> {
    if (!this.alive) return Promise.reject(new HookdError("HOOKD_SANDBOX_CRASHED", [this.exitReason ?? "exited"]));
    const key = keyOf(spec.plugin, spec.version);
    return new Promise<PluginManifest>((resolve, reject) => {
      this.loads.set(key, { resolve, reject });
      this.outbox.send({ t: "load", spec });
    });
  }

  unload(plugin: string, version: number): Promise<void> {
    const key = keyOf(plugin, version);
    this.loadedKeys.delete(key);
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
      const { payload, ...rest } = request;
      this.outbox.send({ t: "run", request: rest, payload: JSON.stringify(payload) ?? "null" });
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
        resolve?.(message.outcome);
        if (this.runs.size === 0) this.idleWaiter?.();
        return;
      }
      case "log":
        this.options.services.log(message.record);
        return;
      case "hostCall":
        void this.serveHostCall(message.callId, message.plugin, message.op, message.args);
        return;
      case "catastrophe":
        this.tainted = true;
        this.options.onCatastrophe(this, { plugin: message.plugin, version: message.version, message: message.message });
        return;
      case "ready":
        return;
    }
  }

  private async serveHostCall(callId: number, plugin: string, op: "kv" | "emit", args: unknown[]): Promise<void> {
    try {
      let value: unknown;
      if (op === "kv") {
        const [kvOp, ...rest] = args as ["get" | "set" | "delete" | "list", ...unknown[]];
        value = await this.options.services.kv(plugin, kvOp, rest);
      } else {
        const [from, name, payload] = args as [RunRequest["meta"], string, unknown];
        value = await this.options.services.emit(plugin, from, name, payload);
      }
      this.outbox.send({ t: "hostReply", callId, ok: true, value });
    } catch (error) {
      const raw = error as { code?: unknown; message?: unknown; issues?: unknown };
      this.outbox.send({
        t: "hostReply",
        callId,
        ok: false,
        error: {
          code: typeof raw?.code === "string" ? raw.code : "HOOKD_RUN_FAILED",
          message: typeof raw?.message === "string" ? raw.message : String(error),
          ...(Array.isArray(raw?.issues) ? { issues: raw.issues } : {}),
        },
      });
    }
  }

  private onExit(reason: string): void {
    this.exitReason = reason;
    this.outbox.discard();
    const crashed: RunOutcome = {
      ok: false,
      retriable: true,
      durationMs: 0,
      error: { code: "HOOKD_SANDBOX_CRASHED", message: `the sandbox process exited (${reason}) while the run was in flight` },
    };
    for (const resolve of this.runs.values()) resolve(crashed);
    this.runs.clear();
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
