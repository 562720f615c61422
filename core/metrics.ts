/**
 * Prometheus metrics (prom-client), one registry per daemon so several daemons in one process
 * (tests) do not share counters.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(collectors: { deliveriesByStatus: () => Promise<Record<string, number>> }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "hookd_process_" });
  const eventsAccepted = new Counter({
    name: "hookd_events_accepted_total",
    help: "Events stored durably (answered 202), by event name and source",
    labelNames: ["event", "source"] as const,
    registers: [registry],
  });
  const eventsRejected = new Counter({
    name: "hookd_events_rejected_total",
    help: "Events refused, by event name and reason",
    labelNames: ["event", "reason"] as const,
    registers: [registry],
  });
  const runs = new Counter({
    name: "hookd_runs_total",
    help: "Finished runs by plugin, kind and outcome (done, retry, dead)",
    labelNames: ["plugin", "kind", "outcome"] as const,
    registers: [registry],
  });
  const runDuration = new Histogram({
    name: "hookd_run_duration_seconds",
    help: "Run duration, from sending to the sandbox to its result",
    labelNames: ["plugin"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const reloads = new Counter({
    name: "hookd_plugin_reloads_total",
    help: "Plugin loads and reloads by outcome (ok, error)",
    labelNames: ["plugin", "outcome"] as const,
    registers: [registry],
  });
  const sandboxRestarts = new Counter({
    name: "hookd_sandbox_restarts_total",
    help: "Times the sandbox process died and was started again",
    registers: [registry],
  });
  new Gauge({
    name: "hookd_deliveries",
    help: "Deliveries in the store by status",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      const counts = await collectors.deliveriesByStatus();
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  return { registry, eventsAccepted, eventsRejected, runs, runDuration, reloads, sandboxRestarts };
}
