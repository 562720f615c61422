/**
 * The one way an event gets in, whether from HTTP, the telephony ingress, a plugin's ctx.emit
 * or a manual action start: validate against the catalog, work out who must run for it
 * (core/routing), store the event and its deliveries in one transaction, wake the dispatcher.
 */
import { createHash } from "node:crypto";
import type { EventCatalog, RouteConfig } from "../config/define.ts";
import type { Settings } from "../config/settings.ts";
import { assertDepth, DEFAULT_MAX_DEPTH } from "../base/depth.ts";
import { HookdError, isHookdError } from "../../sandbox/contract/errors.ts";
import type { PluginManager } from "../plugins/manager.ts";
import { actionDelivery, actionKey, deliveriesFor, type EventRouting } from "../routing/index.ts";
import type { AcceptOutcome, ClaimedDelivery, DeliveryTarget, EventSource, NewEvent, Store } from "../store/types.ts";
import type { StartAtAccept } from "../delivery/start-at-accept.ts";
import { eventSourceOf } from "../store/rows.ts";
import { checkActionInput } from "./action-input.ts";
import type { Tracing } from "../telemetry/tracing.ts";
import { newEventId } from "../base/event-id.ts";

export interface IntakeOptions {
  store: Store;
  plugins: PluginManager;
  /** Getters, so a reloaded config takes effect for the next event. */
  catalog: () => EventCatalog;
  routes: () => readonly RouteConfig[];
  delivery: () => Settings["delivery"];
  /** The webhook deliveries of an event (core/webhooks), stored with its other deliveries. */
  webhookTargets?: (name: string, payload: unknown) => DeliveryTarget[];
  /** Called after a commit that created deliveries; `waiting`: how many of them were not started at accept. */
  onAccepted: (info: { name: string; id: string; source: EventSource; deliverAt?: number | undefined; waiting?: number }) => void;
  /** The dispatcher's free slots, for deliveries started in the accepting transaction. */
  startAtAccept?: StartAtAccept | undefined;
  onRejected?: (info: { name: string; reason: string }) => void;
  /**
   * Bounds on what comes in (config `server.maxDepth`, `server.bodyLimit`). HTTP bodies are
   * bounded in bytes before parsing; ctx.emit payloads and action inputs are measured here.
   */
  limits?: () => { maxDepth: number; maxBytes: number };
  /** Traces out (core/telemetry/tracing.ts): an ingress span per event, its context stored with it. */
  tracing?: () => Tracing;
}

export interface AcceptRequest {
  name: string;
  body: unknown;
  source: EventSource;
  /** The telephony workstation's user (`POST /ingest/oktell?user=`). */
  sourceUser?: string | undefined;
  idempotencyKey?: string | undefined;
  parent?: { eventId: string; depth: number } | undefined;
  /** A delayed event's due time (core/time/delay.ts); absent: delivered at once. */
  deliverAt?: number | undefined;
  /** The trace this event continues: the sender's `traceparent`, or the emitting run's. */
  traceparent?: string | undefined;
}

export interface Accepted {
  id: string;
  /** True when an Idempotency-Key repeat returned the first event's id. */
  duplicate: boolean;
}


export class EventIntake {
  constructor(private readonly options: IntakeOptions) {}

  /** True when the catalog has this event. */
  knows(name: string): boolean {
    return Object.hasOwn(this.options.catalog(), name);
  }

  /** Validates a payload; throws HOOKD_EVENT_UNKNOWN (404) or HOOKD_EVENT_INVALID (400). */
  validate(name: string, body: unknown): unknown {
    const schema = this.options.catalog()[name];
    if (!schema || !Object.hasOwn(this.options.catalog(), name)) {
      this.options.onRejected?.({ name, reason: "unknown" });
      throw new HookdError("HOOKD_EVENT_UNKNOWN", [name]);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      this.options.onRejected?.({ name, reason: "invalid" });
      throw new HookdError("HOOKD_EVENT_INVALID", [name], {
        issues: parsed.error.issues.map((issue) => ({ path: issue.path.map(String), code: issue.code, message: issue.message })),
        cause: parsed.error,
      });
    }
    return parsed.data;
  }

  async accept(request: AcceptRequest): Promise<Accepted> {
    // Before zod, which walks the value recursively.
    this.checkBounds(request.name, request.body, request.source);
    const payload = this.validate(request.name, request.body);
    const depth = request.parent ? request.parent.depth + 1 : 0;
    const { maxEmitDepth, maxDescendants } = this.options.delivery();
    if (depth > maxEmitDepth) {
      this.options.onRejected?.({ name: request.name, reason: "emit_depth" });
      throw new HookdError("HOOKD_EVENT_EMIT_DEPTH", [maxEmitDepth, request.name]);
    }
    const id = newEventId();
    const tracing = this.options.tracing?.();
    const span = tracing?.enabled ? tracing.start(`hookd.ingress ${request.name}`, request.traceparent, { "hookd.event": request.name, "hookd.event.id": id, "hookd.source": request.source }, request.source === "emit" ? "internal" : "server") : undefined;
    const event: NewEvent = {
      id,
      traceparent: span?.traceparent,
      name: request.name,
      payload,
      // Serialized once: stored as it is, and handed to a run started at accept as it is.
      payloadJson: jsonOf(payload),
      receivedAt: Date.now(),
      source: request.source,
      ...(request.sourceUser === undefined ? {} : { sourceUser: request.sourceUser }),
      parentId: request.parent?.eventId,
      depth,
      // The width bound beside the depth one: the store counts it against the chain's root.
      maxDescendants: request.parent ? maxDescendants : undefined,
      idempotencyKey: request.idempotencyKey,
      bodyHash: request.idempotencyKey === undefined ? undefined : hashBody(request.name, request.body),
      deliverAt: request.deliverAt,
    };
    // A delayed event keeps no order key: waiting for its time, it would hold back every later
    // event of its key until then.
    const targets = this.deliveriesFor(request.name, payload).map((target) => (request.deliverAt === undefined ? target : { ...target, orderKey: undefined }));
    // Deliveries a free slot can take start in the accepting transaction (core/delivery/start-at-accept.ts).
    const reservation = request.deliverAt === undefined && event.payloadJson !== undefined ? this.options.startAtAccept?.reserve(targets) : undefined;
    let outcome: AcceptOutcome;
    try {
      outcome = await this.options.store.acceptEvent(event, reservation?.targets ?? targets);
    } catch (error) {
      reservation?.settle(undefined, startedEvent(event));
      if (isHookdError(error, "HOOKD_EVENT_EMIT_BUDGET")) this.options.onRejected?.({ name: request.name, reason: "emit_budget" });
      span?.end({ code: isHookdError(error) ? error.code : "HOOKD_DAEMON_INTERNAL", error: error instanceof Error ? error.message : String(error) });
      throw error;
    }
    reservation?.settle(outcome, startedEvent(event));
    span?.end(outcome.kind === "stored" ? undefined : { attributes: { "hookd.accept": outcome.kind } });
    if (outcome.kind === "conflict") {
      this.options.onRejected?.({ name: request.name, reason: "idempotency_conflict" });
      throw new HookdError("HOOKD_EVENT_IDEMPOTENCY_CONFLICT", [request.idempotencyKey ?? "", outcome.id]);
    }
    if (outcome.kind === "stored") {
      const waiting = targets.length - (outcome.started?.length ?? 0);
      this.options.onAccepted({ name: request.name, id: outcome.id, source: request.source, deliverAt: request.deliverAt, waiting });
    }
    return { id: outcome.id, duplicate: outcome.kind === "duplicate" };
  }

  /** Starts an action by hand: stored like an event, so it has the same delivery promise. */
  /**
   * Accepts several events all or none (one telephony request holds several). The caller has
   * validated them all; the writes are queued in one tick with no await between them, so the
   * store's group commit puts them in one transaction.
   */
  acceptAll(requests: readonly AcceptRequest[]): Promise<Accepted[]> {
    return Promise.all(requests.map((request) => this.accept(request)));
  }

  async startAction(action: string, input: unknown, idempotencyKey?: string): Promise<Accepted> {
    if (!this.options.plugins.actionOwner(action)) throw new HookdError("HOOKD_ACTION_UNKNOWN", [action]);
    // A bad manual input is the caller's 400 now, not a dead run later.
    this.checkBounds(`action ${action}`, input, "action");
    checkActionInput(action, this.options.plugins.actionInputSchema(action), input ?? null);
    const id = newEventId();
    const name = actionKey(action);
    const outcome = await this.options.store.acceptEvent(
      {
        id,
        name,
        payload: input ?? null,
        receivedAt: Date.now(),
        source: "action",
        depth: 0,
        idempotencyKey,
        bodyHash: idempotencyKey === undefined ? undefined : hashBody(name, input),
      },
      [actionDelivery(this.routing(), action, input ?? null)],
    );
    if (outcome.kind === "conflict") throw new HookdError("HOOKD_EVENT_IDEMPOTENCY_CONFLICT", [idempotencyKey ?? "", outcome.id]);
    if (outcome.kind === "stored") this.options.onAccepted({ name, id: outcome.id, source: "action" });
    return { id: outcome.id, duplicate: outcome.kind === "duplicate" };
  }

  /**
   * Who must run for a (validated) event: each with its plugin's attempt budget and the event's
   * order key. Replay uses it too, so a replayed event reaches today's subscribers.
   */
  deliveriesFor(name: string, payload: unknown): DeliveryTarget[] {
    return deliveriesFor(this.routing(), name, payload);
  }

  /** What core/routing works an event's deliveries out from: the plugins serving now and the config in force. */
  private routing(): EventRouting {
    return { lookup: this.options.plugins, routes: this.options.routes(), delivery: this.options.delivery(), webhookTargets: this.options.webhookTargets };
  }

  /**
   * Nesting (every source) and size (sources whose bytes no HTTP body limit counted: ctx.emit,
   * and actions, whose input may come from a plugin too): the serialized payload must fit the
   * same `server.bodyLimit` an HTTP sender gets.
   */
  private checkBounds(name: string, body: unknown, source: AcceptRequest["source"] | "action"): void {
    const { maxDepth, maxBytes } = this.options.limits?.() ?? { maxDepth: DEFAULT_MAX_DEPTH, maxBytes: Number.POSITIVE_INFINITY };
    try {
      assertDepth(body, maxDepth, `the payload of ${name}`);
    } catch (error) {
      this.options.onRejected?.({ name, reason: "too_deep" });
      throw error;
    }
    if (source === "http" || source === "oktell" || !Number.isFinite(maxBytes)) return;
    const bytes = Buffer.byteLength(JSON.stringify(body ?? null) ?? "");
    if (bytes > maxBytes) {
      this.options.onRejected?.({ name, reason: "too_large" });
      throw new HookdError("HOOKD_EVENT_TOO_LARGE", [name, bytes, maxBytes]);
    }
  }
}

/** The payload as JSON text; undefined when it has none (the store reports why). */
function jsonOf(payload: unknown): string | undefined {
  try {
    return JSON.stringify(payload);
  } catch {
    return undefined;
  }
}

/** The event as a run started at accept sees it: what a claim would have read back from the store. */
function startedEvent(event: NewEvent): ClaimedDelivery["event"] {
  return {
    id: event.id,
    name: event.name,
    payload: event.payload,
    ...(event.payloadJson === undefined ? {} : { payloadJson: event.payloadJson }),
    receivedAt: event.receivedAt,
    depth: event.depth,
    source: eventSourceOf(event.source, event.sourceUser),
  };
}

function hashBody(name: string, body: unknown): string {
  return createHash("sha256").update(name).update("\n").update(JSON.stringify(body) ?? "").digest("base64url");
}
