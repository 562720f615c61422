/**
 * When a delayed event is due: from `ctx.emit(name, payload, { delay } | { at })` or from the
 * `hookd-delay` / `hookd-deliver-at` headers of `POST /events/{name}`. One set of rules for both
 * ingresses, so a value refused over HTTP is refused from a plugin too, before anything is stored.
 *
 * Durations are `ms`'s format ("30s", "15m", "2h", "1.5h", "1d", "2 hours"); a bare number in a
 * string is refused (a sender meaning seconds would get milliseconds), while a number given to
 * ctx.emit is milliseconds. Times are ISO 8601 with a zone (`Z` or `+03:00`): a time without one
 * would mean a different instant on every machine. A time already past, or a zero delay, is no
 * delay at all: the event is delivered at once, as an ordinary one.
 *
 * With `within: "office"` (a calendar of the config), a delay counts only that calendar's open
 * hours, `at` moves to the next opening when it falls in closed hours, and `at: "next-open"` is
 * the next opening itself (now, when open now).
 */
import ms from "ms";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { addOpenTime, nextOpen, type Calendar } from "./calendar.ts";

/** Finds a calendar of the config by name (undefined: there is none). */
export type CalendarLookup = (name: string) => Calendar | undefined;

/** The furthest ahead an event may be delayed (a little over a year). */
export const MAX_DELAY_MS = 366 * 24 * 60 * 60 * 1000;

/** What ctx.emit takes as its third argument (a Date arrives as its ISO string). */
export interface DelayOptions {
  delay?: string | number;
  at?: string;
  within?: string;
}

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
const HAS_UNIT = /[a-z]\s*$/i;

/** A duration in milliseconds; throws HOOKD_EVENT_DELAY_INVALID (400) naming `what`. */
export function parseDelay(value: unknown, what: string): number {
  let delayMs: number | undefined;
  if (typeof value === "number") delayMs = value;
  else if (typeof value === "string") {
    const text = value.trim();
    if (text.length === 0 || text.length > 100 || !HAS_UNIT.test(text)) throw invalid(what, `${quote(value)} is not a duration with a unit (30s, 15m, 2h, 1d)`);
    delayMs = ms(text as ms.StringValue);
  } else throw invalid(what, `the delay must be a duration string (30s, 15m, 2h, 1d) or milliseconds, got ${typeof value}`);
  if (delayMs === undefined || !Number.isFinite(delayMs)) throw invalid(what, `${quote(value)} is not a duration (30s, 15m, 2h, 1d)`);
  if (delayMs < 0) throw invalid(what, `${quote(value)} is negative`);
  if (delayMs > MAX_DELAY_MS) throw invalid(what, `${quote(value)} is more than 366 days ahead`);
  return Math.round(delayMs);
}

/** An ISO 8601 time with a zone, as epoch ms; throws HOOKD_EVENT_DELAY_INVALID (400) naming `what`. */
export function parseDeliverAt(value: unknown, what: string, now: number): number {
  if (typeof value !== "string" || !ISO_WITH_ZONE.test(value.trim())) {
    throw invalid(what, `${quote(value)} is not an ISO 8601 time with a zone (2026-12-01T09:00:00Z, 2026-12-01T12:00:00+03:00)`);
  }
  const at = Date.parse(value.trim());
  if (Number.isNaN(at)) throw invalid(what, `${quote(value)} is not a valid time`);
  if (at - now > MAX_DELAY_MS) throw invalid(what, `${quote(value)} is more than 366 days ahead`);
  return at;
}

/**
 * When an event emitted with these options is due, or undefined for "at once". `options` comes
 * from plugin code, so every field is checked: an unknown key (a typo such as `dealy`) is refused
 * rather than silently delivering now.
 */
export function deliverAtFromOptions(options: unknown, now: number, calendars?: CalendarLookup): number | undefined {
  if (options === undefined || options === null) return undefined;
  const what = "ctx.emit options";
  if (typeof options !== "object" || Array.isArray(options)) throw invalid(what, "must be an object such as { delay: \"2h\" } or { at: date }");
  const given = options as Record<string, unknown>;
  const unknown = Object.keys(given).filter((key) => key !== "delay" && key !== "at" && key !== "within");
  if (unknown.length > 0) throw invalid(what, `unknown option ${unknown.map(quote).join(", ")} (delay, at, within)`);
  return resolve({ delay: given.delay, at: given.at, within: given.within }, now, calendars, { delay: `${what}: delay`, at: `${what}: at`, within: `${what}: within`, both: what });
}

/** When an event sent over HTTP with these headers is due, or undefined for "at once". */
export function deliverAtFromHeaders(headers: Record<string, string | string[] | undefined>, now: number, calendars?: CalendarLookup): number | undefined {
  const delay = single(headers["hookd-delay"], "hookd-delay header");
  const at = single(headers["hookd-deliver-at"], "hookd-deliver-at header");
  const within = single(headers["hookd-within"], "hookd-within header");
  return resolve({ delay, at, within }, now, calendars, {
    delay: "hookd-delay header",
    at: "hookd-deliver-at header",
    within: "hookd-within header",
    both: "hookd-delay and hookd-deliver-at headers",
  });
}

function resolve(
  given: { delay: unknown; at: unknown; within: unknown },
  now: number,
  calendars: CalendarLookup | undefined,
  names: { delay: string; at: string; within: string; both: string },
): number | undefined {
  const hasDelay = given.delay !== undefined;
  const hasAt = given.at !== undefined;
  if (hasDelay && hasAt) throw invalid(names.both, "give a delay or a time, not both");
  let calendar: Calendar | undefined;
  if (given.within !== undefined) {
    if (typeof given.within !== "string" || given.within.length === 0) throw invalid(names.within, "must name a calendar of the config's calendars");
    calendar = calendars?.(given.within);
    if (calendar === undefined) throw invalid(names.within, `no calendar ${quote(given.within)} in the config's calendars`);
    if (!hasDelay && !hasAt) throw invalid(names.within, "goes with a delay or a time");
  }
  if (hasDelay) {
    const delayMs = parseDelay(given.delay, names.delay);
    if (calendar === undefined) return dueAfter(delayMs, now);
    const at = addOpenTime(calendar, now, delayMs);
    if (at - now > MAX_DELAY_MS) throw invalid(names.delay, `${quote(given.delay)} of open hours ends more than 366 days ahead`);
    return dueAt(at, now);
  }
  if (hasAt) {
    if (given.at === "next-open") {
      if (calendar === undefined) throw invalid(names.at, `"next-open" needs a calendar (within)`);
      return dueAt(nextOpen(calendar, now), now);
    }
    const at = parseDeliverAt(given.at, names.at, now);
    return dueAt(calendar === undefined ? at : nextOpen(calendar, at), now);
  }
  return undefined;
}

function dueAfter(delayMs: number, now: number): number | undefined {
  return delayMs > 0 ? now + delayMs : undefined;
}

function dueAt(at: number, now: number): number | undefined {
  return at > now ? at : undefined;
}

function single(value: string | string[] | undefined, what: string): string | undefined {
  if (Array.isArray(value)) {
    if (value.length > 1) throw invalid(what, "sent more than once");
    return value[0];
  }
  return value;
}

function quote(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value) : String(value);
  return text;
}

function invalid(what: string, why: string): HookdError {
  return new HookdError("HOOKD_EVENT_DELAY_INVALID", [what, why]);
}
