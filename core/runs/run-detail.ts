/**
 * Run detail, put together once for the daemon: the recorder the host services and webhook
 * sender report to, the dispatcher's sink that takes an attempt's activity (with the error's
 * TypeScript lines) into the finish it is stored with, and the limits it is bounded by (the
 * plugin's own log-line and emit limits over the config's, `log.maxFieldChars`).
 */
import type { RunActivitySink } from "../delivery/dispatcher.ts";
import type { ClaimedDelivery, RunActivity, RunAttemptError, RunError, RunOutcome, Store } from "../store/types.ts";
import { NOOP_TRACING, type OpenSpan, type Tracing } from "../telemetry/tracing.ts";
import { RunActivityRecorder, type ActivityLimits } from "./activity.ts";
import { SourceContext } from "./source-context.ts";

export interface RunDetailOptions {
  /** Limits as configured now, for a plugin (its declared overrides included). */
  limits: (plugin: string) => ActivityLimits;
  /** The plugins folder: error locations are read from there. */
  root: () => string;
  entryFile?: (plugin: string) => string | undefined;
  /** Traces out: each attempt is a span under its event's ingress (whose context the store keeps). */
  tracing?: () => Tracing;
  store?: Pick<Store, "eventTraceparent">;
}

export class RunDetail implements RunActivitySink {
  readonly recorder: RunActivityRecorder;
  private readonly source: SourceContext;
  private readonly spans = new Map<string, OpenSpan>();

  constructor(private readonly options: RunDetailOptions) {
    this.recorder = new RunActivityRecorder(options.limits);
    this.source = new SourceContext({ root: options.root, entryFile: options.entryFile });
  }

  async begin(runId: string, plugin: string, delivery: ClaimedDelivery): Promise<void> {
    this.recorder.begin(runId, plugin);
    const tracing = this.options.tracing?.() ?? NOOP_TRACING;
    if (!tracing.enabled) return;
    const parent = await this.options.store?.eventTraceparent(delivery.event.id).catch(() => null);
    this.spans.set(
      runId,
      tracing.startRun(runId, parent, {
        "hookd.plugin": plugin,
        "hookd.run.id": runId,
        "hookd.run.kind": delivery.kind,
        "hookd.run.target": delivery.target,
        "hookd.attempt": delivery.attempt,
        "hookd.event": delivery.event.name,
        "hookd.event.id": delivery.event.id,
      }),
    );
  }

  take(runId: string, outcome?: RunOutcome): RunActivity {
    const span = this.spans.get(runId);
    if (span) {
      this.spans.delete(runId);
      span.end(outcome === undefined || outcome.ok ? { code: null, attributes: { "hookd.outcome": "done" } } : { code: outcome.error.code, error: outcome.error.message, attributes: { "hookd.outcome": "failed" } });
    }
    return this.recorder.take(runId);
  }

  describeError(plugin: string, error: RunError): RunAttemptError {
    return this.source.describe(plugin, error);
  }
}
