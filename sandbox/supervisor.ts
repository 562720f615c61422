/**
 * The daemon's side of the sandbox: keeps one sandbox process serving, restarts it with backoff
 * when it dies (runs in flight fail with HOOKD_SANDBOX_CRASHED and the delivery rules retry
 * them), and loads the plugins into it again.
 *
 * A process that lost an isolate for good (V8 could not stop an out-of-memory isolate) still
 * works but cannot be trusted to last: it is replaced without a gap. A new process starts and
 * loads every plugin while the old one keeps serving; then new runs go to the new one and the
 * old one finishes what it has in flight and is killed. Nobody else's run is lost.
 */
import { HookdError } from "./contract/errors.ts";
import type { HostServices } from "./contract/host-calls.ts";
import type { HeapUsage, PluginManifest, PluginSpec, RunError, RunOutcome, RunRequest } from "./contract/run.ts";
import type { Sandbox, SandboxStatus, WallMode, WallStatus } from "./contract/sandbox.ts";
import { toRunError } from "./contract/to-run-error.ts";
import { DEFAULT_HEARTBEAT, type HeartbeatSettings } from "./heartbeat.ts";
import { SandboxProcess } from "./sandbox-process.ts";
import { wallStatus } from "./wall.ts";

export interface SupervisorOptions {
  services: HostServices;
  secrets: Record<string, string | undefined>;
  /** The kernel wall around the sandbox process (`sandbox.wall`, sandbox/wall.ts); default "auto". */
  wall?: WallMode | undefined;
  /** Called after the process died and was started again, or was replaced (plugins reloaded). */
  onRestart?: (info: { restarts: number; reason: string }) => void;
  /** Called when a plugin that was loaded fails to load again after a restart. */
  onReloadFailed?: (spec: PluginSpec, error: RunError) => void;
  /** The heartbeat and memory watch (`sandbox.heartbeatMs`, `heartbeatMisses`, `processMemoryMb`). */
  heartbeat?: () => HeartbeatSettings;
  /** A process stopped answering its heartbeat: its runs failed and it is being killed. */
  onUnresponsive?: (info: { pid: number | undefined; missed: number; intervalMs: number; runs: number }) => void;
  /** A process grew past `processMemoryMb` and is being replaced; `plugin` holds the most heap in it. */
  onProcessMemory?: (info: { pid: number | undefined; rssMb: number; limitMb: number; plugin?: string; heapMb?: number }) => void;
}

/** A process being replaced gets at least this long, past its longest run's wall time, to finish. */
const DRAIN_MARGIN_MS = 2000;

/**
 * Replacements for memory at most this often: if the plugins' steady state is above
 * `sandbox.processMemoryMb`, every new process grows past it again, and replacing it on each
 * beat would be churn without end (each warning says so, and names the plugin).
 */
const MEMORY_REPLACE_INTERVAL_MS = 60_000;

export class SandboxSupervisor implements Sandbox {
  private current: SandboxProcess | undefined;
  private ready: Promise<SandboxProcess> | undefined;
  /** A replacement under way: loads wait for it, runs keep going to the current process. */
  private replacing: Promise<void> | undefined;
  private readonly draining = new Set<SandboxProcess>();
  /** What is loaded now, to load again after a restart; with what each version declared. */
  private readonly loaded = new Map<string, { spec: PluginSpec; manifest: PluginManifest | undefined }>();
  private closing = false;
  private restartDelayMs = 100;
  /** Why the last process went down, for /readyz while the next one comes up. */
  private lastDown: string | undefined;
  private lastMemoryReplace = Number.NEGATIVE_INFINITY;
  /** Times the process died and was started again, or was replaced. */
  restarts = 0;

  constructor(private readonly options: SupervisorOptions) {}

  /** Starts the process and waits for it to say it is ready. */
  async start(): Promise<void> {
    this.ready ??= this.launch();
    await this.ready;
  }

  get running(): boolean {
    return this.current !== undefined && this.current.alive && !this.closing;
  }

  /** Heap in use per loaded plugin version, from the serving process (empty while it restarts). */
  heapUsage(): Promise<HeapUsage[]> {
    return this.current && this.current.alive ? this.current.heapUsage() : Promise.resolve([]);
  }

  /** What stands around the sandbox process: the serving one's, or what the next one gets. */
  get wall(): WallStatus {
    return this.current?.wall ?? wallStatus(this.options.wall ?? "auto");
  }

  get pid(): number | undefined {
    return this.current?.pid;
  }

  status(): SandboxStatus {
    return { mode: "process", running: this.running, restarts: this.restarts, wall: this.wall, notReadyReason: this.notReadyReason() };
  }

  /** Why the sandbox cannot take runs now (for /readyz), or undefined when it can. */
  notReadyReason(): string | undefined {
    const current = this.current;
    if (current?.alive && current.missedBeats > 0) {
      const { misses, intervalMs } = this.heartbeatSettings();
      return `sandbox process is not answering: ${current.missedBeats} of ${misses} heartbeats of ${intervalMs} ms missed`;
    }
    if (!this.running) return this.lastDown ? `sandbox process is restarting: ${this.lastDown}` : "sandbox process is restarting";
    return undefined;
  }

  /** The serving process's resident memory from its latest heartbeat answer, and the answers so far. */
  processMemory(): { rssBytes: number; answers: number } | undefined {
    return this.current?.alive ? this.current.memory : undefined;
  }

  /** Whether a process that is missing its heartbeats holds the run (its lease is not renewed). */
  isStalled(runId: string): boolean {
    for (const process of [...this.draining, ...(this.current ? [this.current] : [])]) {
      if (process.missedBeats > 0 && process.holdsRun(runId)) return true;
    }
    return false;
  }

  private heartbeatSettings(): HeartbeatSettings {
    return this.options.heartbeat?.() ?? DEFAULT_HEARTBEAT;
  }

  async load(spec: PluginSpec): Promise<PluginManifest> {
    const key = keyOf(spec.plugin, spec.version);
    // A process that dies while loading (the plugin's own doing, or not) gets the load again.
    for (let attempt = 1; ; attempt++) {
      const process = await this.serving();
      try {
        let manifest = await process.load(spec);
        // The process was replaced while this load ran: the new one needs the version too.
        const current = this.current;
        if (current && current !== process && current.alive && !current.loadedKeys.has(key)) manifest = await current.load(spec);
        this.loaded.set(key, { spec, manifest });
        return manifest;
      } catch (error) {
        if (process.alive || this.closing || attempt >= 3) throw error;
      }
    }
  }

  async unload(plugin: string, version: number): Promise<void> {
    if (!this.loaded.delete(keyOf(plugin, version))) return;
    await this.replacing;
    const process = this.current;
    if (process?.alive) await process.unload(plugin, version);
  }

  run(request: RunRequest): Promise<RunOutcome> {
    const process = this.current;
    if (!process?.alive || this.closing) {
      return Promise.resolve({
        ok: false,
        retriable: true,
        durationMs: 0,
        error: { code: "HOOKD_SANDBOX_UNAVAILABLE", message: "the sandbox process is not running" },
      });
    }
    return process.run(request);
  }

  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.draining, ...(this.current ? [this.current] : [])];
    await Promise.all(all.map((process) => (process.tainted ? (process.kill(), Promise.resolve()) : process.close())));
  }

  /** The process that takes loads: the current one, once any restart or replacement is done. */
  private async serving(): Promise<SandboxProcess> {
    this.ready ??= this.launch();
    await this.replacing;
    const process = await this.ready;
    if (process.alive || this.closing) return process;
    // Died meanwhile: wait for the restart already scheduled.
    return this.serving();
  }

  /** Starts a process, loads every loaded plugin into it, and makes it the current one. */
  private async launch(): Promise<SandboxProcess> {
    const process = this.spawn();
    await process.ready;
    this.current = process;
    this.restartDelayMs = 100;
    await this.reloadInto(process);
    return process;
  }

  private spawn(): SandboxProcess {
    const process = new SandboxProcess({
      services: this.options.services,
      secrets: this.options.secrets,
      wall: this.options.wall,
      onExit: (process, reason) => this.onExit(process, reason),
      onCatastrophe: (process, info) => this.replace(process, `an isolate of plugin ${info.plugin} was lost: ${info.message}`),
    });
    // Watched from its first answer on: starting up (loading modules) is not hanging.
    process.ready.then(
      () =>
        process.watch(
          () => this.heartbeatSettings(),
          (info) => void this.replaceForMemory(process, info),
          ({ missed, intervalMs, runs }) => this.options.onUnresponsive?.({ pid: process.pid, missed, intervalMs, runs }),
        ),
      () => undefined,
    );
    return process;
  }

  /**
   * A process grew past `sandbox.processMemoryMb` (memory its isolates' heap limits do not see):
   * it is replaced without a gap, as after a lost isolate, and the plugin holding the most heap
   * in it is named, the likeliest culprit.
   */
  private async replaceForMemory(process: SandboxProcess, info: { rssBytes: number; limitMb: number }): Promise<void> {
    if (process !== this.current || this.replacing || this.closing) return;
    if (performance.now() - this.lastMemoryReplace < MEMORY_REPLACE_INTERVAL_MS) return;
    this.lastMemoryReplace = performance.now();
    const usage = await process.heapUsage();
    const top = usage.reduce<HeapUsage | undefined>((most, entry) => (most && most.bytes >= entry.bytes ? most : entry), undefined);
    const rssMb = Math.round(info.rssBytes / (1024 * 1024));
    this.options.onProcessMemory?.({ pid: process.pid, rssMb, limitMb: info.limitMb, ...(top ? { plugin: top.plugin, heapMb: Math.round(top.bytes / (1024 * 1024)) } : {}) });
    this.replace(process, `the sandbox process uses ${rssMb} MB, above sandbox.processMemoryMb (${info.limitMb} MB)${top ? `; plugin ${top.plugin} holds the most heap` : ""}`);
  }

  /**
   * Loads what is loaded; a version that fails now is dropped and reported. Versions loaded
   * elsewhere meanwhile are picked up by the next pass.
   */
  private async reloadInto(process: SandboxProcess): Promise<void> {
    const tried = new Set<string>();
    for (;;) {
      const missing = [...this.loaded.entries()].filter(([key]) => !process.loadedKeys.has(key) && !tried.has(key));
      if (missing.length === 0 || !process.alive) return;
      await Promise.all(
        missing.map(async ([key, { spec }]) => {
          tried.add(key);
          try {
            const manifest = await process.load(spec);
            const entry = this.loaded.get(key);
            if (entry) entry.manifest = manifest;
          } catch (error) {
            if (!process.alive) return;
            this.loaded.delete(key);
            this.options.onReloadFailed?.(spec, toRunError(error, "HOOKD_PLUGIN_LOAD"));
          }
        }),
      );
    }
  }

  private onExit(process: SandboxProcess, reason: string): void {
    this.draining.delete(process);
    const hung = process.hungReason ? `it stopped answering (${process.hungReason})` : undefined;
    if (process === this.current) this.lastDown = hung ?? `it exited (${reason})`;
    // During a replacement the new process takes over anyway (or, failing that, see replace()).
    if (process !== this.current || this.closing || this.replacing) return;
    this.scheduleRestart(hung ?? reason);
  }

  private scheduleRestart(reason: string): void {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, 5000);
    const restarted = new Promise<void>((resolve) => setTimeout(resolve, delay).unref()).then(() => this.launch());
    this.ready = restarted;
    restarted.then(
      () => {
        this.restarts++;
        this.options.onRestart?.({ restarts: this.restarts, reason });
      },
      () => {
        // It died at start too: try again, with a longer delay.
        if (!this.closing && this.ready === restarted) this.scheduleRestart(reason);
      },
    );
  }

  /** Replaces a process that still works but lost an isolate, without a gap in service. */
  private replace(old: SandboxProcess, reason: string): void {
    if (old !== this.current || this.replacing || this.closing) return;
    this.replacing = (async () => {
      const next = this.spawn();
      try {
        await next.ready;
        await this.reloadInto(next);
      } catch {
        // The new process did not come up: the old one keeps serving; the next loss tries again.
        next.kill();
        return;
      }
      if (this.closing) return next.kill();
      this.current = next;
      this.ready = Promise.resolve(next);
      this.draining.add(old);
      void this.retire(old);
      this.restarts++;
      this.options.onRestart?.({ restarts: this.restarts, reason: `replaced: ${reason}` });
    })().finally(() => {
      this.replacing = undefined;
      // The old process died while its replacement failed to come up: start over.
      if (this.current && !this.current.alive && !this.closing) this.scheduleRestart("the sandbox process exited while being replaced");
    });
  }

  /** Lets a replaced process finish its runs (each bounded by its own wall time), then kills it. */
  private async retire(process: SandboxProcess): Promise<void> {
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, this.longestRunMs() + DRAIN_MARGIN_MS).unref());
    await Promise.race([process.idle(), deadline]);
    this.draining.delete(process);
    process.kill();
  }

  private longestRunMs(): number {
    let longest = 0;
    for (const { spec, manifest } of this.loaded.values()) {
      const declared = manifest?.options.timeoutMs;
      longest = Math.max(longest, spec.limits.timeoutMs, typeof declared === "number" ? declared : 0);
    }
    return longest;
  }
}

function keyOf(plugin: string, version: number): string {
  return `${plugin}@${version}`;
}
