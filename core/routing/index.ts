/**
 * Routing: where an accepted event goes and how its deliveries are tried. Payload paths, order
 * keys, retry policies, route input mapping, the subscriber index and the delivery targets an
 * event gets. It holds no state of its own and imports only errors and the store's types, so
 * every room that decides or carries deliveries stands on it.
 *
 * The rooms of core/, lowest first. A room imports only from rooms earlier in this list (and
 * from the sandbox's entry and contract), never from a later one nor from another room of its
 * own line (the base files excepted, which use one another):
 *
 *   1. the base: errors.ts, locate.ts, truncate.ts, depth.ts, time-zone.ts, log.ts, metrics.ts; catalog/
 *   2. store/ (the durable queue), compile/ (the plugin compiler), fetch/ (ctx.fetch's rules)
 *   3. routing/ (this room), watch/ (what both file watchers add to chokidar)
 *   4. config/ (events.config.ts: settings, loading, watching), webhooks/ (outbound webhooks)
 *   5. plugins/ (the versions' lifecycle; it rebuilds the subscriber index), testing/ (hookd/testing)
 *   6. delivery/ (dispatcher, replay, circuit breaker, retention), ops/ (status, systemd, signals)
 *   7. api/ (the `/api/*` routes), console/ (the live console)
 *   8. ingress/ (intake, the telephony ingress, and the HTTP server that registers the route groups)
 *   9. host/ (the daemon's side of the host calls), daemon.ts, cli.ts, check.ts, init.ts (the wiring and the commands)
 */
export { missingPathStep, readPath } from "./payload-paths.ts";
export { catalogOrderBy, orderKeyFor, type OrderBy } from "./order-key.ts";
export {
  attemptsFor,
  DEFAULT_RETRY_SCHEDULE_MS,
  nextAttemptDelayMs,
  parseRetryAfter,
  RETRY_AFTER_CAP_MS,
  retryDelayMs,
  retryPolicyFor,
  type RetryPolicy,
} from "./retry-policy.ts";
export {
  mapInput,
  routeInput,
  routeInputErrors,
  routeInputPathProblems,
  type DeclaredActions,
  type InputMapping,
  type RouteInputError,
  type RouteRule,
} from "./route-input.ts";
export { deliveryFlow, parseFlowRules, type FlowRules, type FlowRuleSet } from "./flow-rules.ts";
export {
  ACTION_KEY_PREFIX,
  actionKey,
  SubscriberIndex,
  WEBHOOK_KEY_PREFIX,
  type ServingVersion,
  type SharedActionListener,
  type SubscriberLookup,
} from "./subscribers.ts";
export {
  actionDelivery,
  deliveriesFor,
  deliveriesOfPlugin,
  endpointId,
  maxAttemptsOf,
  webhookTargets,
  type EventRouting,
  type RoutingDefaults,
  type WebhookInput,
  type WebhookRule,
} from "./targets.ts";
