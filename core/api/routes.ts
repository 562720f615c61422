/**
 * The inspection API (`/api/*`) as a route group of the HTTP server: status, plugins, the event
 * and run history, manual retries, replays and the catalog's JSON Schemas. The server's auth hook,
 * error handler and body parsers apply to it as to the other groups (the telephony ingress, the
 * webhook API, the console); core/ingress/http.ts keeps the server, `/events`, health and metrics.
 *
 * History pages are newest first and bounded in count and in bytes; `next` is the URL of the
 * following page (null on the last one).
 */
import { hostname } from "node:os";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { EventCatalog } from "../config/define.ts";
import type { Replayer } from "../delivery/replay.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { PluginManager } from "../plugins/manager.ts";
import type { DeliveryRecord, DeliveryStatus, Store } from "../store/types.ts";
import { truncateText } from "../base/truncate.ts";

/** Which daemon answers: `HOOKD_INSTANCE_ID`, or hostname:pid. */
export const INSTANCE_ID = process.env.HOOKD_INSTANCE_ID || `${hostname()}:${process.pid}`;

export interface ApiRoutesDeps {
  store: Store;
  plugins: PluginManager;
  catalog: () => EventCatalog;
  /** Config `server.maxPageBytes` and `server.listItemBytes`: list pages are bounded in bytes. */
  pageBytes?: () => { page: number; item: number };
  /** `GET /api/status`: plugins, queue, dead letters and recent errors in one answer. */
  status: () => Promise<unknown>;
  /** Called after a manual retry put a delivery back to pending. */
  onRetried: (run: DeliveryRecord) => void;
  replayer: Replayer;
}

const RUN_STATUSES = new Set(["pending", "running", "done", "dead", "failed", "cancelled", "discarded", "skipped"]);

const DEFAULT_PAGE_BYTES = 4 * 1024 * 1024;
const DEFAULT_LIST_ITEM_BYTES = 64 * 1024;

/** The `/api/*` routes as a route group (registered in its own scope by the HTTP server). */
export function apiRoutes(deps: ApiRoutesDeps): (scope: FastifyInstance) => Promise<void> {
  return async (scope) => registerApi(scope, deps);
}

function registerApi(app: FastifyInstance, deps: ApiRoutesDeps): void {
  /** Config `server.maxPageBytes` / `server.listItemBytes`, read per request (reloadable). */
  function pageBounds(): { page: number; item: number } {
    return deps.pageBytes?.() ?? { page: DEFAULT_PAGE_BYTES, item: DEFAULT_LIST_ITEM_BYTES };
  }

  app.get("/api/status", async () => deps.status());

  // Several instances behind one balancer each answer for their own plugins folder and sandbox.
  app.get("/api/plugins", async () => ({ instance: INSTANCE_ID, plugins: await deps.plugins.listWithPendingRuns() }));

  app.get<{ Querystring: Record<string, string | undefined> }>("/api/events", async (request) => {
    const q = request.query;
    // Delayed events not due yet, soonest first (one page of up to `limit`).
    if (q.scheduled !== undefined && !["true", "1", "false", "0"].includes(q.scheduled)) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", ["scheduled must be true or false"]);
    if (q.scheduled === "true" || q.scheduled === "1") {
      const bounds = pageBounds();
      const events = fitPage(await deps.store.listScheduledEvents({ now: Date.now(), limit: pageLimit(q.limit), maxPayloadBytes: bounds.item }), bounds.page);
      return { events: events.map((event) => ({ ...event, state: "scheduled" })), next: null };
    }
    const limit = pageLimit(q.limit);
    const bounds = pageBounds();
    const listed = await deps.store.listEvents({
      name: q.name,
      since: optionalTime(q.since, "since"),
      until: optionalTime(q.until, "until"),
      limit,
      before: optionalInt(q.before, "before"),
      // Payloads over the item bound are not even read; the detail (/api/events/{id}) has them.
      maxPayloadBytes: bounds.item,
    });
    const events = fitPage(listed, bounds.page);
    const more = events.length < listed.length || listed.length === limit;
    return { events, next: nextPage("/api/events", q, more ? events.at(-1)?.seq : undefined) };
  });

  // One event whole (GET /api/events/{id}) and one run (GET /api/runs/{id}): core/api/event-detail.ts, core/api/run-detail.ts.

  // A delayed event's runs that have not started are cancelled (status `cancelled`); 409 when none is left.
  app.post<{ Params: { id: string } }>("/api/events/:id/cancel", async (request) => {
    const cancelled = await deps.store.cancelScheduledEvent(request.params.id, Date.now());
    return { id: request.params.id, cancelled };
  });

  app.get<{ Querystring: Record<string, string | undefined> }>("/api/runs", async (request) => {
    const q = request.query;
    if (q.status !== undefined && !RUN_STATUSES.has(q.status)) {
      throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`status must be one of ${[...RUN_STATUSES].join(", ")}`]);
    }
    const limit = pageLimit(q.limit);
    const listed = await deps.store.listRuns({
      status: q.status as DeliveryStatus | "failed" | undefined,
      plugin: q.plugin,
      event: q.event,
      eventId: q.eventId,
      replayId: q.replayId,
      since: optionalTime(q.since, "since"),
      until: optionalTime(q.until, "until"),
      limit,
      before: optionalInt(q.before, "before"),
    });
    const bounds = pageBounds();
    const runs = fitPage(listed.map((run) => boundRunError(run, bounds.item)), bounds.page);
    const more = runs.length < listed.length || listed.length === limit;
    return { runs, next: nextPage("/api/runs", q, more ? runs.at(-1)?.id : undefined) };
  });

  app.post<{ Params: { id: string } }>("/api/runs/:id/retry", async (request, reply) => {
    const id = Number(request.params.id);
    if (!Number.isSafeInteger(id)) throw new HookdError("HOOKD_RUN_NOT_FOUND", [request.params.id]);
    const run = await deps.store.retryDelivery(id, Date.now());
    deps.onRetried(run);
    return reply.code(202).send({ run });
  });

  // Replay: `{ event, since, until?, plugin?, batch? }`; with `batch`, continue with the answer's
  // `replayId`, `until` and `after` until `done`. GET /api/replays/{id} counts its runs by status.
  app.post<{ Body: Record<string, unknown> | undefined }>("/api/replay", async (request, reply) => {
    const body = request.body ?? {};
    const str = (key: string) => (typeof body[key] === "string" && body[key] !== "" ? (body[key] as string) : undefined);
    const event = str("event");
    if (event === undefined) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", ["event is required"]);
    if (body.since === undefined) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", ["since is required (ISO-8601 time or epoch milliseconds)"]);
    const time = (key: string) => (body[key] === undefined ? undefined : parseTime(String(body[key]), key));
    const progress = await deps.replayer.schedule({
      event,
      since: time("since")!,
      until: time("until"),
      plugin: str("plugin"),
      replayId: str("replayId"),
      after: optionalInt(body.after === undefined ? undefined : String(body.after), "after"),
      batch: optionalInt(body.batch === undefined ? undefined : String(body.batch), "batch"),
    });
    return reply.code(202).send(progress);
  });

  app.get<{ Params: { id: string } }>("/api/replays/:id", async (request) => ({
    replayId: request.params.id,
    runs: await deps.replayer.progress(request.params.id),
  }));

  let catalogCache: { catalog: EventCatalog; body: unknown } | undefined;
  app.get("/api/catalog", async () => {
    const catalog = deps.catalog();
    if (catalogCache?.catalog !== catalog) catalogCache = { catalog, body: { events: catalogJsonSchemas(catalog) } };
    return catalogCache.body;
  });
}

/** Each event's JSON Schema, as a sender should produce it (zod's input side). */
export function catalogJsonSchemas(catalog: EventCatalog): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(catalog)) {
    schemas[name] = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  }
  return schemas;
}

function optionalInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`${name} must be an integer`]);
  return n;
}

/** Page size: 100 unless asked, at most 1000 (the store's own bounds). */
function pageLimit(value: string | undefined): number {
  return Math.min(Math.max(optionalInt(value, "limit") ?? 100, 1), 1000);
}

function optionalTime(value: string | undefined, name: string): number | undefined {
  return value === undefined ? undefined : parseTime(value, name);
}

function parseTime(value: string, name: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (Number.isNaN(ms)) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`${name} must be an ISO-8601 time or epoch milliseconds`]);
  return ms;
}

/**
 * The leading items of a list that fit `budget` bytes of JSON (at least one, which the item
 * bound keeps small): a page is bounded in bytes as well as in count, and `next` goes on from
 * its last item. 100 events of 8 MB made a 800 MB answer, or none ("Invalid string length").
 */
function fitPage<T>(items: readonly T[], budget: number): T[] {
  let used = 0;
  const page: T[] = [];
  for (const item of items) {
    used += Buffer.byteLength(JSON.stringify(item)) + 1;
    if (page.length > 0 && used > budget) break;
    page.push(item);
  }
  return page;
}

/** A run as listed: an error message over the item bound is cut, saying so (GET /api/runs/{id} has it whole). */
export function boundRunError(run: DeliveryRecord, maxChars: number): DeliveryRecord {
  const error = run.lastError;
  if (error === null || typeof error !== "object") return run;
  const long = (value: unknown): value is string => typeof value === "string" && value.length > maxChars;
  if (!long(error.message) && !long(error.stack)) return run;
  return {
    ...run,
    lastError: {
      ...error,
      message: long(error.message) ? truncateText(error.message, maxChars) : error.message,
      ...(long(error.stack) ? { stack: truncateText(error.stack, maxChars) } : {}),
    },
  };
}

/** The same query with `before` moved past the last item, or null when this page was the last. */
function nextPage(pathname: string, query: Record<string, string | undefined>, before: number | undefined): string | null {
  if (before === undefined) return null;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && key !== "before") params.set(key, value);
  params.set("before", String(before));
  return `${pathname}?${params}`;
}
