/**
 * The workstation bridge's HTTP side (pinned in DESIGN.md, "The telephony workstation bridge"):
 *
 *   GET  /oktell/commands?user=<login>&wait=<s>   long-poll: 200 {"commands":[{id, method, xml}]} or 204
 *   POST /oktell/commands/{id}/result             the method's XML (UTF-16/UTF-8), {"returned": ...} or {"error": "..."}
 *   GET  /api/oktell/commands[/{id}]              the commands and their states, for people and the console
 *
 * In a fastify scope of its own: result bodies are read as bytes and decoded by what they hold
 * (relays mislabel both the XML's type and its charset), like the telephony ingress.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { HookdError } from "../../../sandbox/contract/errors.ts";
import { jsonTextTooDeep } from "../../base/depth.ts";
import type { OktellBridge, BridgeResult } from "./bridge.ts";
import { MAX_POLL_WAIT_SECONDS } from "./bridge.ts";
import type { OktellCommandRecord, OktellCommandState } from "../../store/oktell-commands.ts";
import { describeMethods } from "./methods.ts";

const STATES = new Set<OktellCommandState>(["queued", "sent", "answered", "failed", "expired", "cancelled"]);
/** A bridge that names no wait gets a long-poll of this many seconds. */
const DEFAULT_WAIT_SECONDS = 25;

export function oktellBridgeRoutes(bridge: OktellBridge, options: { stopping: () => boolean; maxDepth: () => number }) {
  return async function registerOktellBridgeRoutes(scope: FastifyInstance): Promise<void> {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

    scope.get<{ Querystring: Record<string, string | undefined> }>("/oktell/commands", async (request, reply) => {
      if (options.stopping()) throw new HookdError("HOOKD_HTTP_SHUTTING_DOWN");
      const user = userOf(request);
      if (user === undefined) throw new HookdError("HOOKD_OKTELL_USER_MISSING", ["GET /oktell/commands"]);
      const waitMs = waitOf(request.query.wait);
      // The bridge hung up (or the daemon stops): the poll ends, and what it claimed goes again after its lease.
      const gone = new AbortController();
      reply.raw.once("close", () => gone.abort());
      const commands = await bridge.poll(user, waitMs, gone.signal);
      if (commands.length === 0) return reply.code(204).send();
      return { commands: commands.map(forBridge) };
    });

    scope.post<{ Params: { id: string } }>("/oktell/commands/:id/result", async (request) => {
      if (options.stopping()) throw new HookdError("HOOKD_HTTP_SHUTTING_DOWN");
      const record = await bridge.answer(request.params.id, readResult(request, request.params.id, options.maxDepth()), userOf(request));
      return { command: forPeople(record) };
    });

    scope.get<{ Querystring: Record<string, string | undefined> }>("/api/oktell/commands", async (request) => {
      const q = request.query;
      if (q.state !== undefined && !STATES.has(q.state as OktellCommandState)) {
        throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`state must be one of ${[...STATES].join(", ")}`]);
      }
      const limit = q.limit === undefined ? 100 : Number(q.limit);
      const before = q.before === undefined ? undefined : Number(q.before);
      if (!Number.isSafeInteger(limit) || (before !== undefined && !Number.isSafeInteger(before))) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", ["limit and before must be integers"]);
      const commands = await bridge.list({ user: q.user, state: q.state as OktellCommandState | undefined, limit, before });
      const next = commands.length === Math.min(Math.max(limit, 1), 1000) ? commands.at(-1)?.seq : undefined;
      const params = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined && e[0] !== "before"));
      if (next !== undefined) params.set("before", String(next));
      return { commands: commands.map(forPeople), next: next === undefined ? null : `/api/oktell/commands?${params}` };
    });

    // The protocol itself, described like /api/catalog describes the events.
    scope.get("/api/oktell", async () => ({
      endpoints: {
        ingest: "POST /ingest/oktell?user=<login> (or x-oktell-user): the component's events, UTF-16 or UTF-8 XML",
        poll: `GET /oktell/commands?user=<login>&wait=<0..${MAX_POLL_WAIT_SECONDS}>: 200 {"commands":[{"id","method","xml","arg"?}]} or 204`,
        result: "POST /oktell/commands/{id}/result?user=<login>: the method's XML (UTF-16 or UTF-8), {\"returned\": ...} or {\"error\": \"...\"}",
        commands: "GET /api/oktell/commands?user=&state=&limit=&before=, GET /api/oktell/commands/{id}",
      },
      states: [...STATES],
      methods: describeMethods(),
    }));

    scope.get<{ Params: { id: string } }>("/api/oktell/commands/:id", async (request) => {
      const command = await bridge.get(request.params.id);
      if (!command) throw new HookdError("HOOKD_OKTELL_COMMAND_UNKNOWN", [request.params.id]);
      return { command: forPeople(command) };
    });
  };
}

/** `?user=` or the `x-oktell-user` header (the query wins). */
function userOf(request: FastifyRequest): string | undefined {
  const query = (request.query as Record<string, unknown>).user;
  if (typeof query === "string") return query;
  if (Array.isArray(query)) throw new HookdError("HOOKD_OKTELL_USER_INVALID", [JSON.stringify(query)]);
  const header = request.headers["x-oktell-user"];
  return Array.isArray(header) ? header[0] : header;
}

function waitOf(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_WAIT_SECONDS * 1000;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_POLL_WAIT_SECONDS) {
    throw new HookdError("HOOKD_HTTP_BAD_REQUEST", [`wait must be a number of seconds from 0 to ${MAX_POLL_WAIT_SECONDS}`]);
  }
  return Math.round(seconds * 1000);
}

/** JSON when it says so or looks like it (a `{` first), else the method's XML. */
function readResult(request: FastifyRequest, id: string, maxDepth: number): BridgeResult {
  const body = request.body;
  if (!Buffer.isBuffer(body) || body.length === 0) throw new HookdError("HOOKD_OKTELL_RESULT_INVALID", [id, "the body is empty"]);
  const type = String(request.headers["content-type"] ?? "").toLowerCase();
  const first = body.subarray(0, 64).toString("latin1").trimStart()[0];
  if (!type.includes("json") && first !== "{") return { kind: "xml", bytes: body };
  const text = body.toString("utf8");
  if (jsonTextTooDeep(text, maxDepth)) throw new HookdError("HOOKD_HTTP_TOO_DEEP", ["the result body", maxDepth]);
  try {
    return { kind: "json", value: JSON.parse(text) };
  } catch (error) {
    throw new HookdError("HOOKD_OKTELL_RESULT_INVALID", [id, `not JSON: ${error instanceof Error ? error.message : String(error)}`], { cause: error });
  }
}

/** What a bridge gets: the component's method and its argument (XML, or a boolean for TM_SetConfirmUsage). */
function forBridge(command: OktellCommandRecord): Record<string, unknown> {
  return { id: command.id, method: command.method, xml: command.xml, ...(command.arg === null ? {} : { arg: command.arg }) };
}

function forPeople(command: OktellCommandRecord & { seq?: number }): Record<string, unknown> {
  return {
    id: command.id,
    user: command.user,
    method: command.method,
    state: command.state,
    requestedBy: command.requestedBy,
    xml: command.xml,
    arg: command.arg,
    createdAt: command.createdAt,
    notBefore: command.notBefore,
    expiresAt: command.expiresAt,
    sentAt: command.sentAt,
    attempts: command.attempts,
    finishedAt: command.finishedAt,
    answer: command.answer,
    error: command.error,
    guardTask: command.guardTask,
  };
}
