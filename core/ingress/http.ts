/**
 * The HTTP API on fastify: event ingress, manual action starts, health, metrics and the
 * inspection API. Every error answers `{"error": {"code": "HOOKD_...", "message", "issues"?}}`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { hostname } from "node:os";
import formbody from "@fastify/formbody";
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import qs from "qs";
import { z } from "zod";
import type { EventCatalog } from "../config/define.ts";
import { admitConsoleRequest } from "../console/auth.ts";
import { HookdError, isHookdError } from "../errors.ts";
import type { Metrics } from "../metrics.ts";
import type { PluginManager } from "../plugins/manager.ts";
import type { DeliveryRecord, DeliveryStatus, Store } from "../store/types.ts";
import type { EventIntake } from "./intake.ts";
import { DEFAULT_MAX_DEPTH, jsonTextTooDeep } from "./depth.ts";
import { truncateText } from "../truncate.ts";
import type { Replayer } from "../delivery/replay.ts";
import { validTraceparent } from "../telemetry/tracing.ts";

/** Which daemon answers: `HOOKD_INSTANCE_ID`, or hostname:pid. */
export const INSTANCE_ID = process.env.HOOKD_INSTANCE_ID || `${hostname()}:${process.pid}`;

export interface HttpDeps {
  intake: EventIntake;
  store: Store;
  plugins: PluginManager;
  metrics: Metrics;
  catalog: () => EventCatalog;
  token: () => string | undefined;
  bodyLimit: number;
  /** Config `server.maxDepth`: deepest nesting a body may have (read per request: reloadable). */
  maxDepth?: () => number;
  /** Config `server.maxPageBytes` and `server.listItemBytes`: list pages are bounded in bytes. */
  pageBytes?: () => { page: number; item: number };
  /** Why the daemon is not ready, or undefined when it is. */
  notReadyReason: () => string | undefined | Promise<string | undefined>;
  /** What a ready daemon still lacks (the sandbox's kernel wall), shown by `GET /readyz`; none when complete. */
  readyWarnings?: () => string[];
  /** `GET /api/status`: plugins, queue, dead letters and recent errors in one answer. */
  status: () => Promise<unknown>;
  stopping: () => boolean;
  /** Called after a manual retry put a delivery back to pending. */
  onRetried: (run: DeliveryRecord) => void;
  replayer: Replayer;
  /** Route groups kept in their own modules (the telephony ingress, the webhook API), each in its own scope. */
  routeGroups?: ReadonlyArray<(scope: FastifyInstance) => Promise<void>>;
}

const PUBLIC_PATHS = new Set(["/healthz", "/readyz"]);
const RUN_STATUSES = new Set(["pending", "running", "done", "dead", "failed"]);

export function createHttpServer(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.bodyLimit,
    // The API answers its own 404s and errors in hookd's error format.
    return503OnClosing: true,
    // By the time the server closes, the daemon has stopped taking events and drained its runs:
    // connections still open (a browser's preconnect that never sent a request, a keep-alive
    // client) are closed instead of holding the stop until their idle timeout.
    forceCloseConnections: true,
  });

  // Events are JSON or forms; fastify's default text/plain parser would let a string through.
  app.removeContentTypeParser("text/plain");
  const maxDepth = () => deps.maxDepth?.() ?? DEFAULT_MAX_DEPTH;
  // JSON: the nesting is counted on the text before it is parsed (a linear scan), so a body
  // nested thousands deep is a 400 and no parser or later walk of it ever sees it. The parse
  // itself stays fastify's (secure-json-parse, prototype poisoning refused).
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (jsonTextTooDeep(body as string, maxDepth())) return done(new HookdError("HOOKD_HTTP_TOO_DEEP", ["the request body", maxDepth()]), undefined);
    parseJson(request, body as string, done);
  });
  // PHP forms send arrays as `clids[]=1&clids[]=2` and maps as `newparam[title]=x`: the same
  // rules for a urlencoded body, a query string and multipart fields (parseForm).
  const form = (text: string, what: string) => parseForm(text, what, maxDepth());
  app.register(formbody, { bodyLimit: deps.bodyLimit, parser: (body: string) => form(body, "the form body") });
  // multipart/form-data: what PHP curl sends for an array CURLOPT_POSTFIELDS. The parts are read
  // by readBody (fields only, a file is a 415), bounded like any body.
  app.register(multipart, {
    limits: { fieldSize: deps.bodyLimit, fields: 2000, parts: 2001, files: 1, headerPairs: 200 },
  });
  /** The event's payload: the body (JSON, form or multipart fields) over the query string's fields. */
  async function readPayload(request: FastifyRequest): Promise<unknown> {
    const query = queryOf(request);
    const body = request.isMultipart() ? await readMultipart(request) : request.body;
    if (query === undefined) return body ?? {};
    if (body === undefined || body === null) return query;
    // The body wins on a clash; a body that is not an object (a JSON list) stays as sent.
    return typeof body === "object" && !Array.isArray(body) ? { ...query, ...(body as object) } : body;
  }
  function queryOf(request: FastifyRequest): Record<string, unknown> | undefined {
    const url = request.raw.url ?? "";
    const at = url.indexOf("?");
    if (at < 0 || at === url.length - 1) return undefined;
    return form(url.slice(at + 1), "the query string");
  }
  async function readMultipart(request: FastifyRequest): Promise<Record<string, unknown>> {
    const pairs = new URLSearchParams();
    let bytes = 0;
    try {
      for await (const part of request.parts()) {
        if (part.type === "file") {
          part.file.resume();
          throw new HookdError("HOOKD_HTTP_FILE_PART", [JSON.stringify(part.fieldname)]);
        }
        if (part.valueTruncated || part.fieldnameTruncated) throw new HookdError("HOOKD_HTTP_BODY_TOO_LARGE", [deps.bodyLimit]);
        const value = typeof part.value === "string" ? part.value : String(part.value);
        bytes += Buffer.byteLength(part.fieldname) + Buffer.byteLength(value);
        if (bytes > deps.bodyLimit) throw new HookdError("HOOKD_HTTP_BODY_TOO_LARGE", [deps.bodyLimit]);
        pairs.append(part.fieldname, value);
      }
    } catch (error) {
      if (isHookdError(error)) throw error;
      const code = (error as { code?: string }).code ?? "";
      if (code === "FST_FILES_LIMIT") throw new HookdError("HOOKD_HTTP_FILE_PART", ["(a second file)"], { cause: error });
      if (/LIMIT/.test(code)) throw new HookdError("HOOKD_HTTP_BODY_TOO_LARGE", [deps.bodyLimit], { cause: error });
      throw new HookdError("HOOKD_HTTP_MALFORMED_BODY", [error instanceof Error ? error.message : String(error)], { cause: error });
    }
    return form(pairs.toString(), "the multipart fields");
  }

  app.addHook("onRequest", async (request) => {
    const token = deps.token();
    if (token === undefined || PUBLIC_PATHS.has(request.routeOptions.url ?? "")) return;
    // A browser on the console shows the token as a cookie instead (core/console/auth.ts).
    if (!bearerMatches(request.headers.authorization, token) && !admitConsoleRequest(request, token)) throw new HookdError("HOOKD_HTTP_UNAUTHORIZED");
  });

  app.setErrorHandler((error, request, reply) => sendError(reply, toHookdError(error, deps.bodyLimit, request.headers["content-type"])));
  app.setNotFoundHandler((request, reply) => sendError(reply, new HookdError("HOOKD_HTTP_NOT_FOUND", [request.method, request.url])));
  // Registered after the auth hook and the error handler, which their scopes inherit.
  for (const group of deps.routeGroups ?? []) app.register(group);

  // POST with a JSON, form or multipart body (query fields too, the body winning), or GET with
  // the query string as the payload: the CRM's webhooks send either. Same validation after.
  app.route<{ Params: { name: string } }>({
    method: ["GET", "POST"],
    url: "/events/:name",
    // A HEAD (a link checker, a monitor) must not store an event, as fastify's implied one would.
    exposeHeadRoute: false,
    // Decided before the body is read: an unknown event or a stopping daemon costs no parsing.
    onRequest: async (request) => {
      if (deps.stopping()) throw new HookdError("HOOKD_HTTP_SHUTTING_DOWN");
      if (!deps.intake.knows(request.params.name)) {
        deps.metrics.eventsRejected.inc({ event: "(unknown)", reason: "unknown" });
        throw new HookdError("HOOKD_EVENT_UNKNOWN", [request.params.name]);
      }
    },
    handler: async (request, reply) => {
      const accepted = await deps.intake.accept({
        name: request.params.name,
        body: await readPayload(request),
        source: "http",
        idempotencyKey: idempotencyKeyOf(request),
        // Traces out: the sender's trace context, if it sent a valid one (core/telemetry/tracing.ts).
        traceparent: validTraceparent(headerOf(request, "traceparent")),
      });
      if (accepted.duplicate) reply.header("idempotent-replayed", "true");
      return reply.code(202).send({ id: accepted.id });
    },
  });

  app.post<{ Params: { name: string } }>(
    "/actions/:name",
    {
      onRequest: async () => {
        if (deps.stopping()) throw new HookdError("HOOKD_HTTP_SHUTTING_DOWN");
      },
    },
    async (request, reply) => {
      const accepted = await deps.intake.startAction(request.params.name, request.body ?? {}, idempotencyKeyOf(request));
      if (accepted.duplicate) reply.header("idempotent-replayed", "true");
      return reply.code(202).send({ id: accepted.id });
    },
  );

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const reason = await deps.notReadyReason();
    if (reason !== undefined) return sendError(reply, new HookdError("HOOKD_HTTP_NOT_READY", [reason]));
    const warnings = deps.readyWarnings?.() ?? [];
    return warnings.length > 0 ? { status: "ready", warnings } : { status: "ready" };
  });
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  app.get("/api/status", async () => deps.status());

  // Several instances behind one balancer each answer for their own plugins folder and sandbox.
  app.get("/api/plugins", async () => ({ instance: INSTANCE_ID, plugins: await deps.plugins.listWithPendingRuns() }));

  // History pages newest first; `next` is the URL of the following page (null on the last one).
  app.get<{ Querystring: Record<string, string | undefined> }>("/api/events", async (request) => {
    const q = request.query;
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

  /** Config `server.maxPageBytes` / `server.listItemBytes`, read per request (reloadable). */
  function pageBounds(): { page: number; item: number } {
    return deps.pageBytes?.() ?? { page: DEFAULT_PAGE_BYTES, item: DEFAULT_LIST_ITEM_BYTES };
  }

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

  return app;
}

/** Each event's JSON Schema, as a sender should produce it (zod's input side). */
export function catalogJsonSchemas(catalog: EventCatalog): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(catalog)) {
    schemas[name] = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  }
  return schemas;
}

function sendError(reply: FastifyReply, error: HookdError): FastifyReply {
  return reply.code(error.statusCode).type("application/json").send(error.toJSON());
}

/**
 * A form-encoded text (body, query string, multipart fields) by PHP's array rules, with qs. Its
 * depth is the form's nesting bound (config server.maxDepth, at most 5); strictDepth makes a
 * deeper key a 400 instead of a key silently kept as text.
 */
export function parseForm(text: string, what: string, maxDepth: number): Record<string, unknown> {
  const depth = Math.min(5, maxDepth);
  try {
    return qs.parse(text, { depth, strictDepth: true, arrayLimit: 1000, parameterLimit: 2000 });
  } catch (error) {
    if (error instanceof RangeError) throw new HookdError("HOOKD_HTTP_TOO_DEEP", [what, depth], { cause: error });
    throw error;
  }
}

/** fastify's own errors (body too large, bad JSON, wrong content type) in hookd's codes. */
function toHookdError(error: unknown, bodyLimit: number, contentType?: string): HookdError {
  if (isHookdError(error)) return error;
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new HookdError("HOOKD_HTTP_BODY_TOO_LARGE", [bodyLimit], { cause: error });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
        ? new HookdError("HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE", [mediaTypeOf(contentType, message)], { cause: error })
        : new HookdError("HOOKD_HTTP_MALFORMED_BODY", [message], { cause: error });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new HookdError("HOOKD_HTTP_MALFORMED_BODY", [message], { cause: error });
  }
  const status = (error as { statusCode?: number }).statusCode;
  if (error instanceof SyntaxError || status === 400) return new HookdError("HOOKD_HTTP_MALFORMED_BODY", [message], { cause: error });
  if (status === 413) return new HookdError("HOOKD_HTTP_BODY_TOO_LARGE", [bodyLimit], { cause: error });
  if (status === 415) return new HookdError("HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE", [mediaTypeOf(contentType, message)], { cause: error });
  return new HookdError("HOOKD_DAEMON_INTERNAL", [message], { cause: error });
}

/** The type that arrived, from the request's header (the error's own message may not name it). */
function mediaTypeOf(contentType: string | undefined, message: string): string {
  const sent = contentType?.split(";")[0]?.trim();
  if (sent) return JSON.stringify(sent.slice(0, 100));
  return /: (.*)$/.exec(message)?.[1] ?? "(none)";
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
  if (!match) return false;
  // Compare digests: equal length, constant time, whatever the token's length.
  const given = createHash("sha256").update(match[1]!.trim()).digest();
  const expected = createHash("sha256").update(token).digest();
  return timingSafeEqual(given, expected);
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers[name];
  return Array.isArray(header) ? header[0] : header;
}

function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers["idempotency-key"];
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > 255) {
    throw new HookdError("HOOKD_HTTP_BAD_REQUEST", ["Idempotency-Key must be 1 to 255 characters"]);
  }
  return key;
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

const DEFAULT_PAGE_BYTES = 4 * 1024 * 1024;
const DEFAULT_LIST_ITEM_BYTES = 64 * 1024;

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

function parseTime(value: string, name: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (Number.isNaN(ms)) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`${name} must be an ISO-8601 time or epoch milliseconds`]);
  return ms;
}
