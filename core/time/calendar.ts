/**
 * Business hours: named calendars of the config (`calendars: { office: { tz, hours:
 * "Mon-Fri 09:00-18:00", holidays: ["2026-12-31"] } }`), and the three questions delays and
 * schedules ask of one, as pure functions of an instant (no clock inside, so tests pass any time):
 * is this local day open, when does it next open, and when has a given amount of open time passed.
 *
 * Days are civil dates in the calendar's zone (holidays too), hours are local wall-clock times,
 * so a day after a DST change opens at 09:00 local all the same; the instant of a local time comes
 * from Intl's zone data, the machine's own zone never counts.
 *
 * `hours` is a list of rules, each some days then some ranges: `Mon-Fri 09:00-13:00 14:00-18:00,
 * Sat 10:00-14:00` (days `Mon`..`Sun`, ranges `Mon-Fri`, lists `Mon,Wed`; times `HH:MM`, `24:00`
 * ends a day; rules apart by `,` or `;`). The grammar is two token kinds, read by one regular
 * expression each: no parser library reads this shape (opening_hours is OpenStreetMap's, `Mo-Fr`).
 */
import { isIanaTimeZone } from "../base/time-zone.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";

export interface CalendarConfig {
  tz: string;
  hours: string;
  /** Closed dates, `YYYY-MM-DD` in the calendar's zone. */
  holidays?: string[];
}

export interface Calendar {
  name: string;
  tz: string;
  /** Open ranges per weekday (0 Sunday .. 6 Saturday), minutes after local midnight, sorted, apart. */
  week: ReadonlyArray<ReadonlyArray<readonly [number, number]>>;
  holidays: ReadonlySet<string>;
}

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DAY_TOKEN = /^(mon|tue|wed|thu|fri|sat|sun)(?:-(mon|tue|wed|thu|fri|sat|sun))?$/i;
const RANGE_TOKEN = /^([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;
/** How far ahead an answer is looked for: a calendar open less than that is refused at load. */
const SEARCH_DAYS = 3 * 366;

/** Reads a calendar; throws HOOKD_CALENDAR_INVALID naming what is wrong. */
export function parseCalendar(name: string, config: CalendarConfig): Calendar {
  const fail = (why: string) => new HookdError("HOOKD_CALENDAR_INVALID", [name, why]);
  if (!isIanaTimeZone(config.tz)) throw fail(`tz "${config.tz}" is not an IANA time zone (Europe/Moscow) or UTC`);
  const week: Array<Array<[number, number]>> = DAYS.map(() => []);
  let days: Set<number> | undefined;
  let ranged = false;
  for (const token of config.hours.split(/[\s,;]+/).filter(Boolean)) {
    const day = DAY_TOKEN.exec(token);
    if (day) {
      if (days === undefined || ranged) {
        days = new Set();
        ranged = false;
      }
      const from = DAYS.indexOf(day[1]!.toLowerCase());
      const to = day[2] === undefined ? from : DAYS.indexOf(day[2].toLowerCase());
      for (let d = from; ; d = (d + 1) % 7) {
        days.add(d);
        if (d === to) break;
      }
      continue;
    }
    const range = RANGE_TOKEN.exec(token);
    if (!range) throw fail(`hours: "${token}" is neither days (Mon-Fri) nor a time range (09:00-18:00)`);
    if (days === undefined) throw fail(`hours: the range ${token} comes before any days`);
    const start = Number(range[1]) * 60 + Number(range[2]);
    const end = range[5] === undefined ? Number(range[3]) * 60 + Number(range[4]) : 24 * 60;
    if (end <= start) throw fail(`hours: ${token} ends before it starts (a range stays within one day)`);
    for (const d of days) week[d]!.push([start, end]);
    ranged = true;
  }
  if (days !== undefined && !ranged) throw fail(`hours: days without a time range at the end of "${config.hours}"`);
  for (const ranges of week) {
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) if (ranges[i]![0] < ranges[i - 1]![1]) throw fail(`hours: overlapping ranges in "${config.hours}"`);
  }
  if (week.every((ranges) => ranges.length === 0)) throw fail(`hours: "${config.hours}" opens on no day`);
  const holidays = new Set<string>();
  for (const date of config.holidays ?? []) {
    const match = DATE.exec(date);
    if (!match || new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date) throw fail(`holidays: "${date}" is not a date YYYY-MM-DD`);
    holidays.add(date);
  }
  return { name, tz: config.tz, week, holidays };
}

/** Whether the local day of `at` is open at all (a weekday with hours, not a holiday). */
export function isOpenDay(calendar: Calendar, at: number): boolean {
  const local = localDate(at, calendar.tz);
  return dayRanges(calendar, local).length > 0;
}

/** The first instant at or after `from` that is open (`from` itself when open now). */
export function nextOpen(calendar: Calendar, from: number): number {
  for (const [start, end] of openIntervals(calendar, from)) if (end > from) return Math.max(start, from);
  throw new HookdError("HOOKD_CALENDAR_INVALID", [calendar.name, `no open hours within ${SEARCH_DAYS} days`]);
}

/** The instant at which `durationMs` of open time has passed since `from` (closed time does not count). */
export function addOpenTime(calendar: Calendar, from: number, durationMs: number): number {
  if (durationMs <= 0) return nextOpen(calendar, from);
  let left = durationMs;
  for (const [start, end] of openIntervals(calendar, from)) {
    const begin = Math.max(start, from);
    if (end <= begin) continue;
    if (left <= end - begin) return begin + left;
    left -= end - begin;
  }
  throw new HookdError("HOOKD_CALENDAR_INVALID", [calendar.name, `not enough open hours within ${SEARCH_DAYS} days`]);
}

/** Open intervals as instants, from the local day of `from` on, in order. */
function* openIntervals(calendar: Calendar, from: number): Generator<readonly [number, number]> {
  let day = localDate(from, calendar.tz);
  for (let n = 0; n < SEARCH_DAYS; n++, day = nextDate(day)) {
    for (const [start, end] of dayRanges(calendar, day)) yield [localInstant(day, start, calendar.tz), localInstant(day, end, calendar.tz)];
  }
}

interface LocalDate {
  year: number;
  month: number;
  day: number;
}

function dayRanges(calendar: Calendar, date: LocalDate): ReadonlyArray<readonly [number, number]> {
  if (calendar.holidays.has(isoDate(date))) return [];
  return calendar.week[new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay()]!;
}

function nextDate(date: LocalDate): LocalDate {
  const next = new Date(Date.UTC(date.year, date.month - 1, date.day) + DAY_MS);
  return { year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate() };
}

function isoDate({ year, month, day }: LocalDate): string {
  return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock fields of an instant in a zone. */
function localParts(at: number, tz: string): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  let format = formatters.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
    formatters.set(tz, format);
  }
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(new Date(at))) if (part.type !== "literal") parts[part.type] = Number(part.value);
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second! };
}

function localDate(at: number, tz: string): LocalDate {
  const { year, month, day } = localParts(at, tz);
  return { year, month, day };
}

/**
 * The instant of a local wall-clock time (minutes after midnight of a local date). The zone's
 * offset is read at a first guess and again at the result, which settles it on both sides of a
 * DST change; a local time that does not exist (the spring gap) lands just after the gap.
 */
function localInstant(date: LocalDate, minutes: number, tz: string): number {
  const wall = Date.UTC(date.year, date.month - 1, date.day) + minutes * 60_000;
  let guess = wall - offsetAt(wall, tz);
  guess = wall - offsetAt(guess, tz);
  return guess;
}

/** The zone's offset from UTC at an instant, in ms. */
function offsetAt(at: number, tz: string): number {
  const p = localParts(at, tz);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(at / 1000) * 1000;
}
