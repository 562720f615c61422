/**
 * Per-key order. `delivery.orderBy` maps event names or `prefix.*` patterns to the payload field
 * that identifies the business object (`"deal.*": "did"`): a handler then receives the events of
 * one deal one at a time, in acceptance order, while different deals run concurrently.
 *
 * The key is namespaced by the pattern that matched (`deal.*=12`), so `task.*` and `history.*`,
 * which both key by `id`, do not hold each other up.
 */
import { readPath } from "./payload-paths.ts";

/** Event name or `prefix.*` -> dotted field path in the payload; `false` switches a default off. */
export type OrderBy = Readonly<Record<string, string | false>>;

/**
 * The shipped catalog's keys: one deal, client, contact, task... at a time per handler.
 * `client.import` carries lists of ids and gets no key.
 */
export const catalogOrderBy: OrderBy = {
  "client.*": "clid",
  "person.*": "pid",
  "deal.*": "did",
  "invoice.*": "invoice",
  "task.*": "id",
  "history.*": "id",
  "entry.*": "id",
  "contract.*": "id",
  "akt.*": "id",
  "user.operator_status.changed": "userId",
  "session.*": "sessionId",
};

/** The order key of an event, or undefined when none is declared or the field is empty. */
export function orderKeyFor(orderBy: OrderBy, event: string, payload: unknown): string | undefined {
  const pattern = matchingPattern(orderBy, event);
  if (pattern === undefined) return undefined;
  const field = orderBy[pattern];
  if (field === false || field === undefined) return undefined;
  const value = readPath(payload, field);
  if (value === undefined || value === null || value === "" || typeof value === "object") return undefined;
  return `${pattern}=${String(value)}`;
}

/** An exact name wins over patterns; among patterns, the longest prefix wins. */
function matchingPattern(orderBy: OrderBy, event: string): string | undefined {
  if (Object.hasOwn(orderBy, event)) return event;
  let best: string | undefined;
  for (const pattern of Object.keys(orderBy)) {
    if (!pattern.endsWith(".*")) continue;
    const prefix = pattern.slice(0, -1);
    if (event.startsWith(prefix) && (best === undefined || pattern.length > best.length)) best = pattern;
  }
  return best;
}
