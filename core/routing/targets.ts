/**
 * Who must run for an event: the deliveries intake stores with it and replay stores again. One
 * per subscribed handler, per route to an action, per configured webhook; each with its attempt
 * budget (the runner's retry policy), the event's order key (config `delivery.orderBy`) and, for a
 * handler declared with flow control, its rules' scopes read from the payload (flow-rules.ts).
 *
 * Computed from what is serving now, so a replayed event reaches today's subscribers.
 */
import { createHash } from "node:crypto";
import type { DeliveryTarget } from "../store/types.ts";
import { deliveryFlow } from "./flow-rules.ts";
import { orderKeyFor, type OrderBy } from "./order-key.ts";
import { retryPolicyFor, type RetryPolicy } from "./retry-policy.ts";
import { mapInput, routeInput, type RouteRule } from "./route-input.ts";
import { ACTION_KEY_PREFIX, actionKey, WEBHOOK_KEY_PREFIX, type SubscriberLookup } from "./subscribers.ts";

/** The config's `delivery` settings routing reads. */
export interface RoutingDefaults extends RetryPolicy {
  orderBy: OrderBy;
}

/** Everything one event's deliveries are worked out from; read per event (a config reload applies to the next one). */
export interface EventRouting {
  lookup: SubscriberLookup;
  routes: readonly RouteRule[];
  delivery: RoutingDefaults;
  /** The webhook deliveries of an event (config `webhooks`, see webhookTargets). */
  webhookTargets?: ((name: string, payload: unknown) => DeliveryTarget[]) | undefined;
}

/** Who must run for a (validated) event: each with its runner's attempt budget and the event's order key. */
export function deliveriesFor(routing: EventRouting, name: string, payload: unknown): DeliveryTarget[] {
  const orderKey = orderKeyFor(routing.delivery.orderBy, name, payload);
  return eventTargets(routing, name, payload).map((target) => {
    const runner = target.kind === "handler" ? target.plugin : target.kind === "route" ? routing.lookup.actionOwner(target.target) : undefined;
    const flow = target.kind === "handler" ? deliveryFlow(routing.lookup.flowRules?.(target.plugin, name), name, payload) : undefined;
    return { ...target, maxAttempts: runner === undefined ? target.maxAttempts : maxAttemptsOf(routing, runner), orderKey, ...(flow ? { flow } : {}) };
  });
}

/** The delivery of a manual action start (`POST /actions/{name}`, `hookd run`). */
export function actionDelivery(routing: Pick<EventRouting, "lookup" | "delivery">, action: string, input: unknown): DeliveryTarget {
  return { kind: "action", plugin: actionKey(action), target: action, input, maxAttempts: maxAttemptsOf(routing, routing.lookup.actionOwner(action)) };
}

/** A plugin's own `retry.maxAttempts`, else the config's. */
export function maxAttemptsOf(routing: Pick<EventRouting, "lookup" | "delivery">, plugin: string | undefined): number {
  const declared = plugin === undefined ? undefined : routing.lookup.declaredOptions(plugin)?.retry;
  return retryPolicyFor(routing.delivery, declared).maxAttempts;
}

/** Only the deliveries one plugin runs: its handlers, and routes to the actions it owns now. */
export function deliveriesOfPlugin(targets: readonly DeliveryTarget[], plugin: string, lookup: Pick<SubscriberLookup, "actionOwner">): DeliveryTarget[] {
  return targets.filter((target) => (target.plugin.startsWith(ACTION_KEY_PREFIX) ? lookup.actionOwner(target.target) === plugin : target.plugin === plugin));
}

function eventTargets(routing: EventRouting, name: string, payload: unknown): DeliveryTarget[] {
  const maxAttempts = routing.delivery.maxAttempts;
  const targets: DeliveryTarget[] = routing.lookup.subscribers(name).map((plugin) => ({ kind: "handler", plugin, target: name, maxAttempts }));
  for (const route of routing.routes) {
    if (route.on !== name) continue;
    // Routes are claimed by action name, so the action runs wherever it is declared when it runs.
    targets.push({ kind: "route", plugin: actionKey(route.run), target: route.run, input: routeInput(route, payload), maxAttempts });
  }
  if (routing.webhookTargets) targets.push(...routing.webhookTargets(name, payload));
  return targets;
}

/** A webhook as routing reads it (config `webhooks`). */
export interface WebhookRule {
  on: string;
  url: string;
  method: "GET" | "POST";
  format: "json" | "form";
  map?: Record<string, string> | undefined;
}

/** What a webhook delivery stores: where and how to send; the fields only when mapped. */
export interface WebhookInput {
  url: string;
  method: "GET" | "POST";
  format: "json" | "form";
  fields?: unknown;
  /** Which of the event's webhooks to one endpoint this is, for a distinct message id. */
  ordinal: number;
}

/** A short, stable id of an endpoint URL: `ep_` and 16 hex digits of its SHA-256. */
export function endpointId(url: string): string {
  return `ep_${createHash("sha256").update(url).digest("hex").slice(0, 16)}`;
}

/** The deliveries an event gets from the webhooks: one per configured webhook for it. */
export function webhookTargets(hooks: readonly WebhookRule[], event: string, payload: unknown, maxAttempts: number): DeliveryTarget[] {
  const perEndpoint = new Map<string, number>();
  return hooks
    .filter((hook) => hook.on === event)
    .map((hook) => {
      const id = endpointId(hook.url);
      const ordinal = perEndpoint.get(id) ?? 0;
      perEndpoint.set(id, ordinal + 1);
      const input: WebhookInput = { url: hook.url, method: hook.method, format: hook.format, ordinal, ...(hook.map ? { fields: mapInput(hook.map, payload) } : {}) };
      return { kind: "webhook", plugin: WEBHOOK_KEY_PREFIX + id, target: id, input, maxAttempts };
    });
}
