/**
 * A route (config `routes`: `{ on: "deal.close", run: "notify", input: { dealId: "did" } }`)
 * starts an action with an input built from the event: each field a dotted path into the payload
 * or a `{ value }` constant. Here are that mapping and its two checks: against the catalog when
 * the config loads (every path names a field the event has), and against an action's input
 * schema when the plugin that declares the action loads (no required field left out).
 */
import { HookdError } from "../../sandbox/contract/errors.ts";
import { missingPathStep, readPath } from "./payload-paths.ts";

/** Maps an action's input field to a dotted path in the event payload, or to a constant. */
export type InputMapping = Record<string, string | { value: unknown }>;

/** A route as routing reads it: the event, the action it starts, the optional input mapping. */
export interface RouteRule {
  on: string;
  run: string;
  input?: InputMapping | undefined;
}

/** A route whose input leaves out a field its action requires (HOOKD_ROUTE_INPUT_MISSING). */
export interface RouteInputError {
  code: string;
  /** The route's index in the config's `routes`. */
  route: number;
  action: string;
  message: string;
}

/** What a loaded plugin version declares about its actions. */
export interface DeclaredActions {
  actions: readonly string[];
  /** Action name -> JSON Schema of its input, for actions that declare one. */
  actionInputs?: Readonly<Record<string, unknown>> | undefined;
}

/** Builds an action's input from an event: dotted paths into the payload, or `{ value }` constants. */
export function mapInput(mapping: Readonly<Record<string, string | { value: unknown }>>, payload: unknown): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [field, source] of Object.entries(mapping)) {
    const value = typeof source === "string" ? readPath(payload, source) : source.value;
    // A field whose source is missing stays out: the action fills it itself (seed 000).
    if (value !== undefined) input[field] = value;
  }
  return input;
}

/** The action input of a route for one event: the mapped fields, or the whole payload unmapped. */
export function routeInput(route: RouteRule, payload: unknown): unknown {
  return route.input ? mapInput(route.input, payload) : payload;
}

/**
 * Config-time check: each input path of each route names a field of its event's schema.
 * One readable problem per bad path (`routes.0.input.dealId: event "deal.close" has no field ...`).
 */
export function routeInputPathProblems(routes: readonly RouteRule[], events: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  routes.forEach((route, i) => {
    const schema = events[route.on];
    if (schema === undefined || route.input === undefined) return;
    for (const [field, source] of Object.entries(route.input)) {
      if (typeof source !== "string") continue;
      const missing = missingPathStep(schema, source);
      if (missing !== undefined) problems.push(`routes.${i}.input.${field}: event "${route.on}" has no field "${missing}" (path "${source}")`);
    }
  });
  return problems;
}

/** Load-time check: routes to these actions whose input mapping leaves out a field the action requires. */
export function routeInputErrors(routes: readonly RouteRule[], declared: DeclaredActions): RouteInputError[] {
  const errors: RouteInputError[] = [];
  routes.forEach((route, i) => {
    if (!declared.actions.includes(route.run) || route.input === undefined) return;
    const schema = declared.actionInputs?.[route.run] as { required?: unknown } | undefined;
    const required = Array.isArray(schema?.required) ? (schema.required as unknown[]).filter((f): f is string => typeof f === "string") : [];
    const left = required.filter((field) => !Object.hasOwn(route.input!, field));
    if (left.length > 0) {
      const error = new HookdError("HOOKD_ROUTE_INPUT_MISSING", [i, route.on, route.run, left.join(", ")]);
      errors.push({ code: error.code, route: i, action: route.run, message: error.message });
    }
  });
  return errors;
}
