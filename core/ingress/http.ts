/**
 * The HTTP API on fastify: event ingress, manual action starts, health, metrics and the
 * inspection API. Every error answers `{"error": {"code": "HOOKD_...", "message", "issues"?}}`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import formbody from "@fastify/formbody";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import qs from "qs";
import { z } from "zod";
import type { EventCatalog } from "../config/define.ts";
import { HookdError, isHookdError } from "../errors.ts";
import type { Metrics } from "../metrics.ts";
import type { PluginManager } from "../plugins/manager.ts";
import type { DeliveryStatus, Store } from "../store/types.ts";
import type { EventIntake } from "./intake.ts";

export interface HttpDeps {
  intake: EventIntake;
  store: Store;
  plugins: PluginManager;
  metrics: Metrics;
  catalog: () => EventCatalog;
  token: () => string | undefined;
  bodyLimit: number;
  /** Why the daemon is not ready, or undefined when it is. */
  notReadyReason: () => string | undefined;
  stopping: () => boolean;
  /** Called after a manual retry put a delivery back to pending. */
  onRetried: () => void;
}

const PUBLIC_PATHS = new Set(["/healthz", "/readyz"]);
const RUN_STATUSES = new Set(["pending", "running", "done", "dead", "failed"]);

export function createHttpServer(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.bodyLimit,
    // The API answers its own 404s and errors in hookd's error format.
    return503OnClosing: true,
  });

  // Events are JSON or forms; fastify's default text/plain parser would let a string through.
  app.removeContentTypeParser("text/plain");
  app.register(formbody, {
    bodyLimit: deps.bodyLimit,
    // PHP forms send arrays as `clids[]=1&clids[]=2` and maps as `newparam[title]=x`.
    parser: (body: string) => qs.parse(body, { depth: 5, arrayLimit: 1000, parameterLimit: 2000 }),
  });

  app.addHook("onRequest", async (request) => {
    const token = deps.token();
    if (token === undefined || PUBLIC_PATHS.has(request.routeOptions.url ?? "")) return;
    if (!bearerMatches(request.headers.authorization, token)) throw new HookdError("HOOKD_HTTP_UNAUTHORIZED");
  });

  app.setErrorHandler((error, _request, reply) => sendError(reply, toHookdError(error, deps.bodyLimit)));
  app.setNotFoundHandler((request, reply) => sendError(reply, new HookdError("HOOKD_HTTP_NOT_FOUND", [request.method, request.url])));

  app.post<{ Params: { name: string } }>(
    "/events/:name",
    {
      // Decided before the body is read: an unknown event or a stopping daemon costs no parsing.
      onRequest: async (request) => {
        if (deps.stopping()) throw new HookdError("HOOKD_HTTP_SHUTTING_DOWN");
        if (!deps.intake.knows(request.params.name)) {
          deps.metrics.eventsRejected.inc({ event: "(unknown)", reason: "unknown" });
          throw new HookdError("HOOKD_EVENT_UNKNOWN", [request.params.name]);
        }
      },
    },
    async (request, reply) => {
      const accepted = await deps.intake.accept({
        name: request.params.name,
        body: request.body ?? {},
        source: "http",
        idempotencyKey: idempotencyKeyOf(request),
      });
      if (accepted.duplicate) reply.header("idempotent-replayed", "true");
      return reply.code(202).send({ id: accepted.id });
    },
  );

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
    const reason = deps.notReadyReason();
    if (reason !== undefined) return sendError(reply, new HookdError("HOOKD_HTTP_NOT_READY", [reason]));
    return { status: "ready" };
  });
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  app.get("/api/plugins", async () => ({ plugins: deps.plugins.list() }));

  app.get<{ Querystring: Record<string, string | undefined> }>("/api/events", async (request) => {
    const q = request.query;
    return {
      events: await deps.store.listEvents({
        name: q.name,
        since: q.since === undefined ? undefined : parseTime(q.since, "since"),
        limit: optionalInt(q.limit, "limit"),
        before: q.before === undefined ? undefined : Number.isNaN(Number(q.before)) ? undefined : Number(q.before),
      }),
    };
  });

  app.get<{ Querystring: Record<string, string | undefined> }>("/api/runs", async (request) => {
    const q = request.query;
    if (q.status !== undefined && !RUN_STATUSES.has(q.status)) {
      throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`status must be one of ${[...RUN_STATUSES].join(", ")}`]);
    }
    return {
      runs: await deps.store.listRuns({
        status: q.status as DeliveryStatus | "failed" | undefined,
        plugin: q.plugin,
        event: q.event,
        eventId: q.eventId,
        limit: optionalInt(q.limit, "limit"),
        before: optionalInt(q.before, "before"),
      }),
    };
  });

  app.post<{ Params: { id: string } }>("/api/runs/:id/retry", async (request, reply) => {
    const id = Number(request.params.id);
    if (!Number.isSafeInteger(id)) throw new HookdError("HOOKD_RUN_NOT_FOUND", [request.params.id]);
    const run = await deps.store.retryDelivery(id, Date.now());
    deps.onRetried();
    return reply.code(202).send({ run });
  });

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

/** fastify's own errors (body too large, bad JSON, wrong content type) in hookd's codes. */
function toHookdError(error: unknown, bodyLimit: number): HookdError {
  if (isHookdError(error)) return error;
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new HookdError("HOOKD_HTTP_BODY_TOO_LARGE", [bodyLimit], { cause: error });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
        ? new HookdError("HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE", [extractMediaType(message)], { cause: error })
        : new HookdError("HOOKD_HTTP_MALFORMED_BODY", [message], { cause: error });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new HookdError("HOOKD_HTTP_MALFORMED_BODY", [message], { cause: error });
  }
  const status = (error as { statusCode?: number }).statusCode;
  if (error instanceof SyntaxError || status === 400) return new HookdError("HOOKD_HTTP_MALFORMED_BODY", [message], { cause: error });
  if (status === 413) return new HookdError("HOOKD_HTTP_BODY_TOO_LARGE", [bodyLimit], { cause: error });
  if (status === 415) return new HookdError("HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE", [extractMediaType(message)], { cause: error });
  return new HookdError("HOOKD_DAEMON_INTERNAL", [message], { cause: error });
}

function extractMediaType(message: string): string {
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

function parseTime(value: string, name: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (Number.isNaN(ms)) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`${name} must be an ISO-8601 time or epoch milliseconds`]);
  return ms;
}
