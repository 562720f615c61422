/**
 * Operator status changes (seed 000) and chat-line sessions (seed 001).
 *
 * Seed 000: the "operator status changed" event of the Users domain carries the user's
 * identifier ("Идентификатор пользователя", mapped to a Users-typed process variable, so an
 * opaque id string, not a number) and the status (a String variable). Statuses are the
 * platform's operator statuses (e.g. Online, Offline, custom ones), so `status` is free text.
 * The handler fires when the status changes manually, or automatically to Offline when the
 * operator logs out, stays inactive longer than the admin's limit, or the company's
 * service license expires: those are the four `reason`s.
 *
 * Seed 001: a session is a dialogue with a client in a chat line; it has an operator (who may
 * start processes from the session page) and may create a lead when it is created. The seed
 * names no payload, so the session events keep to what every session has.
 */
import { z } from "zod";
import { id, isoDateTime } from "../base/catalog-fields.ts";

/** Why an operator's status changed (seed 000); every reason but "manual" sets Offline. */
export const OperatorStatusReason = {
  manual: "changed by hand",
  logout: "the operator logged out",
  inactivity: "inactive longer than the limit set by the administrator",
  license_expired: "the company's Service license expired",
} as const;

/** The reasons as a tuple, in the order above. */
export const operatorStatusReasons = ["manual", "logout", "inactivity", "license_expired"] as const;

/** The status an automatic change sets (seed 000: "оператору присваивается статус Офлайн"). */
export const OFFLINE_STATUS = "offline";

/** A reason that is an automatic change, which always sets Offline. */
export function isAutomaticReason(reason: string | undefined): boolean {
  return reason !== undefined && reason !== "manual";
}

export const operatorEvents = {
  // An operator's status changed, by hand or automatically (to Offline).
  // Seed 000's event has only the user's id and the status; reason, changedAt and previousStatus
  // are hookd's optional extras. An automatic reason with a status other than Offline is a 400.
  "user.operator_status.changed": z
    .looseObject({
      /** The user's identifier in the platform (an opaque id string, e.g. a UUID). */
      userId: id(),
      /** The new status, e.g. "online", "offline" or a custom status name. */
      status: z.string().trim().min(1),
      /** The status before the change, when the sender knows it. */
      previousStatus: z.string().trim().min(1).optional(),
      /** Why it changed, when the sender knows it; every reason but "manual" sets Offline. */
      reason: z.enum(operatorStatusReasons).optional(),
      /** When the status changed, ISO-8601 with a zone, when the sender says. */
      changedAt: isoDateTime().optional(),
    })
    .superRefine((value, ctx) => {
      if (isAutomaticReason(value.reason) && value.status.toLowerCase() !== OFFLINE_STATUS) {
        ctx.addIssue({
          code: "custom",
          path: ["status"],
          message: `an automatic change (reason "${value.reason}") sets the status to Offline, not "${value.status}"`,
        });
      }
    }),

  // A chat session with a client was opened in a line.
  "session.created": z.looseObject({
    sessionId: id(),
    /** The line (channel) the client wrote through. */
    channel: z.string().trim().min(1),
    /** The client's contact, when already known. */
    contactId: id().optional(),
    /** The operator the session is assigned to; absent while it waits in the queue. */
    operatorId: id().optional(),
    createdAt: isoDateTime(),
  }),

  // A chat session was closed.
  "session.closed": z.looseObject({
    sessionId: id(),
    channel: z.string().trim().min(1).optional(),
    contactId: id().optional(),
    /** The operator who had the session last. */
    operatorId: id().optional(),
    closedAt: isoDateTime(),
  }),
} as const;

/** The names of the operator and session events. */
export type OperatorEventName = keyof typeof operatorEvents;
