// Business-hours calendars (core/time/calendar.ts) as pure functions of an instant: open days,
// the next opening, and open time added across nights, weekends, holidays and DST changes.
import { describe, expect, it } from "vitest";
import { isHookdError } from "../../sandbox/contract/errors.ts";
import { addOpenTime, isOpenDay, nextOpen, parseCalendar } from "../../core/time/calendar.ts";

const HOUR = 3600_000;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

const moscow = parseCalendar("office", { tz: "Europe/Moscow", hours: "Mon-Fri 09:00-18:00", holidays: ["2026-12-31"] });
const berlin = parseCalendar("berlin", { tz: "Europe/Berlin", hours: "Mon-Fri 09:00-18:00" });

describe("reading a calendar", () => {
  it("takes several rules, day lists and ranges per day", () => {
    const shop = parseCalendar("shop", { tz: "UTC", hours: "Mon,Wed 10:00-12:00 13:00-17:00; Sat 10:00-14:00, Sun 00:00-24:00" });
    expect(shop.week.map((ranges) => ranges.map(([a, b]) => `${a / 60}-${b / 60}`))).toEqual([["0-24"], ["10-12", "13-17"], [], ["10-12", "13-17"], [], [], ["10-14"]]);
  });

  it.each([
    ["an unknown zone", { tz: "Mars/Olympus", hours: "Mon-Fri 09:00-18:00" }],
    ["a range before any days", { tz: "UTC", hours: "09:00-18:00" }],
    ["days without hours", { tz: "UTC", hours: "Mon-Fri" }],
    ["a range that ends before it starts", { tz: "UTC", hours: "Mon 18:00-09:00" }],
    ["overlapping ranges", { tz: "UTC", hours: "Mon 09:00-12:00 11:00-13:00" }],
    ["a word that is no day", { tz: "UTC", hours: "Weekdays 09:00-18:00" }],
    ["a bad time", { tz: "UTC", hours: "Mon 9-18" }],
    ["a bad holiday", { tz: "UTC", hours: "Mon 09:00-18:00", holidays: ["2026-02-30"] }],
  ])("refuses %s with HOOKD_CALENDAR_INVALID", (_what, config) => {
    let code: string | undefined;
    try {
      parseCalendar("x", config);
    } catch (error) {
      code = isHookdError(error) ? error.code : String(error);
    }
    expect(code).toBe("HOOKD_CALENDAR_INVALID");
  });
});

describe("open days", () => {
  it("are weekdays with hours in the calendar's zone, holidays excepted", () => {
    // Friday 23:30 in Moscow is still Friday there, though Friday 20:30 UTC.
    expect(isOpenDay(moscow, at("2026-12-04T20:30:00Z"))).toBe(true);
    // Saturday 00:30 in Moscow, while it is Friday 21:30 in UTC.
    expect(isOpenDay(moscow, at("2026-12-04T21:30:00Z"))).toBe(false);
    expect(isOpenDay(moscow, at("2026-12-31T08:00:00Z"))).toBe(false);
    expect(isOpenDay(moscow, at("2027-01-01T08:00:00Z"))).toBe(true);
  });
});

describe("the next opening", () => {
  it("is now when open, the morning when closed, Monday after a weekend, past a holiday", () => {
    expect(iso(nextOpen(moscow, at("2026-12-01T07:00:00Z")))).toBe("2026-12-01T07:00:00.000Z");
    expect(iso(nextOpen(moscow, at("2026-12-01T16:00:00Z")))).toBe("2026-12-02T06:00:00.000Z");
    expect(iso(nextOpen(moscow, at("2026-12-05T10:00:00Z")))).toBe("2026-12-07T06:00:00.000Z");
    expect(iso(nextOpen(moscow, at("2026-12-30T16:00:00Z")))).toBe("2027-01-01T06:00:00.000Z");
  });
});

describe("open time added", () => {
  it("counts only open hours: two hours from Friday 17:00 end Monday 10:00", () => {
    expect(iso(addOpenTime(moscow, at("2026-12-04T14:00:00Z"), 2 * HOUR))).toBe("2026-12-07T07:00:00.000Z");
    expect(iso(addOpenTime(moscow, at("2026-12-01T07:00:00Z"), 2 * HOUR))).toBe("2026-12-01T09:00:00.000Z");
    // Exactly to closing time stays that day.
    expect(iso(addOpenTime(moscow, at("2026-12-01T13:00:00Z"), 2 * HOUR))).toBe("2026-12-01T15:00:00.000Z");
    // From a closed night: counted from the opening.
    expect(iso(addOpenTime(moscow, at("2026-12-01T20:00:00Z"), 30 * 60_000))).toBe("2026-12-02T06:30:00.000Z");
    // Twenty open hours are more than two days of nine.
    expect(iso(addOpenTime(moscow, at("2026-12-01T06:00:00Z"), 20 * HOUR))).toBe("2026-12-03T08:00:00.000Z");
  });

  it("keeps local opening hours across the autumn DST change (Berlin, 25 October 2026)", () => {
    // Friday 17:00 CEST is 15:00 UTC; Monday 09:00 CET is 08:00 UTC.
    expect(iso(addOpenTime(berlin, at("2026-10-23T15:00:00Z"), 2 * HOUR))).toBe("2026-10-26T09:00:00.000Z");
    expect(iso(nextOpen(berlin, at("2026-10-24T12:00:00Z")))).toBe("2026-10-26T08:00:00.000Z");
  });

  it("and across the spring DST change (Berlin, 29 March 2026)", () => {
    // Friday 17:00 CET is 16:00 UTC; Monday 09:00 CEST is 07:00 UTC.
    expect(iso(addOpenTime(berlin, at("2026-03-27T16:00:00Z"), 2 * HOUR))).toBe("2026-03-30T08:00:00.000Z");
  });

  it("handles a range over the spring gap: a 00:00-24:00 Sunday is 23 hours long", () => {
    const sundays = parseCalendar("sun", { tz: "Europe/Berlin", hours: "Sun 00:00-24:00" });
    const opens = nextOpen(sundays, at("2026-03-28T12:00:00Z"));
    expect(iso(opens)).toBe("2026-03-28T23:00:00.000Z");
    // 23 hours of the short day, then the next Sunday.
    expect(iso(addOpenTime(sundays, opens, 23 * HOUR))).toBe("2026-03-29T22:00:00.000Z");
    expect(iso(addOpenTime(sundays, opens, 24 * HOUR))).toBe("2026-04-04T23:00:00.000Z");
  });
});
