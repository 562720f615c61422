/**
 * The HTTP server on fastify: event ingress, manual action starts, health and metrics; the
 * inspection API (`/api/*`, core/api/routes.ts) and the other route groups register in their own
 * scopes, under this server's auth hook and error handler. Every error answers
 * `{"error": {"code": "HOOKD_...", "message", "issues"?}}`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import formbody from "@fastify/formbody";
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import qs from "qs";
import { apiRoutes, type ApiRoutesDeps } from "../api/routes.ts";
import { admitConsoleRequest } from "../console/auth.ts";
import { DEFAULT_MAX_DEPTH, jsonTextTooDeep } from "../base/depth.ts";
import { HookdError, isHookdError } from "../../sandbox/contract/errors.ts";
import type { Metrics } from "../base/metrics.ts";
import type { EventIntake } from "./intake.ts";
import { deliverAtFromHeaders, type CalendarLookup } from "../time/delay.ts";
import { validTraceparent } from "../telemetry/tracing.ts";

/** What the server needs; the `/api/*` group (core/api/routes.ts) gets its part of it. */
export interface HttpDeps extends ApiRoutesDeps {
  intake: EventIntake;
  metrics: Metrics;
  token: () => string | undefined;
  bodyLimit: number;
  /** Config `server.maxDepth`: deepest nesting a body may have (read per request: reloadable). */
  maxDepth?: () => number;
  /** Why the daemon is not ready, or undefined when it is. */
  notReadyReason: () => string | undefined | Promise<string | undefined>;
  /** What a ready daemon still lacks (the sandbox's kernel wall), shown by `GET /readyz`; none when complete. */
  readyWarnings?: () => string[];
  stopping: () => boolean;
  /** Route groups kept in their own modules (the telephony ingress, the webhook API), each in its own scope. */
  routeGroups?: ReadonlyArray<(scope: FastifyInstance) => Promise<void>>;
  /** The config's calendars, for `hookd-within` (core/time). */
  calendars?: CalendarLookup;
}

const PUBLIC_PATHS = new Set(["/healthz", "/readyz"]);

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
  app.register(apiRoutes(deps));
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
      // `hookd-delay: 2h` / `hookd-deliver-at: <ISO 8601>`: a bad value is a 400 before anything is read or stored.
      const deliverAt = deliverAtFromHeaders(request.headers, Date.now(), deps.calendars);
      const accepted = await deps.intake.accept({
        name: request.params.name,
        body: await readPayload(request),
        source: "http",
        idempotencyKey: idempotencyKeyOf(request),
        deliverAt,
        // Traces out: the sender's trace context, if it sent a valid one (core/telemetry/tracing.ts).
        traceparent: validTraceparent(headerOf(request, "traceparent")),
      });
      if (accepted.duplicate) reply.header("idempotent-replayed", "true");
      return reply.code(202).send(deliverAt === undefined || accepted.duplicate ? { id: accepted.id } : { id: accepted.id, deliverAt: new Date(deliverAt).toISOString() });
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

  return app;
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
