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
import { id, isoDateTime } from "./fields.ts";

/** Why an operator's status changed (seed 000); every reason but "manual" sets Offline. */
export const OperatorStatusReason = {
  manual: "changed by hand",
  logout: "the operator logged out",
  inactivity: "inactive longer than the limit set by the administrator",
  license_expired: "the company's Service license expired",
} as const;

/** The reasons as a tuple, in the order above. */
export const operatorStatusReasons = ["manual", "logout", "inactivity", "license_expired"] as const;

export const operatorEvents = {
  // An operator's status changed, by hand or automatically (to Offline).
  "user.operator_status.changed": z.object({
    /** The user's identifier in the platform (an opaque id string, e.g. a UUID). */
    userId: id(),
    /** The new status, e.g. "online", "offline" or a custom status name. */
    status: z.string().trim().min(1),
    /** The status before the change, when the sender knows it. */
    previousStatus: z.string().trim().min(1).optional(),
    reason: z.enum(operatorStatusReasons),
    /** When the status changed, ISO-8601 with a zone. */
    changedAt: isoDateTime(),
  }),

  // A chat session with a client was opened in a line.
  "session.created": z.object({
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
  "session.closed": z.object({
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
