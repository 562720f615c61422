/**
 * The daemon: opens the store, starts the sandbox process, loads the plugins, starts delivery,
 * then listens. An event's path reads as a straight line:
 *   HTTP ingress -> intake (validate) -> store (group commit) -> dispatcher -> sandbox -> store.
 */
import type { FastifyInstance } from "fastify";
import type { ResolvedConfig } from "./config/settings.ts";
import { Dispatcher } from "./delivery/dispatcher.ts";
import { createHttpServer } from "./ingress/http.ts";
import { EventIntake } from "./ingress/intake.ts";
import type { Logger } from "./log.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { PluginManager } from "./plugins/manager.ts";
import { openStore } from "./store/open.ts";
import type { Store } from "./store/types.ts";
import { IsolateHost } from "../sandbox/isolate-host.ts";
import type { HostServices, Sandbox } from "../sandbox/protocol.ts";
import { SandboxSupervisor } from "../sandbox/supervisor.ts";
import { PluginWatcher } from "./plugins/watcher.ts";

export interface DaemonOptions {
  config: ResolvedConfig;
  logger: Logger;
  /**
   * `process` (default) runs isolates in a supervised child process; `inline` runs them in
   * this process (tests of the sandbox itself, benchmarks of the process hop).
   */
  sandbox?: "process" | "inline";
  /** Watch the plugins folder and the config (default: the config's plugins.watch). */
  watch?: boolean;
  /** Time running runs get to finish on stop. */
  drainMs?: number;
}

export class Daemon {
  readonly config: ResolvedConfig;
  readonly store: Store;
  readonly plugins: PluginManager;
  readonly intake: EventIntake;
  readonly dispatcher: Dispatcher;
  readonly metrics: Metrics;
  readonly http: FastifyInstance;
  private readonly sandbox: Sandbox;
  private readonly log: Logger;
  private watcher: PluginWatcher | undefined;
  private ready = false;
  private stopping: Promise<void> | undefined;

  private constructor(private readonly options: DaemonOptions, store: Store) {
    const config = options.config;
    this.config = config;
    this.store = store;
    this.log = options.logger.child({ component: "daemon" });
    this.metrics = createMetrics({ deliveriesByStatus: () => store.countByStatus() });

    const pluginLog = options.logger.child({ component: "plugin" });
    const services: HostServices = {
      log: (record) => {
        const fields = { ...record.fields, plugin: record.plugin, event: record.event, eventId: record.eventId, runId: record.runId };
        pluginLog[record.level](fields, record.msg);
      },
      kv: (plugin, op, args) => {
        const [a, b] = args;
        if (op === "get") return store.kvGet(plugin, a as string);
        if (op === "set") return store.kvSet(plugin, a as string, b);
        if (op === "delete") return store.kvDelete(plugin, a as string);
        return store.kvList(plugin, a as string, b as number);
      },
      emit: (_plugin, from, name, payload) =>
        this.intake.accept({ name, body: payload, source: "emit", parent: { eventId: from.eventId, depth: from.depth } }).then(({ id }) => ({ id })),
    };

    if (options.sandbox === "inline") {
      this.sandbox = new IsolateHost({ services, secrets: this.secrets() });
    } else {
      this.sandbox = new SandboxSupervisor({
        services,
        secrets: this.secrets(),
        onRestart: ({ restarts, reason }) => {
          this.metrics.sandboxRestarts.inc();
          this.log.warn({ restarts, reason }, "sandbox process restarted; plugins reloaded");
          this.dispatcher.wake();
        },
        onReloadFailed: (spec, error) => this.log.error({ plugin: spec.plugin, code: error.code }, `plugin failed to reload after a sandbox restart: ${error.message}`),
      });
    }

    this.plugins = new PluginManager({
      sandbox: this.sandbox,
      dir: config.plugins.dir,
      root: pluginsRoot(config),
      limits: config.sandbox,
      catalog: () => this.config.events,
      logger: options.logger,
      onChange: () => this.dispatcher?.wake(),
    });

    this.intake = new EventIntake({
      store,
      plugins: this.plugins,
      catalog: () => this.config.events,
      routes: () => this.config.routes,
      delivery: () => this.config.delivery,
      onAccepted: ({ name, source }) => {
        this.metrics.eventsAccepted.inc({ event: name, source });
        this.dispatcher.wake();
      },
      onRejected: ({ name, reason }) => this.metrics.eventsRejected.inc({ event: name, reason }),
    });

    this.dispatcher = new Dispatcher({
      store,
      sandbox: this.sandbox,
      plugins: this.plugins,
      delivery: () => this.config.delivery,
      // Long enough for the slowest run; live runs renew it, so it only matters after a crash.
      leaseMs: () => this.config.sandbox.timeoutMs * 2 + 10_000,
      logger: options.logger,
      onRunFinished: ({ delivery, plugin, outcome, status }) => {
        this.metrics.runs.inc({ plugin, kind: delivery.kind, outcome: status === "pending" ? "retry" : status });
        this.metrics.runDuration.observe({ plugin }, outcome.durationMs / 1000);
      },
    });

    this.http = createHttpServer({
      intake: this.intake,
      store,
      plugins: this.plugins,
      metrics: this.metrics,
      catalog: () => this.config.events,
      token: () => this.config.server.token,
      bodyLimit: config.server.bodyLimit,
      notReadyReason: () => this.notReadyReason(),
      stopping: () => this.stopping !== undefined,
      onRetried: () => this.dispatcher.wake(),
    });
  }

  /** Starts everything and listens; resolves once the daemon takes events. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const store = await openStore(options.config.store);
    const daemon = new Daemon(options, store);
    try {
      await daemon.boot();
    } catch (error) {
      await daemon.stop().catch(() => undefined);
      throw error;
    }
    return daemon;
  }

  /** The address the HTTP server listens on. */
  get address(): { host: string; port: number } {
    const address = this.http.server.address();
    if (address === null || typeof address === "string") return { host: this.config.server.host, port: this.config.server.port };
    return { host: address.address, port: address.port };
  }

  get url(): string {
    const { host, port } = this.address;
    return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  }

  /**
   * Graceful stop: refuse new events (503), let runs in flight finish within the drain budget,
   * commit what is pending, close the store (WAL checkpoint). Leases of runs still running are
   * released by the next start.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.ready = false;
      await this.watcher?.close();
      const left = await this.dispatcher.stop(this.options.drainMs ?? 10_000);
      if (left > 0) this.log.warn({ runs: left }, "runs still in flight at stop; they run again after the next start");
      await this.http.close();
      await this.sandbox.close();
      await this.store.close();
      this.log.info("hookd stopped");
    })();
    return this.stopping;
  }

  private async boot(): Promise<void> {
    if (this.sandbox instanceof SandboxSupervisor) await this.sandbox.start();
    const results = await this.plugins.loadAll();
    for (const result of results) this.metrics.reloads.inc({ plugin: result.plugin, outcome: result.ok ? "ok" : "error" });
    this.dispatcher.start();
    await this.http.listen({ host: this.config.server.host, port: this.config.server.port });
    if (this.options.watch ?? this.config.plugins.watch) {
      this.watcher = new PluginWatcher({
        plugins: this.plugins,
        logger: this.options.logger,
        onReload: (result) => this.metrics.reloads.inc({ plugin: result.plugin, outcome: result.ok ? "ok" : "error" }),
      });
      await this.watcher.start();
    }
    this.ready = true;
    const loaded = results.filter((r) => r.ok).length;
    this.log.info(
      { url: this.url, plugins: loaded, failed: results.length - loaded, store: redactUrl(this.config.store.url), config: this.config.file },
      "hookd ready",
    );
  }

  private notReadyReason(): string | undefined {
    if (this.stopping) return "stopping";
    if (!this.ready) return "starting";
    if (this.sandbox instanceof SandboxSupervisor && !this.sandbox.running) return "sandbox process is restarting";
    return undefined;
  }

  /** Declared secrets come from the config's secrets map, else from the environment. */
  private secrets(): Record<string, string | undefined> {
    return { ...this.config.secrets };
  }
}

/** Paths in plugin messages are shown relative to the plugins folder's parent. */
function pluginsRoot(config: ResolvedConfig): string {
  return config.plugins.dir.replace(/[\\/][^\\/]+[\\/]?$/, "") || config.plugins.dir;
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, "//$1:***@");
}
