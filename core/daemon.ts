/**
 * The daemon: opens the store, starts the sandbox process, loads the plugins, starts delivery,
 * then listens. An event's path reads as a straight line:
 *   HTTP ingress -> intake (validate) -> store (group commit) -> dispatcher -> sandbox -> store.
 */
import type { FastifyInstance } from "fastify";
import type { CompileLimits } from "./compile/compile-plugin.ts";
import { loadConfig } from "./config/load.ts";
import type { ResolvedConfig } from "./config/settings.ts";
import { ConfigWatcher, type ConfigChanges, type ConfigReloadResult } from "./config/watch.ts";
import { ConsoleHub } from "./console/hub.ts";
import { consoleRoutes } from "./console/routes.ts";
import { CircuitBreaker } from "./delivery/circuit-breaker.ts";
import { Dispatcher } from "./delivery/dispatcher.ts";
import { Replayer } from "./delivery/replay.ts";
import { RetentionPruner } from "./delivery/retention.ts";
import { FetchService } from "./fetch/fetch-service.ts";
import { retryPolicyFor } from "./routing/index.ts";
import { DEFAULT_MAX_TEXT_CHARS } from "./base/truncate.ts";
import { createHttpServer } from "./ingress/http.ts";
import { EventIntake } from "./ingress/intake.ts";
import { oktellIngress } from "./integrations/oktell/ingest.ts";
import { OktellBridge } from "./integrations/oktell/bridge.ts";
import { oktellBridgeRoutes } from "./integrations/oktell/routes.ts";
import { webhookApi } from "./webhooks/api.ts";
import { WebhookDeliveries } from "./webhooks/deliveries.ts";
import type { Logger } from "./base/log.ts";
import { createMetrics, type Metrics } from "./base/metrics.ts";
import { Readiness } from "./ops/readiness.ts";
import { collectStatus, type DaemonStatus } from "./ops/status.ts";
import { PluginManager, type ReloadResult } from "./plugins/manager.ts";
import { openStore } from "./store/open.ts";
import type { Store } from "./store/types.ts";
import { createSandbox, SecretResolver, warnOnceIfMissing } from "../sandbox/index.ts";
import type { Sandbox } from "../sandbox/contract/sandbox.ts";
import { daemonServices } from "./host/services.ts";
import { PluginWatcher } from "./plugins/watcher.ts";
import { deliverAtFromOptions } from "./time/delay.ts";
import { calendarsOf } from "./time/calendar-config.ts";
import { HookdError } from "../sandbox/contract/errors.ts";
import { isOpenDay } from "./time/calendar.ts";
import { scheduleApi } from "./time/routes.ts";
import { Scheduler } from "./time/scheduler.ts";
import { configSchedules, pluginSchedules, tickRecord } from "./time/schedules.ts";
import { RunDetail } from "./runs/run-detail.ts";
import { runDetailApi } from "./api/run-detail.ts";
import { eventDetailApi } from "./api/event-detail.ts";
import { repairApi } from "./api/repair.ts";
import { statsApi } from "./api/stats.ts";
import { boundRunError } from "./api/routes.ts";
import { NOOP_TRACING, startTracing, type Tracing } from "./telemetry/tracing.ts";
import { PACKAGE_JSON } from "../sandbox/contract/locate.ts";

/** What the closing steps of a stop get beyond the drain budget (see Daemon.stop). */
const STOP_MARGIN_MS = 5000;

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
  /** Called after every plugin load, reload, failed attempt and removal (`hookd dev` prints it). */
  onPluginReload?: (result: ReloadResult) => void;
  /** Called after every config reload, applied or refused. */
  onConfigReload?: (result: ConfigReloadResult) => void;
  /** Time running runs get to finish on stop. */
  drainMs?: number;
  /**
   * Stop esbuild's service process once the plugins are loaded (`hookd start`/`dev`, where the
   * daemon owns its process): it holds on to what it compiled, 13 MB with one plugin and about
   * 0.5 MB more per plugin, while nothing compiles again until a file changes, and the next
   * build starts a fresh service. Not for a process where other code may be compiling.
   */
  releaseCompiler?: boolean;
}

export class Daemon {
  /** Replaced by a config reload; everything reads it through getters, so the next event sees it. */
  private currentConfig: ResolvedConfig;
  readonly store: Store;
  readonly plugins: PluginManager;
  readonly intake: EventIntake;
  readonly dispatcher: Dispatcher;
  /** Pauses plugins whose runs keep failing (`sandbox.breaker`). */
  readonly breaker: CircuitBreaker;
  /** Outbound webhooks: their deliveries, endpoint health and sending. */
  readonly webhooks: WebhookDeliveries;
  readonly replayer: Replayer;
  /** The telephony workstation bridge: commands for each operator's relay, and the confirm guard. */
  readonly oktellBridge: OktellBridge;
  private readonly pruner: RetentionPruner;
  private readonly scheduler: Scheduler;
  readonly metrics: Metrics;
  /** Store writable, sandbox up, plugins loaded: /readyz and the systemd watchdog ask it. */
  readonly readiness: Readiness;
  readonly http: FastifyInstance;
  /** The live console's stream: what happens here reaches the open `GET /` pages. */
  readonly console: ConsoleHub;
  private readonly startedAt = Date.now();
  private readonly sandbox: Sandbox;
  private readonly log: Logger;
  private watcher: PluginWatcher | undefined;
  private configWatcher: ConfigWatcher | undefined;
  private lastConfigReload: ConfigReloadResult | undefined;
  private ready = false;
  private stopping: Promise<void> | undefined;

  private constructor(private readonly options: DaemonOptions, store: Store, private readonly tracing: Tracing = NOOP_TRACING) {
    const config = options.config;
    this.currentConfig = config;
    this.store = store;
    this.log = options.logger.child({ component: "daemon" });
    this.metrics = createMetrics({
      deliveriesByStatus: () => store.countByStatus(),
      oldestPendingAt: () => store.oldestPendingAt(),
      flowCounts: () => store.flowCounts(),
      isolateHeap: () => isolateHeapOf(this.sandbox),
      pluginStates: () => this.plugins.list(),
    });
    this.console = new ConsoleHub({ store, plugins: () => this.plugins.list() });
    this.readiness = new Readiness({ lifecycle: () => this.notReadyReason(), checkStoreWritable: () => store.checkWritable() });

    const pluginLog = options.logger.child({ component: "plugin" });
    // ctx.fetch is performed here, not in the sandbox process, under the config's address rules.
    const fetchService = new FetchService({
      allowHosts: () => this.config.sandbox.fetchAllowHosts,
      maxConcurrent: () => this.config.sandbox.fetchMaxConcurrent,
      ownEndpoints: () => (this.http.server.listening ? [this.address] : [{ host: this.config.server.host, port: this.config.server.port }]),
      secret: (plugin, name) => new SecretResolver({ configured: this.secrets(), environment: process.env }).resolve(plugin, name),
    });
    // Run detail: what each attempt did, gathered by the services and the webhook sender, stored with its finish.
    const runDetail = new RunDetail({
      limits: (plugin) => {
        const declared = this.plugins?.declaredOptions(plugin);
        return {
          maxLogLines: declared?.maxLogLinesPerRun ?? this.config.sandbox.maxLogLinesPerRun,
          maxEmits: declared?.maxEmitsPerRun ?? this.config.sandbox.maxEmitsPerRun,
          maxFieldChars: this.config.log.maxFieldChars,
        };
      },
      root: () => pluginsRoot(this.config),
      entryFile: (plugin) => this.plugins?.known(plugin)?.file,
      tracing: () => this.tracing,
      store,
    });
    const services = daemonServices({
      store,
      intake: () => this.intake,
      fetchService,
      pluginLog,
      calendars: (name) => calendarsOf(this.config.calendars).get(name),
      oktell: () => this.oktellBridge,
      activity: runDetail.recorder,
      tracing: () => this.tracing,
    });

    this.sandbox = createSandbox({
      mode: options.sandbox === "inline" ? "inline" : "process",
      services,
      secrets: this.secrets(),
      wall: config.sandbox.wall,
      onRestart: ({ restarts, reason }) => {
        this.metrics.sandboxRestarts.inc();
        this.log.warn({ restarts, reason }, "sandbox process restarted; plugins reloaded");
        this.dispatcher.wake();
      },
      onReloadFailed: (spec, error) => {
        this.log.error({ plugin: spec.plugin, code: error.code }, `plugin failed to reload after a sandbox restart: ${error.message}`);
        this.plugins.versionLost(spec.plugin, spec.version, error);
      },
      heartbeat: () => ({ intervalMs: this.config.sandbox.heartbeatMs, misses: this.config.sandbox.heartbeatMisses, processMemoryMb: this.config.sandbox.processMemoryMb }),
      onUnresponsive: (info) =>
        this.log.error({ ...info, code: "HOOKD_SANDBOX_UNRESPONSIVE" }, `sandbox process stopped answering (${info.missed} heartbeats of ${info.intervalMs} ms missed): killed, its ${info.runs} runs in flight run again`),
      onProcessMemory: (info) =>
        this.log.warn({ ...info, code: "HOOKD_SANDBOX_MEMORY" }, `sandbox process uses ${info.rssMb} MB, above sandbox.processMemoryMb (${info.limitMb} MB): replacing it${info.plugin ? `; plugin ${info.plugin} holds the most heap (${info.heapMb} MB)` : ""}`),
    });

    this.breaker = new CircuitBreaker({
      settings: () => this.config.sandbox.breaker,
      logger: options.logger,
      onChange: () => this.dispatcher?.wake(),
    });

    this.plugins = new PluginManager({
      sandbox: this.sandbox,
      dir: config.plugins.dir,
      root: pluginsRoot(config),
      limits: () => this.config.sandbox,
      // The config and the store's folder are never a plugin's to bundle, wherever they are.
      compile: () => ({ limits: compileLimits(this.config), protectedPaths: [this.config.file, this.config.dataDir] }),
      catalog: () => this.config.events,
      logger: options.logger,
      onChange: () => {
        this.dispatcher?.wake();
        // A schedule removed or edited by a reload stops (or starts) at once.
        void this.scheduler?.refresh();
      },
      onReload: (result) => {
        if (result.outcome !== "removed") this.metrics.reloads.inc({ plugin: result.plugin, outcome: result.ok ? "ok" : "error" });
        // A new version deserves a fresh start, not the pause its predecessor earned.
        if (result.ok && result.outcome === "reloaded") this.breaker.reset(result.plugin);
        this.console.pluginsChanged();
        options.onPluginReload?.(result);
      },
      countPendingRuns: async (keys) => {
        const counts = await Promise.all(keys.map((plugin) => store.listRuns({ status: "pending", plugin, limit: 1000 })));
        return counts.reduce((sum, runs) => sum + runs.length, 0);
      },
      quietReloadLogs: options.onPluginReload !== undefined,
      health: (plugin) => this.breaker.health(plugin),
      routes: () => this.config.routes,
    });

    this.webhooks = new WebhookDeliveries({
      store,
      webhooks: () => this.config.webhooks,
      settings: () => this.config.webhookDelivery,
      logger: options.logger,
      onEndpointsChanged: () => this.dispatcher?.wake(),
      activity: runDetail.recorder,
      tracing: () => this.tracing,
    });

    this.intake = new EventIntake({
      store,
      webhookTargets: (name, payload) => this.webhooks.targetsFor(name, payload),
      plugins: this.plugins,
      catalog: () => this.config.events,
      routes: () => this.config.routes,
      delivery: () => this.config.delivery,
      limits: () => ({ maxDepth: this.config.server.maxDepth, maxBytes: this.config.server.bodyLimit }),
      tracing: () => this.tracing,
      onAccepted: ({ name, id, source, deliverAt, waiting }) => {
        this.metrics.countAccepted(name, source);
        this.console.eventAccepted(id);
        // A delayed event: a timer for its due time, whatever the dispatcher is busy with now.
        if (deliverAt !== undefined) this.dispatcher.wakeAtTime(deliverAt);
        // Every delivery started at accept: nothing for a claim to find.
        if (waiting !== 0) this.dispatcher.wake();
      },
      startAtAccept: { reserve: (targets) => this.dispatcher.reserve(targets) },
      onRejected: ({ name, reason }) => this.metrics.eventsRejected.inc({ event: name, reason }),
    });

    this.dispatcher = new Dispatcher({
      store,
      sandbox: this.sandbox,
      plugins: this.plugins,
      delivery: () => this.config.delivery,
      retryPolicy: (plugin) => retryPolicyFor(this.config.delivery, this.plugins.declaredOptions(plugin)?.retry),
      // Long enough for the slowest run; live runs renew it, so it only matters after a crash.
      leaseMs: () => this.config.sandbox.timeoutMs * 2 + 10_000,
      logger: options.logger,
      isPaused: (plugin) => this.breaker.isPaused(plugin),
      maxPayloadDepth: () => this.config.server.maxDepth,
      maxErrorChars: () => this.config.delivery.maxErrorChars ?? DEFAULT_MAX_TEXT_CHARS,
      onRunFinished: (info) => {
        this.metrics.recordRun(info);
        this.breaker.record(info);
        this.console.runFinished(info);
      },
      webhooks: this.webhooks,
      activity: runDetail,
    });

    this.oktellBridge = new OktellBridge({
      store,
      settings: () => this.config.oktell,
      maxDepth: () => this.config.server.maxDepth,
      declaresOktell: (plugin) => this.plugins.declaredOptions(plugin)?.oktell === true,
      logger: options.logger,
    });
    this.replayer = new Replayer({ store, intake: this.intake, plugins: this.plugins, onScheduled: () => this.dispatcher.wake() });
    this.pruner = new RetentionPruner({ store, retention: () => this.config.delivery.retention, logger: options.logger });

    // Schedules (core/time): each tick stored like an accepted event, claimed once across instances.
    this.scheduler = new Scheduler({
      store,
      definitions: () => [...pluginSchedules(this.plugins.declaredSchedules()), ...configSchedules(this.config.schedules)],
      tickFor: (definition, at) =>
        tickRecord(definition, at, {
          now: Date.now,
          maxAttempts: (plugin) => retryPolicyFor(this.config.delivery, this.plugins.declaredOptions(plugin)?.retry).maxAttempts,
          emitted: (name, payload) => {
            const valid = this.intake.validate(name, payload);
            return { payload: valid, deliveries: this.intake.deliveriesFor(name, valid) };
          },
        }),
      isClosed: (definition, at) => {
        const calendar = calendarsOf(this.config.calendars).get(definition.calendar!);
        if (!calendar) throw new HookdError("HOOKD_CALENDAR_INVALID", [definition.calendar!, "no such calendar in the config's calendars"]);
        return !isOpenDay(calendar, at);
      },
      onTick: ({ definition }) => {
        this.metrics.eventsAccepted.inc({ event: definition.emit ?? "(schedule)", source: "schedule" });
        this.dispatcher.wake();
      },
      logger: options.logger,
    });

    this.http = createHttpServer({
      intake: this.intake,
      replayer: this.replayer,
      store,
      plugins: this.plugins,
      metrics: this.metrics,
      catalog: () => this.config.events,
      token: () => this.config.server.token,
      bodyLimit: config.server.bodyLimit,
      maxDepth: () => this.config.server.maxDepth,
      pageBytes: () => ({ page: this.config.server.maxPageBytes, item: this.config.server.listItemBytes }),
      notReadyReason: () => this.readiness.notReadyReason(),
      readyWarnings: () => {
        const wall = this.sandbox.status().wall;
        return wall && !wall.kernel ? [`sandbox process without its kernel wall: ${wall.missing}`] : [];
      },
      status: () => this.status(),
      stopping: () => this.stopping !== undefined,
      calendars: (name) => calendarsOf(this.config.calendars).get(name),
      routeGroups: [
        oktellIngress({ intake: this.intake, logger: options.logger, timezone: () => this.config.oktell.timezone, stopping: () => this.stopping !== undefined, maxDepth: () => this.config.server.maxDepth, onStored: (user, events, arrivedAt) => this.oktellBridge.eventsAccepted(user, events, arrivedAt) }),
        oktellBridgeRoutes(this.oktellBridge, { stopping: () => this.stopping !== undefined, maxDepth: () => this.config.server.maxDepth }),
        webhookApi(this.webhooks),
        scheduleApi(() => this.scheduler),
        consoleRoutes({ hub: this.console, token: () => this.config.server.token }),
        runDetailApi(store),
        eventDetailApi({ store, boundRun: (run) => boundRunError(run, this.config.server.listItemBytes) }),
        repairApi({ store, plugins: this.plugins, intake: this.intake, onRetried: (run) => this.retried(run) }),
        statsApi(store),
      ],
      onRetried: (run) => this.retried(run),
    });
  }

  /** A manual retry (one, or a bulk one from the console) put a delivery back to pending. */
  private retried(run: { plugin: string }): void {
    this.metrics.retries.inc({ plugin: run.plugin, trigger: "manual" });
    this.dispatcher.wake();
  }

  /** Starts everything and listens; resolves once the daemon takes events. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const store = await openStore(options.config.store);
    // Traces out, only when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT asks: the SDK is loaded only then.
    const tracing = await startTracing(process.env, PACKAGE_JSON.version).catch((error: unknown) => {
      options.logger.warn({ err: error }, "OpenTelemetry export could not start; running without traces");
      return NOOP_TRACING;
    });
    const daemon = new Daemon(options, store, tracing);
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

  /** What `GET /api/status` and `hookd status` show: plugins, queue, dead letters, recent errors. */
  status(): Promise<DaemonStatus> {
    const sandbox = this.sandbox;
    return collectStatus({
      store: this.store,
      plugins: () => this.plugins.list(),
      notReadyReason: () => this.readiness.notReadyReason(),
      sandbox: sandbox.status().mode === "process" ? () => sandbox.status() : undefined,
      startedAt: this.startedAt,
    });
  }

  /**
   * Graceful stop: refuse new events (503), let runs in flight finish within the drain budget
   * (`delivery.drainMs`), give the leases of runs still going back (they run again at the next
   * start, attempt not counted), commit what is pending, close the store (WAL checkpoint).
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.ready = false;
      const drainMs = this.options.drainMs ?? this.config.delivery.drainMs;
      // The whole stop ends within the drain budget plus STOP_MARGIN_MS, whatever hangs: a store
      // that never answers (a claim stuck on a lock, a lost reply) used to hold SIGTERM for good.
      // A step past the deadline is abandoned with an error line; what it left undone is what a
      // crash leaves (leases expire, runs happen again), never an accepted event.
      const deadline = Date.now() + drainMs + STOP_MARGIN_MS;
      this.plugins.stop();
      await this.stopStep("the file watchers", deadline, async () => {
        await this.watcher?.close();
        await this.configWatcher?.close();
      });
      await this.stopStep("the retention pruner", deadline, () => this.pruner.stop());
      await this.stopStep("the schedules", deadline, () => this.scheduler.stop());
      await this.stopStep("the drain", deadline, async () => {
        const left = await this.dispatcher.stop(drainMs);
        if (left > 0) this.log.warn({ runs: left }, "runs still in flight at stop; their leases are released and they run again after the next start");
      });
      this.webhooks.stop();
      this.oktellBridge.stop();
      this.breaker.close();
      await this.stopStep("the HTTP server", deadline, () => this.http.close());
      await this.stopStep("the sandbox", deadline, () => this.sandbox.close());
      await this.stopStep("the store", deadline, () => this.store.close());
      await this.stopStep("the trace export", deadline, () => this.tracing.shutdown());
      this.log.info("hookd stopped");
    })();
    return this.stopping;
  }

  /** One step of the stop, given what is left until the deadline (see stop()). */
  private async stopStep(name: string, deadline: number, step: () => Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), Math.max(0, deadline - Date.now()))));
    const outcome = await Promise.race([
      step().then(
        () => "done" as const,
        (error: unknown) => {
          this.log.warn({ err: error }, `stopping ${name} failed`);
          return "failed" as const;
        },
      ),
      late,
    ]);
    clearTimeout(timer);
    if (outcome === "late") this.log.error({ code: "HOOKD_DAEMON_STOP_TIMEOUT", step: name }, `stopping ${name} did not finish within the stop budget (delivery.drainMs + ${STOP_MARGIN_MS} ms): abandoned`);
  }

  private async boot(): Promise<void> {
    // The sandbox process starts while the plugins compile: a load waits for the process, a
    // compile does not. A sandbox that cannot start still fails the start-up.
    const sandboxUp = this.sandbox.start();
    const [, results] = await Promise.all([sandboxUp, this.plugins.loadAll({ waitMs: this.config.plugins.startTimeoutMs })]);
    // One warning per daemon, not per sandbox restart: what is missing and how to get it.
    const wall = this.sandbox.status().wall;
    if (wall) warnOnceIfMissing(wall, (fields, message) => this.log.warn(fields, message));
    // Before the watchers start: no compile can be in flight.
    if (this.options.releaseCompiler) await (await import("esbuild")).stop();
    await this.webhooks.start();
    this.dispatcher.start();
    // After the plugins loaded: their schedules' missed ticks are caught up now, once.
    await this.scheduler.start();
    // Other instances' events and freed keys (PostgreSQL NOTIFY): claim them now, not at the next sweep.
    this.store.onRemoteWork?.(() => this.dispatcher.wake());
    this.pruner.start();
    this.oktellBridge.start();
    await this.http.listen({ host: this.config.server.host, port: this.config.server.port });
    if (this.options.watch ?? this.config.plugins.watch) {
      this.watcher = new PluginWatcher({ plugins: this.plugins, logger: this.options.logger });
      await this.watcher.start();
      this.configWatcher = this.createConfigWatcher();
      await this.configWatcher.start();
    }
    this.ready = true;
    const loaded = results.filter((r) => r.ok).length;
    this.log.info(
      { url: this.url, plugins: loaded, failed: results.length - loaded, store: redactUrl(this.config.store.url), config: this.config.file },
      "hookd ready",
    );
  }

  /**
   * SIGHUP (`systemctl reload hookd`): the config is loaded again through the same ConfigWatcher
   * that follows file changes (one reload path, also when watching is off), then every plugin of
   * the folder. Resolves once both are in force; a config that fails to load leaves the previous
   * one serving and comes back as `config.ok: false`.
   */
  async reload(): Promise<{ config: ConfigReloadResult | undefined; plugins: ReloadResult[] }> {
    this.configWatcher ??= this.createConfigWatcher();
    this.lastConfigReload = undefined;
    await this.configWatcher.reload();
    const config = this.lastConfigReload;
    const plugins = await this.plugins.loadAll();
    return { config, plugins };
  }

  private createConfigWatcher(): ConfigWatcher {
    return new ConfigWatcher({
      current: () => this.config,
      // Same file; folders kept as they are (they only change with a restart).
      load: () => loadConfig({ configFile: this.config.file, pluginsDir: this.config.plugins.dir, dataDir: this.config.dataDir }),
      apply: (next, changes) => this.applyConfig(next, changes),
      logger: this.options.logger,
      quietLogs: this.options.onConfigReload !== undefined,
      onReload: (result) => {
        this.lastConfigReload = result;
        this.metrics.configReloads.inc({ outcome: result.ok ? "ok" : "error" });
        this.options.onConfigReload?.(result);
      },
    });
  }

  /** The config in force; a config reload replaces it. */
  get config(): ResolvedConfig {
    return this.currentConfig;
  }

  /** Puts a reloaded config in force; plugins load again when the catalog or limits changed. */
  private async applyConfig(next: ResolvedConfig, changes: ConfigChanges): Promise<void> {
    this.currentConfig = next;
    if (changes.reloadPlugins) await this.plugins.loadAll();
    this.dispatcher.wake();
    await this.scheduler.refresh();
  }

  private notReadyReason(): string | undefined {
    if (this.stopping) return "stopping";
    if (!this.ready) return "starting";
    return this.sandbox.status().notReadyReason;
  }

  /** Declared secrets come from the config's secrets map, else from the environment. */
  private secrets(): Record<string, string | undefined> {
    return { ...this.config.secrets };
  }
}

function compileLimits(config: ResolvedConfig): CompileLimits {
  const { compileTimeoutMs, maxSourceBytes, maxBundleBytes, maxNesting } = config.plugins;
  return { timeoutMs: compileTimeoutMs, maxSourceBytes, maxBundleBytes, maxNesting };
}

/** Paths in plugin messages are shown relative to the plugins folder's parent. */
function pluginsRoot(config: ResolvedConfig): string {
  return config.plugins.dir.replace(/[\\/][^\\/]+[\\/]?$/, "") || config.plugins.dir;
}

/** Heap per plugin version, in-process or from the sandbox process. */
function isolateHeapOf(sandbox: Sandbox): Promise<ReadonlyArray<{ plugin: string; bytes: number }>> {
  return sandbox.heapUsage();
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, "//$1:***@");
}
