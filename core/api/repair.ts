/**
 * The console's operator tools on the API:
 * - `GET /api/actions`: every loaded action with its plugin and input JSON Schema (the schema a
 *   manual start, `POST /actions/{name}`, is checked against), for the console's start form;
 * - `POST /api/dead-letters/retry` with `{ plugin?, event?, code?, since?, until? }`: puts every
 *   matching dead letter back in the queue at once (at most MAX_BULK per call; `more` says
 *   whether some are left), as a manual retry of each one would;
 * - `POST /api/dead-letters/discard` with the same filter: marks every matching dead letter
 *   `discarded` (same bound and `more`), finished and never claimed again, but kept in history
 *   (`GET /api/runs?status=discarded`) with its error and attempts;
 * - `POST /api/events/{id}/replay` with `{ payload }`: the event again with an edited payload,
 *   checked against the catalog and accepted as a new event (source `replay`, the original as
 *   its parent, so the edit is kept beside the original and listed among its children), delivered
 *   to whoever subscribes to the event now, as any accepted event is.
 * All sit behind the API's auth (bearer token, or the console's cookie and header).
 */
import type { FastifyInstance } from "fastify";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { PluginManager } from "../plugins/manager.ts";
import type { DeliveryRecord, Store } from "../store/types.ts";

/** Dead letters one bulk call retries at most (the store lists 1000 at a time). */
export const MAX_BULK = 1000;

export interface RepairApiOptions {
  store: Store;
  plugins: Pick<PluginManager, "list" | "actionInputSchema">;
  /** A delivery went back to pending (metrics, a dispatcher wake). */
  onRetried: (run: DeliveryRecord) => void;
  /** Where an edited replay gets in: validated, stored and delivered like any event. */
  /** The daemon's intake (core/ingress/intake.ts, a room above this one): the edited replay goes through it. */
  intake: { accept(request: { name: string; body: unknown; source: "replay"; parent: { eventId: string; depth: number } }): Promise<{ id: string }> };
}

export interface DeadLetterFilter {
  plugin?: string | undefined;
  event?: string | undefined;
  code?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
}

/** The dead letters matching a filter, newest first, at most `limit`. */
export async function matchingDeadLetters(store: Store, filter: DeadLetterFilter, limit: number): Promise<DeliveryRecord[]> {
  const matching: DeliveryRecord[] = [];
  let before: number | undefined;
  // Pages of the dead list; the code is read from each run's error (no index: dead letters are few).
  for (let page = 0; page < 100 && matching.length < limit; page++) {
    const runs = await store.listRuns({ status: "dead", plugin: filter.plugin, event: filter.event, since: filter.since, until: filter.until, limit: 1000, before });
    for (const run of runs) if (filter.code === undefined || run.lastError?.code === filter.code) matching.push(run);
    if (runs.length < 1000) break;
    before = runs.at(-1)!.id;
  }
  return matching.slice(0, limit);
}

export function repairApi(options: RepairApiOptions) {
  return async function registerRepair(scope: FastifyInstance): Promise<void> {
    scope.get("/api/actions", async () => {
      const actions: Record<string, { plugin: string; input: unknown }> = {};
      for (const plugin of options.plugins.list()) for (const action of plugin.actions) actions[action] = { plugin: plugin.name, input: options.plugins.actionInputSchema(action) ?? {} };
      return { actions };
    });

    scope.post<{ Body: Record<string, unknown> | undefined }>("/api/dead-letters/retry", async (request, reply) => {
      const filter = filterOf(request.body ?? {});
      const matching = await matchingDeadLetters(options.store, filter, MAX_BULK + 1);
      const retried: number[] = [];
      for (const run of matching.slice(0, MAX_BULK)) {
        const record = await options.store.retryDelivery(run.id, Date.now());
        options.onRetried(record);
        retried.push(run.id);
      }
      return reply.code(202).send({ retried: retried.length, ids: retried, more: matching.length > MAX_BULK });
    });

    scope.post<{ Body: Record<string, unknown> | undefined }>("/api/dead-letters/discard", async (request) => {
      const filter = filterOf(request.body ?? {});
      const matching = await matchingDeadLetters(options.store, filter, MAX_BULK + 1);
      const discarded = await options.store.discardDeliveries(matching.slice(0, MAX_BULK).map((run) => run.id), Date.now());
      return { discarded: discarded.length, ids: discarded, more: matching.length > MAX_BULK };
    });

    scope.post<{ Params: { id: string }; Body: unknown }>("/api/events/:id/replay", async (request, reply) => {
      const body = request.body;
      if (typeof body !== "object" || body === null || !Object.hasOwn(body, "payload")) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", ["the body must be { payload }"]);
      const original = await options.store.getEvent(request.params.id);
      if (!original) throw new HookdError("HOOKD_EVENT_NOT_FOUND", [request.params.id]);
      const accepted = await options.intake.accept({
        name: original.name,
        body: (body as { payload: unknown }).payload,
        source: "replay",
        parent: { eventId: original.id, depth: original.depth },
      });
      return reply.code(202).send({ id: accepted.id, name: original.name, parentId: original.id });
    });
  };
}

function filterOf(body: Record<string, unknown>): DeadLetterFilter {
  const text = (key: string): string | undefined => {
    const value = body[key];
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value !== "string") throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`${key} must be a string`]);
    return value;
  };
  const time = (key: string): number | undefined => {
    const value = text(key) ?? (typeof body[key] === "number" ? String(body[key]) : undefined);
    if (value === undefined) return undefined;
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
    if (Number.isNaN(ms)) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`${key} must be an ISO-8601 time or epoch milliseconds`]);
    return ms;
  };
  return { plugin: text("plugin"), event: text("event"), code: text("code"), since: time("since"), until: time("until") };
}
