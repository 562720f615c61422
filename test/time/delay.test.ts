// When a delayed event is due (core/time/delay.ts): the one set of rules behind ctx.emit's
// `{ delay } | { at }` (with `within` a calendar) and the `hookd-delay` / `hookd-deliver-at` /
// `hookd-within` headers. The clock is passed in.
import { describe, expect, it } from "vitest";
import { isHookdError } from "../../sandbox/contract/errors.ts";
import { settingsSchema } from "../../core/config/settings.ts";
import { parseCalendar } from "../../core/time/calendar.ts";
import { deliverAtFromHeaders, deliverAtFromOptions, MAX_DELAY_MS, parseDelay } from "../../core/time/delay.ts";

const NOW = Date.parse("2026-12-01T10:00:00Z");

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return isHookdError(error) ? error.code : `not a HookdError: ${String(error)}`;
  }
  return undefined;
}

describe("durations", () => {
  it("reads ms's durations with a unit", () => {
    expect(parseDelay("2h", "x")).toBe(2 * 3600_000);
    expect(parseDelay("1.5h", "x")).toBe(5400_000);
    expect(parseDelay("30s", "x")).toBe(30_000);
    expect(parseDelay("2 hours", "x")).toBe(2 * 3600_000);
    expect(parseDelay("1d", "x")).toBe(86_400_000);
    expect(parseDelay(250, "x")).toBe(250);
  });

  it.each(["", "abc", "10", "-1h", "2 parsecs", "1e400h", "400d", "h".repeat(200)])("refuses %j with HOOKD_EVENT_DELAY_INVALID", (text) => {
    expect(codeOf(() => parseDelay(text, "hookd-delay header"))).toBe("HOOKD_EVENT_DELAY_INVALID");
  });

  it("refuses numbers that are negative, not finite or past the bound, and values of other types", () => {
    for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY, MAX_DELAY_MS + 1, true, {}, null]) {
      expect(codeOf(() => parseDelay(value, "x")), String(value)).toBe("HOOKD_EVENT_DELAY_INVALID");
    }
  });
});

describe("ctx.emit options", () => {
  it("gives the due time of a delay or a time, and nothing for no delay", () => {
    expect(deliverAtFromOptions({ delay: "2h" }, NOW)).toBe(NOW + 2 * 3600_000);
    // 14:00 in Moscow is 11:00 UTC, an hour from now.
    expect(deliverAtFromOptions({ at: "2026-12-01T14:00:00+03:00" }, NOW)).toBe(NOW + 3600_000);
    expect(deliverAtFromOptions({ at: "2026-12-02T00:00:00.250Z" }, NOW)).toBe(Date.parse("2026-12-02T00:00:00.250Z"));
    expect(deliverAtFromOptions(undefined, NOW)).toBeUndefined();
    expect(deliverAtFromOptions(null, NOW)).toBeUndefined();
    expect(deliverAtFromOptions({}, NOW)).toBeUndefined();
  });

  it("delivers at once for a zero delay or a time already past", () => {
    expect(deliverAtFromOptions({ delay: "0s" }, NOW)).toBeUndefined();
    expect(deliverAtFromOptions({ delay: 0 }, NOW)).toBeUndefined();
    expect(deliverAtFromOptions({ at: "2026-12-01T09:59:59Z" }, NOW)).toBeUndefined();
  });

  it("refuses both options at once, unknown options (a typo), times without a zone and non-objects", () => {
    for (const options of [{ delay: "1h", at: "2026-12-02T00:00:00Z" }, { dealy: "2h" }, { at: "2026-12-02T09:00:00" }, { at: "tomorrow" }, { at: 1764583200000 }, "2h", [1], { at: "2028-01-01T00:00:00Z" }]) {
      expect(codeOf(() => deliverAtFromOptions(options, NOW)), JSON.stringify(options)).toBe("HOOKD_EVENT_DELAY_INVALID");
    }
  });
});

describe("HTTP headers", () => {
  it("reads hookd-delay and hookd-deliver-at", () => {
    expect(deliverAtFromHeaders({ "hookd-delay": "15m" }, NOW)).toBe(NOW + 15 * 60_000);
    expect(deliverAtFromHeaders({ "hookd-deliver-at": "2026-12-01T11:00:00Z" }, NOW)).toBe(NOW + 3600_000);
    expect(deliverAtFromHeaders({ "content-type": "application/json" }, NOW)).toBeUndefined();
  });

  it("refuses both headers together, a repeated header and bad values", () => {
    for (const headers of [
      { "hookd-delay": "1h", "hookd-deliver-at": "2026-12-01T11:00:00Z" },
      { "hookd-delay": ["1h", "2h"] },
      { "hookd-delay": "soon" },
      { "hookd-deliver-at": "2026-13-45T99:00:00Z" },
      { "hookd-deliver-at": "Tue, 01 Dec 2026 11:00:00 GMT" },
    ]) {
      expect(codeOf(() => deliverAtFromHeaders(headers, NOW)), JSON.stringify(headers)).toBe("HOOKD_EVENT_DELAY_INVALID");
    }
  });
});

describe("delays within business hours", () => {
  // Tuesday 2026-12-01 10:00 UTC is 13:00 in Moscow; the office closes at 18:00 (15:00 UTC).
  const office = parseCalendar("office", { tz: "Europe/Moscow", hours: "Mon-Fri 09:00-18:00" });
  const calendars = (name: string) => (name === "office" ? office : undefined);

  it("counts only open hours, and moves a time in closed hours to the next opening", () => {
    expect(new Date(deliverAtFromOptions({ delay: "2h", within: "office" }, NOW, calendars)!).toISOString()).toBe("2026-12-01T12:00:00.000Z");
    expect(new Date(deliverAtFromOptions({ delay: "6h", within: "office" }, NOW, calendars)!).toISOString()).toBe("2026-12-02T07:00:00.000Z");
    expect(new Date(deliverAtFromOptions({ at: "2026-12-05T12:00:00Z", within: "office" }, NOW, calendars)!).toISOString()).toBe("2026-12-07T06:00:00.000Z");
    expect(new Date(deliverAtFromHeaders({ "hookd-delay": "6h", "hookd-within": "office" }, NOW, calendars)!).toISOString()).toBe("2026-12-02T07:00:00.000Z");
  });

  it("takes at: next-open as the next opening, which is now while open", () => {
    expect(deliverAtFromOptions({ at: "next-open", within: "office" }, NOW, calendars)).toBeUndefined();
    const evening = Date.parse("2026-12-01T16:00:00Z");
    expect(new Date(deliverAtFromOptions({ at: "next-open", within: "office" }, evening, calendars)!).toISOString()).toBe("2026-12-02T06:00:00.000Z");
    expect(new Date(deliverAtFromHeaders({ "hookd-deliver-at": "next-open", "hookd-within": "office" }, evening, calendars)!).toISOString()).toBe("2026-12-02T06:00:00.000Z");
  });

  it("refuses an unknown calendar, next-open without one, and within alone", () => {
    for (const options of [{ delay: "2h", within: "warehouse" }, { at: "next-open" }, { within: "office" }, { delay: "2h", within: 7 }]) {
      expect(codeOf(() => deliverAtFromOptions(options, NOW, calendars)), JSON.stringify(options)).toBe("HOOKD_EVENT_DELAY_INVALID");
    }
    expect(codeOf(() => deliverAtFromHeaders({ "hookd-delay": "2h", "hookd-within": "warehouse" }, NOW, calendars))).toBe("HOOKD_EVENT_DELAY_INVALID");
  });

  it("is a config error when a calendar does not read", () => {
    const parsed = settingsSchema.safeParse({ events: {}, calendars: { office: { tz: "Europe/Moscow", hours: "weekdays 9 to 6" } } });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((issue) => issue.path.join("."))).toEqual(["calendars.office"]);
  });
});
