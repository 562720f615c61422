/**
 * The daemon's side of the sandbox process: forks it, batches messages to it, answers its host
 * calls, and restarts it when it dies. Runs in flight when it dies fail with
 * HOOKD_SANDBOX_CRASHED (the delivery rules retry them); loaded plugins are loaded again.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { HookdError } from "../core/errors.ts";
import type { RunOutcome } from "../core/store/types.ts";
import { MessageBatcher } from "./batching.ts";
import type { FromSandbox, HostServices, PluginManifest, PluginSpec, RunError, RunRequest, Sandbox, ToSandbox } from "./protocol.ts";

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));
const TSX_LOADER = import.meta.resolve("tsx");

export interface SupervisorOptions {
  services: HostServices;
  secrets: Record<string, string | undefined>;
  /** Called after the process died and was started again (plugins reloaded). */
  onRestart?: (info: { restarts: number; reason: string }) => void;
  /** Called when a plugin that was loaded fails to load again after a restart. */
  onReloadFailed?: (spec: PluginSpec, error: RunError) => void;
}

interface PendingLoad {
  resolve: (manifest: PluginManifest) => void;
  reject: (error: unknown) => void;
}

export class SandboxSupervisor implements Sandbox {
  private child: ChildProcess | undefined;
  private outbox: MessageBatcher<ToSandbox> | undefined;
  private ready: Promise<void> | undefined;
  private readonly loads = new Map<string, PendingLoad>();
  private readonly runs = new Map<string, (outcome: RunOutcome) => void>();
  private readonly unloads = new Map<string, () => void>();
  /** What is loaded now, to load again after a restart. */
  private readonly loaded = new Map<string, PluginSpec>();
  /** Loads sent but not answered yet, to send again if the process dies meanwhile. */
  private readonly loadingSpecs = new Map<string, PluginSpec>();
  private closing = false;
  private restartDelayMs = 100;
  restarts = 0;

  constructor(private readonly options: SupervisorOptions) {}

  /** Starts the process and waits for it to say it is ready. */
  start(): Promise<void> {
    this.ready ??= this.spawn();
    return this.ready;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && !this.closing;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async load(spec: PluginSpec): Promise<PluginManifest> {
    await this.start();
    const key = `${spec.plugin}@${spec.version}`;
    this.loadingSpecs.set(key, spec);
    try {
      const manifest = await new Promise<PluginManifest>((resolve, reject) => {
        this.loads.set(key, { resolve, reject });
        this.send({ t: "load", spec });
      });
      this.loaded.set(key, spec);
      return manifest;
    } finally {
      this.loadingSpecs.delete(key);
    }
  }

  async unload(plugin: string, version: number): Promise<void> {
    const key = `${plugin}@${version}`;
    if (!this.loaded.delete(key) || !this.running) return;
    await new Promise<void>((resolve) => {
      this.unloads.set(key, resolve);
      this.send({ t: "unload", plugin, version });
    });
  }

  run(request: RunRequest): Promise<RunOutcome> {
    if (!this.running) {
      return Promise.resolve({
        ok: false,
        retriable: true,
        durationMs: 0,
        error: { code: "HOOKD_SANDBOX_UNAVAILABLE", message: "the sandbox process is not running" },
      });
    }
    return new Promise((resolve) => {
      this.runs.set(request.runId, resolve);
      this.send({ t: "run", request });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    this.outbox?.flush();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.disconnect();
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  }

  private send(message: ToSandbox): void {
    this.outbox?.send(message);
  }

  private spawn(): Promise<void> {
    const child = fork(WORKER, [], {
      execArgv: ["--no-node-snapshot", "--import", TSX_LOADER],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: process.env,
    });
    this.child = child;
    this.outbox = new MessageBatcher((batch) => {
      if (child.connected) child.send(batch);
    });
    this.outbox.send({ t: "init", secrets: this.options.secrets });
    const ready = new Promise<void>((resolve, reject) => {
      const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null) =>
        reject(new HookdError("HOOKD_SANDBOX_UNAVAILABLE", [], { message: `the sandbox process exited at start (${signal ?? code})` }));
      child.once("exit", onEarlyExit);
      child.on("message", (batch: FromSandbox[]) => {
        for (const message of batch) {
          if (message.t === "ready") {
            child.off("exit", onEarlyExit);
            this.restartDelayMs = 100;
            resolve();
          } else this.handle(message);
        }
      });
    });
    child.once("exit", (code, signal) => this.onExit(child, signal ?? String(code)));
    return ready;
  }

  private handle(message: FromSandbox): void {
    switch (message.t) {
      case "loaded":
      case "loadFailed": {
        const key = `${message.plugin}@${message.version}`;
        const pending = this.loads.get(key);
        this.loads.delete(key);
        if (message.t === "loaded") pending?.resolve(message.manifest);
        else if (pending) pending.reject(message.error);
        else {
          // A reload after a restart failed: the plugin stays out until it is loaded again.
          const spec = this.loaded.get(key);
          this.loaded.delete(key);
          if (spec) this.options.onReloadFailed?.(spec, message.error);
        }
        return;
      }
      case "unloaded": {
        const key = `${message.plugin}@${message.version}`;
        this.unloads.get(key)?.();
        this.unloads.delete(key);
        return;
      }
      case "result": {
        const resolve = this.runs.get(message.runId);
        this.runs.delete(message.runId);
        resolve?.(message.outcome);
        return;
      }
      case "log":
        this.options.services.log(message.record);
        return;
      case "hostCall":
        void this.serveHostCall(message.callId, message.plugin, message.op, message.args);
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
      this.send({ t: "hostReply", callId, ok: true, value: value === undefined ? null : value });
    } catch (error) {
      const raw = error as { code?: unknown; message?: unknown; issues?: unknown };
      this.send({
        t: "hostReply",
        callId,
        ok: false,
        error: {
          code: typeof raw.code === "string" ? raw.code : "HOOKD_RUN_FAILED",
          message: typeof raw.message === "string" ? raw.message : String(error),
        },
      });
    }
  }

  private onExit(child: ChildProcess, reason: string): void {
    if (child !== this.child) return;
    this.outbox?.discard();
    const crashed: RunOutcome = {
      ok: false,
      retriable: true,
      durationMs: 0,
      error: { code: "HOOKD_SANDBOX_CRASHED", message: `the sandbox process exited (${reason}) while the run was in flight` },
    };
    for (const resolve of this.runs.values()) resolve(crashed);
    this.runs.clear();
    for (const resolve of this.unloads.values()) resolve();
    this.unloads.clear();
    if (this.closing) return;

    // Loads that were waiting are sent again to the new process; loaded plugins are reloaded.
    const waiting = [...this.loads.entries()];
    this.loads.clear();
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, 5000);
    setTimeout(() => {
      if (this.closing) return;
      this.restarts++;
      this.ready = this.spawn();
      this.ready.then(
        () => {
          for (const spec of this.loaded.values()) this.send({ t: "load", spec });
          for (const [key, pending] of waiting) {
            const spec = this.loadingSpecs.get(key);
            if (spec) {
              this.loads.set(key, pending);
              this.send({ t: "load", spec });
            } else pending.reject(new HookdError("HOOKD_SANDBOX_CRASHED", [reason]));
          }
          this.options.onRestart?.({ restarts: this.restarts, reason });
        },
        () => undefined,
      );
    }, delay).unref();
  }
}
