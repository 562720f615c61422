/**
 * The one way an event gets in, whether from HTTP, the telephony ingress, a plugin's ctx.emit
 * or a manual action start: validate against the catalog, work out who must run for it, store
 * the event and its deliveries in one transaction, wake the dispatcher.
 */
import { createHash, randomUUID } from "node:crypto";
import type { EventCatalog, RouteConfig } from "../config/define.ts";
import type { Settings } from "../config/settings.ts";
import { HookdError } from "../errors.ts";
import { ACTION_KEY_PREFIX, type PluginManager } from "../plugins/manager.ts";
import type { DeliveryTarget, EventSource, Store } from "../store/types.ts";

export interface IntakeOptions {
  store: Store;
  plugins: PluginManager;
  /** Getters, so a reloaded config takes effect for the next event. */
  catalog: () => EventCatalog;
  routes: () => readonly RouteConfig[];
  delivery: () => Settings["delivery"];
  /** Called after a commit that created deliveries. */
  onAccepted: (info: { name: string; id: string; source: EventSource }) => void;
  onRejected?: (info: { name: string; reason: string }) => void;
}

export interface AcceptRequest {
  name: string;
  body: unknown;
  source: EventSource;
  idempotencyKey?: string | undefined;
  parent?: { eventId: string; depth: number } | undefined;
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
    const payload = this.validate(request.name, request.body);
    const depth = request.parent ? request.parent.depth + 1 : 0;
    const { maxEmitDepth, maxAttempts } = this.options.delivery();
    if (depth > maxEmitDepth) {
      this.options.onRejected?.({ name: request.name, reason: "emit_depth" });
      throw new HookdError("HOOKD_EVENT_EMIT_DEPTH", [maxEmitDepth, request.name]);
    }
    const id = randomUUID();
    const outcome = await this.options.store.acceptEvent(
      {
        id,
        name: request.name,
        payload,
        receivedAt: Date.now(),
        source: request.source,
        parentId: request.parent?.eventId,
        depth,
        idempotencyKey: request.idempotencyKey,
        bodyHash: request.idempotencyKey === undefined ? undefined : hashBody(request.name, request.body),
      },
      this.deliveriesFor(request.name, payload, maxAttempts),
    );
    if (outcome.kind === "conflict") {
      this.options.onRejected?.({ name: request.name, reason: "idempotency_conflict" });
      throw new HookdError("HOOKD_EVENT_IDEMPOTENCY_CONFLICT", [request.idempotencyKey ?? "", outcome.id]);
    }
    if (outcome.kind === "stored") this.options.onAccepted({ name: request.name, id: outcome.id, source: request.source });
    return { id: outcome.id, duplicate: outcome.kind === "duplicate" };
  }

  /** Starts an action by hand: stored like an event, so it has the same delivery promise. */
  async startAction(action: string, input: unknown, idempotencyKey?: string): Promise<Accepted> {
    if (!this.options.plugins.actionOwner(action)) throw new HookdError("HOOKD_ACTION_UNKNOWN", [action]);
    const id = randomUUID();
    const name = `${ACTION_KEY_PREFIX}${action}`;
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
      [{ kind: "action", plugin: name, target: action, input: input ?? null, maxAttempts: this.options.delivery().maxAttempts }],
    );
    if (outcome.kind === "conflict") throw new HookdError("HOOKD_EVENT_IDEMPOTENCY_CONFLICT", [idempotencyKey ?? "", outcome.id]);
    if (outcome.kind === "stored") this.options.onAccepted({ name, id: outcome.id, source: "action" });
    return { id: outcome.id, duplicate: outcome.kind === "duplicate" };
  }

  private deliveriesFor(name: string, payload: unknown, maxAttempts: number): DeliveryTarget[] {
    const targets: DeliveryTarget[] = this.options.plugins
      .subscribers(name)
      .map((plugin) => ({ kind: "handler", plugin, target: name, maxAttempts }));
    for (const route of this.options.routes()) {
      if (route.on !== name) continue;
      // Routes are claimed by action name, so the action runs wherever it is declared when it runs.
      targets.push({
        kind: "route",
        plugin: `${ACTION_KEY_PREFIX}${route.run}`,
        target: route.run,
        input: route.input ? mapInput(route.input, payload) : payload,
        maxAttempts,
      });
    }
    return targets;
  }
}

/** Builds an action's input from an event: dotted paths into the payload, or `{ value }` constants. */
export function mapInput(mapping: NonNullable<RouteConfig["input"]>, payload: unknown): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [field, source] of Object.entries(mapping)) {
    const value = typeof source === "string" ? readPath(payload, source) : source.value;
    // A field whose source is missing stays out: the action fills it itself (seed 000).
    if (value !== undefined) input[field] = value;
  }
  return input;
}

function readPath(value: unknown, dotted: string): unknown {
  let current = value;
  for (const key of dotted.split(".")) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function hashBody(name: string, body: unknown): string {
  return createHash("sha256").update(name).update("\n").update(JSON.stringify(body) ?? "").digest("base64url");
}
