/**
 * Traces out: optional OpenTelemetry export over OTLP/HTTP (JSON), switched on by the standard
 * variables `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (and off again
 * by `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`). The exporter reads the rest of the
 * OTEL_* variables itself (headers, timeout); `OTEL_SERVICE_NAME` names the service (`hookd`).
 *
 * One trace per event: a span for its ingress (a child of the sender's `traceparent`, if any,
 * whose context is stored with the event), one per run attempt under it (attributes plugin,
 * attempt, outcome code), and one per fetch and webhook delivery under its run, whose request
 * carries the span's `traceparent`. An emitted event's ingress is a child of the emitting run.
 *
 * Off, nothing of the SDK is loaded: `NOOP_TRACING` answers `enabled: false` and callers skip
 * their tracing work (no store read, no header) on that alone.
 */
import type { Attributes, Context, Span, Tracer } from "@opentelemetry/api";

export interface OpenSpan {
  /** W3C `traceparent` of this span, for a child elsewhere (a stored event, a request header). */
  readonly traceparent: string | undefined;
  end(outcome?: { code?: string | null | undefined; error?: string | undefined; attributes?: Attributes }): void;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Starts a span under `parent` (a traceparent), or a new trace when it is absent or malformed. */
  start(name: string, parent: string | null | undefined, attributes: Attributes, kind?: "server" | "client" | "consumer" | "internal"): OpenSpan;
  /** The traceparent of the run span open for `runId`, if any. */
  runTraceparent(runId: string): string | undefined;
  /** Registers a run's span so its fetches and emits find it; forgotten when it ends. */
  startRun(runId: string, parent: string | null | undefined, attributes: Attributes): OpenSpan;
  /** Sends what is buffered and stops. */
  shutdown(): Promise<void>;
}

const NOOP_SPAN: OpenSpan = { traceparent: undefined, end: () => undefined };

export const NOOP_TRACING: Tracing = {
  enabled: false,
  start: () => NOOP_SPAN,
  runTraceparent: () => undefined,
  startRun: () => NOOP_SPAN,
  shutdown: async () => undefined,
};

/** Whether the environment asks for traces. */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === "true") return false;
  if (env.OTEL_TRACES_EXPORTER?.toLowerCase() === "none") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** A W3C traceparent header value (version 00, non-zero ids), as `POST /events` accepts it. */
export function validTraceparent(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = value.trim().toLowerCase();
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(text);
  if (!match || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined;
  return text;
}

/** Loads the SDK (only now) and starts exporting; NOOP_TRACING when the environment does not ask. */
export async function startTracing(env: NodeJS.ProcessEnv, version: string): Promise<Tracing> {
  if (!tracingWanted(env)) return NOOP_TRACING;
  const [api, core, sdk, exporter, resources] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/core"),
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
  ]);
  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || "hookd", "service.version": version }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter: new exporter.OTLPTraceExporter() })],
  });
  const tracer: Tracer = provider.getTracer("hookd", version);
  const propagator = new core.W3CTraceContextPropagator();
  const getter = { get: (carrier: Record<string, string>, key: string) => carrier[key], keys: (carrier: Record<string, string>) => Object.keys(carrier) };
  const setter = { set: (carrier: Record<string, string>, key: string, value: string) => void (carrier[key] = value) };
  const KINDS = { server: api.SpanKind.SERVER, client: api.SpanKind.CLIENT, consumer: api.SpanKind.CONSUMER, internal: api.SpanKind.INTERNAL } as const;
  const runs = new Map<string, OpenSpan>();

  const contextOf = (traceparent: string | null | undefined): Context => {
    const valid = validTraceparent(traceparent ?? undefined);
    return valid ? propagator.extract(api.ROOT_CONTEXT, { traceparent: valid }, getter) : api.ROOT_CONTEXT;
  };
  const wrap = (span: Span, onEnd?: () => void): OpenSpan => {
    const carrier: Record<string, string> = {};
    propagator.inject(api.trace.setSpan(api.ROOT_CONTEXT, span), carrier, setter);
    return {
      traceparent: carrier.traceparent,
      end(outcome) {
        if (outcome?.attributes) span.setAttributes(outcome.attributes);
        if (outcome?.code) span.setAttribute("hookd.outcome.code", outcome.code);
        if (outcome?.error !== undefined || outcome?.code) span.setStatus({ code: api.SpanStatusCode.ERROR, ...(outcome.error === undefined ? {} : { message: outcome.error }) });
        span.end();
        onEnd?.();
      },
    };
  };
  const start = (name: string, parent: string | null | undefined, attributes: Attributes, kind: keyof typeof KINDS = "internal") =>
    tracer.startSpan(name, { kind: KINDS[kind], attributes }, contextOf(parent));

  return {
    enabled: true,
    start: (name, parent, attributes, kind) => wrap(start(name, parent, attributes, kind)),
    runTraceparent: (runId) => runs.get(runId)?.traceparent,
    startRun(runId, parent, attributes) {
      const open = wrap(start("hookd.run", parent, attributes, "consumer"), () => runs.delete(runId));
      runs.set(runId, open);
      return open;
    },
    async shutdown() {
      await provider.shutdown().catch(() => undefined);
    },
  };
}
