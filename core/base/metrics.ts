/**
 * Prometheus metrics (prom-client), one registry per daemon so several daemons in one process
 * (tests) do not share counters. Counters move where things happen (ingress, dispatcher, plugin
 * manager, sandbox supervisor, webhooks); gauges of the queue and the isolates are read from
 * their sources when Prometheus scrapes, so they cannot drift from the store.
 *
 * Label values are bounded: event names come from the catalog, plugins and handlers from the
 * plugins folder, webhook endpoints from the config. Nothing per event or per run is a label.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Where the scrape-time gauges read from; a missing source leaves its gauge empty. */
export interface MetricsSources {
  deliveriesByStatus: () => Promise<Record<string, number>>;
  /** Creation time (epoch ms) of the oldest pending delivery, null when none waits. */
  oldestPendingAt?: () => Promise<number | null>;
  /** Heap in use per loaded plugin version. */
  isolateHeap?: () => Promise<ReadonlyArray<{ plugin: string; bytes: number }>>;
  /** Each known plugin's state (`loaded`, `failed`, ...). */
  pluginStates?: () => ReadonlyArray<{ state: string }>;
  /** Deliveries flow control holds or held, by plugin and state (core/store/flow-windows.ts). */
  flowCounts?: () => Promise<ReadonlyArray<{ plugin: string; state: string; n: number }>>;
  now?: () => number;
}

/** What the dispatcher reports after a run (a structural subset of its `RunFinished`). */
export interface RunMetric {
  plugin: string;
  delivery: { kind: string; target: string };
  outcome: { durationMs: number };
  /** The delivery's status after the run: done, pending (a retry is scheduled) or dead. */
  status: string;
}

/** One webhook delivery attempt, reported by the webhook sender. */
export interface WebhookDeliveryMetric {
  /** The endpoint's id from the config (never the full URL: it may carry credentials). */
  endpoint: string;
  /** `ok`, `retry` (failed, will be retried) or `dead` (failed on its last attempt). */
  outcome: "ok" | "retry" | "dead";
  durationMs?: number | undefined;
  /** HTTP status of the answer, when there was one. */
  status?: number | undefined;
}

export type Metrics = ReturnType<typeof createMetrics>;

const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createMetrics(sources: MetricsSources) {
  const registry = new Registry();
  // Node's own metrics: hookd_process_cpu_seconds_total, hookd_nodejs_heap_size_used_bytes, ...
  collectDefaultMetrics({ register: registry, prefix: "hookd_" });
  const now = sources.now ?? Date.now;
  const registers = [registry];

  const eventsAccepted = new Counter({
    name: "hookd_events_accepted_total",
    help: "Events stored durably (answered 202), by event name and source",
    labelNames: ["event", "source"] as const,
    registers,
  });
  const eventsRejected = new Counter({
    name: "hookd_events_rejected_total",
    help: "Events refused, by event name and reason (unknown, invalid, emit_depth, idempotency_conflict, ...)",
    labelNames: ["event", "reason"] as const,
    registers,
  });
  const runs = new Counter({
    name: "hookd_runs_total",
    help: "Finished runs by plugin, kind, handler (event or action name) and outcome (done, retry, dead)",
    labelNames: ["plugin", "kind", "handler", "outcome"] as const,
    registers,
  });
  const runDuration = new Histogram({
    name: "hookd_run_duration_seconds",
    help: "Run duration, from sending to the sandbox to its result, by plugin and handler",
    labelNames: ["plugin", "handler"] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const retries = new Counter({
    name: "hookd_run_retries_total",
    help: "Runs put back in the queue: by the backoff after a failure, or by hand (POST /api/runs/{id}/retry)",
    labelNames: ["plugin", "trigger"] as const,
    registers,
  });
  const reloads = new Counter({
    name: "hookd_plugin_reloads_total",
    help: "Plugin loads and reloads by outcome (ok, error)",
    labelNames: ["plugin", "outcome"] as const,
    registers,
  });
  const configReloads = new Counter({
    name: "hookd_config_reloads_total",
    help: "Config reloads (a changed file or SIGHUP) by outcome: ok, or error (the previous config stays)",
    labelNames: ["outcome"] as const,
    registers,
  });
  const sandboxRestarts = new Counter({
    name: "hookd_sandbox_restarts_total",
    help: "Times the sandbox process died and was started again",
    registers,
  });
  const webhookDeliveries = new Counter({
    name: "hookd_webhook_deliveries_total",
    help: "Webhook delivery attempts by endpoint and outcome (ok, retry, dead)",
    labelNames: ["endpoint", "outcome"] as const,
    registers,
  });
  const webhookDuration = new Histogram({
    name: "hookd_webhook_delivery_duration_seconds",
    help: "Webhook request duration by endpoint",
    labelNames: ["endpoint"] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });

  // One store read per scrape feeds the three queue gauges.
  const counts = shareInFlight(sources.deliveriesByStatus);
  new Gauge({
    name: "hookd_deliveries",
    help: "Deliveries in the store by status (pending, running, done, dead, cancelled, discarded)",
    labelNames: ["status"] as const,
    registers,
    async collect() {
      for (const [status, n] of Object.entries(await counts())) this.set({ status }, n);
    },
  });
  new Gauge({
    name: "hookd_queue_depth",
    help: "Deliveries waiting to run (pending, retries waiting for their backoff included)",
    registers,
    async collect() {
      this.set((await counts()).pending ?? 0);
    },
  });
  new Gauge({
    name: "hookd_dead_letters",
    help: "Dead-lettered deliveries in the store (GET /api/runs?status=dead)",
    registers,
    async collect() {
      this.set((await counts()).dead ?? 0);
    },
  });
  new Gauge({
    name: "hookd_queue_oldest_pending_age_seconds",
    help: "Age of the oldest pending delivery; 0 when the queue is empty",
    registers,
    async collect() {
      const oldest = (await sources.oldestPendingAt?.()) ?? null;
      this.set(oldest === null ? 0 : Math.max(now() - oldest, 0) / 1000);
    },
  });
  new Gauge({
    name: "hookd_isolate_heap_bytes",
    help: "V8 heap in use by each plugin's isolates (a retiring version counts until disposed)",
    labelNames: ["plugin"] as const,
    registers,
    async collect() {
      this.reset();
      const usage = (await sources.isolateHeap?.().catch(() => [])) ?? [];
      const byPlugin = new Map<string, number>();
      for (const { plugin, bytes } of usage) byPlugin.set(plugin, (byPlugin.get(plugin) ?? 0) + bytes);
      for (const [plugin, bytes] of byPlugin) this.set({ plugin }, bytes);
    },
  });
  new Gauge({
    name: "hookd_flow_deliveries",
    help: "Deliveries held by flow control (waiting_throttled, waiting_debounced, waiting_concurrency) or skipped by it (skipped_rate_limit, skipped_debounced), by plugin",
    labelNames: ["plugin", "state"] as const,
    registers,
    async collect() {
      this.reset();
      for (const { plugin, state, n } of (await sources.flowCounts?.().catch(() => [])) ?? []) this.set({ plugin, state }, Number(n));
    },
  });
  new Gauge({
    name: "hookd_plugins",
    help: "Known plugins by state (loading, loaded, failed)",
    labelNames: ["state"] as const,
    registers,
    collect() {
      this.reset();
      const states = new Map<string, number>();
      for (const { state } of sources.pluginStates?.() ?? []) if (state !== "removed") states.set(state, (states.get(state) ?? 0) + 1);
      for (const [state, n] of states) this.set({ state }, n);
    },
  });

  /**
   * One webhook attempt. The dispatcher's run reports call it (see recordRun); a sender that
   * bypasses the dispatcher calls it itself after each attempt.
   */
  const recordWebhookDelivery = (info: WebhookDeliveryMetric): void => {
    webhookDeliveries.inc({ endpoint: info.endpoint, outcome: info.outcome });
    if (info.durationMs !== undefined) webhookDuration.observe({ endpoint: info.endpoint }, info.durationMs / 1000);
  };

  /**
   * Counts a finished run: its outcome, its duration, and a scheduled retry. Webhook sends are
   * deliveries too (kind `webhook`, target = endpoint id): they are counted here as well.
   */
  // Each label set's child, made once: prom-client hashes a label object on every inc() and
  // observe(), which was work on every run. The sets are bounded (plugins x handlers x outcomes).
  const runCounters = new Map<string, { inc(): void }>();
  const runTimers = new Map<string, { observe(value: number): void }>();
  const recordRun = (info: RunMetric): void => {
    const outcome = info.status === "pending" ? "retry" : info.status;
    const handlerKey = `${info.plugin}\u0000${info.delivery.target}`;
    labelChild(runCounters, `${handlerKey}\u0000${info.delivery.kind}\u0000${outcome}`, () =>
      runs.labels({ plugin: info.plugin, kind: info.delivery.kind, handler: info.delivery.target, outcome }),
    ).inc();
    labelChild(runTimers, handlerKey, () => runDuration.labels({ plugin: info.plugin, handler: info.delivery.target })).observe(info.outcome.durationMs / 1000);
    if (outcome === "retry") retries.inc({ plugin: info.plugin, trigger: "backoff" });
    if (info.delivery.kind === "webhook") {
      recordWebhookDelivery({ endpoint: info.delivery.target, outcome: outcome === "done" ? "ok" : outcome === "retry" ? "retry" : "dead", durationMs: info.outcome.durationMs });
    }
  };

  // The accepted counter's children, made once per event name and source (see runCounters).
  const acceptedCounters = new Map<string, { inc(): void }>();
  const countAccepted = (event: string, source: string): void => {
    labelChild(acceptedCounters, `${event}\u0000${source}`, () => eventsAccepted.labels({ event, source })).inc();
  };

  return {
    registry,
    eventsAccepted,
    countAccepted,
    eventsRejected,
    runs,
    runDuration,
    retries,
    reloads,
    configReloads,
    sandboxRestarts,
    webhookDeliveries,
    webhookDuration,
    recordRun,
    recordWebhookDelivery,
  };
}

/**
 * Calls made while a read is under way share it. A scrape starts every collector in the same
 * turn, so the queue gauges of one scrape read the store once; the next scrape reads afresh.
 */
function shareInFlight<T>(read: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    if (inFlight) return inFlight;
    const current = read().finally(() => {
      if (inFlight === current) inFlight = undefined;
    });
    inFlight = current;
    return current;
  };
}

/** A metric's child for one label set, made the first time and kept in `cache` (keyed by the joined labels). */
function labelChild<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let child = cache.get(key);
  if (child === undefined) cache.set(key, (child = make()));
  return child;
}
