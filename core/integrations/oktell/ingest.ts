/**
 * `POST /ingest/oktell`: the telephony server's service events as `<oktellcommapper>` XML.
 * bytes -> text (decode.ts) -> `<event>` elements (xml.ts) -> catalog payloads
 * (convert.ts) -> validated all together -> stored all or none -> `202 {"ids":[...]}`.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { HookdError, isHookdError } from "../../../sandbox/contract/errors.ts";
import type { Logger } from "../../base/log.ts";
import { convertOktellEvent, type ConvertedOktellEvent } from "./convert.ts";
import { decodeXmlBody } from "./decode.ts";
import { parseOktellXml } from "./xml.ts";
import { checkUser } from "./bridge.ts";

/**
 * What the telephony ingest needs of the daemon's intake (core/ingress/intake.ts, which stands
 * above this room): the catalog check, and storing a request's events in one go.
 */
export interface OktellIntake {
  validate(name: string, body: unknown): unknown;
  acceptAll(
    requests: ReadonlyArray<{ name: string; body: unknown; source: "oktell"; sourceUser?: string | undefined; idempotencyKey?: string | undefined }>,
  ): Promise<Array<{ id: string; duplicate: boolean }>>;
}

export interface OktellIngressOptions {
  intake: OktellIntake;
  logger: Logger;
  /** Config `oktell.timezone`, read per request so a config reload applies. */
  timezone: () => string | undefined;
  stopping: () => boolean;
  /** Config `server.maxDepth`: deepest element nesting of the XML's properties. */
  maxDepth?: () => number;
  /** After the events are stored: the confirm guard's look at them (bridge.ts). */
  onStored?: (user: string | undefined, events: ReadonlyArray<{ id: string; name: string; body: Record<string, unknown>; duplicate: boolean }>, arrivedAt: number) => Promise<void>;
}

/** Registers the route in its own fastify scope, where every body is read as raw bytes. */
export function oktellIngress(options: OktellIngressOptions) {
  const log = options.logger.child({ component: "ingest", source: "oktell" });
  return async function registerOktellIngress(scope: FastifyInstance): Promise<void> {
    // Relays label this XML text/xml, application/xml, text/plain or nothing at all, and their
    // charset is often wrong: the bytes are read as they are and decoded by what they contain.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

    scope.post(
      "/ingest/oktell",
      {
        onRequest: async () => {
          if (options.stopping()) throw new HookdError("HOOKD_HTTP_SHUTTING_DOWN");
        },
      },
      async (request, reply) => {
        // Before anything is stored: what the events' handlers do from here on may be quicker than onStored.
        const arrivedAt = Date.now();
        // The workstation the events came from (its bridge says so): every event carries it as ctx.event.source.user.
        const user = workstationUserOf(request);
        const events = readOktellBody(request.body, options.timezone(), options.maxDepth?.());
        for (const event of events) {
          if (event.mismatch) {
            log.warn({ index: event.index, ...event.mismatch }, `event id ${event.mismatch.id} names ${event.mismatch.idName ?? "no event"}, its name says ${event.mismatch.name}: taken as ${event.name}`);
          }
        }
        validateAll(options.intake, events);
        const key = idempotencyKeyOf(request);
        const accepted = await options.intake.acceptAll(
          events.map((event) => ({
            name: event.name,
            body: event.body,
            source: "oktell" as const,
            sourceUser: user,
            // One key per event of the request, so a repeated request returns the same ids.
            idempotencyKey: key === undefined ? undefined : `${key}#${event.index}`,
          })),
        );
        await options.onStored?.(user, events.map((event, i) => ({ id: accepted[i]!.id, name: event.name, body: event.body, duplicate: accepted[i]!.duplicate })), arrivedAt);
        if (accepted.every((a) => a.duplicate)) reply.header("idempotent-replayed", "true");
        return reply.code(202).send({ ids: accepted.map((a) => a.id) });
      },
    );
  };
}

/** Bytes of a request -> the converted events it holds (throws HOOKD_OKTELL_*). */
export function readOktellBody(body: unknown, timezone: string | undefined, maxDepth?: number): ConvertedOktellEvent[] {
  if (!Buffer.isBuffer(body) || body.length === 0) throw new HookdError("HOOKD_OKTELL_NO_EVENT", ["the body is empty"]);
  const { text } = decodeXmlBody(body);
  return parseOktellXml(text, maxDepth).map((raw) => convertOktellEvent(raw, { timezone }));
}

/** Every event is checked before any is stored; the answer lists the issues of all of them. */
function validateAll(intake: OktellIntake, events: readonly ConvertedOktellEvent[]): void {
  const failures: HookdError[] = [];
  for (const event of events) {
    try {
      intake.validate(event.name, event.body);
    } catch (error) {
      if (!isHookdError(error)) throw error;
      failures.push(new HookdError(error.code, [], {
        message: events.length === 1 ? error.message : `event #${event.index}: ${error.message}`,
        cause: error,
        issues: (error.issues ?? []).map((issue) => ({ event: event.index, name: event.name, ...(issue as object) })),
      }));
    }
  }
  const [first] = failures;
  if (!first) return;
  if (failures.length === 1) throw first;
  // Unknown events (404) outrank invalid ones (400): the sender has to fix the catalog first.
  const worst = failures.find((f) => f.code === "HOOKD_EVENT_UNKNOWN") ?? first;
  throw new HookdError(worst.code, [], {
    message: failures.map((f) => f.message).join("; "),
    cause: worst,
    issues: failures.flatMap((f) => f.issues ?? []),
  });
}

/** `?user=<login>` or the `x-oktell-user` header; absent for a sender that is not a workstation bridge. */
function workstationUserOf(request: FastifyRequest): string | undefined {
  const query = (request.query as Record<string, unknown> | undefined)?.user;
  const header = request.headers["x-oktell-user"];
  const user = query ?? (Array.isArray(header) ? header[0] : header);
  if (user === undefined) return undefined;
  return checkUser(user, () => new HookdError("HOOKD_OKTELL_USER_INVALID", [JSON.stringify(user)]));
}

function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers["idempotency-key"];
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > 240) throw new HookdError("HOOKD_HTTP_BAD_REQUEST", ["Idempotency-Key must be 1 to 240 characters"]);
  return key;
}
