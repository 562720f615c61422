/**
 * Time zones as the config names them (`oktell.timezone`): an IANA zone ("Europe/Moscow"),
 * "UTC"/"Z", or a fixed offset ("+03:00"), and the zone's offset at a wall-clock time, daylight
 * saving included. The config validates a zone with it; the telephony ingress dates with it.
 */

const FIXED_OFFSET = /^([+-])(\d{2}):?(\d{2})$/;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** True for an IANA zone ("Europe/Moscow"), "UTC"/"Z", or a fixed offset ("+03:00"). */
export function isValidTimezone(timezone: string): boolean {
  if (timezone === "Z" || FIXED_OFFSET.test(timezone)) return fixedOffsetMinutes(timezone) !== undefined;
  try {
    formatterFor(timezone);
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC (minutes) at a wall-clock time in that zone. */
export function offsetMinutesAtLocal(localIso: string, timezone: string): number {
  const fixed = fixedOffsetMinutes(timezone);
  if (fixed !== undefined) return fixed;
  const wall = Date.parse(`${localIso}Z`);
  // The offset at the wall time read as UTC is off by at most one DST step; one correction
  // lands on the right instant (in a spring-forward gap, the later offset).
  const first = offsetMinutesAt(wall, timezone);
  const second = offsetMinutesAt(wall - first * 60_000, timezone);
  return second;
}

function offsetMinutesAt(utcMs: number, timezone: string): number {
  const parts = formatterFor(timezone).formatToParts(new Date(utcMs));
  const get = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return Math.round((asUtc - Math.floor(utcMs / 1000) * 1000) / 60_000);
}

function formatterFor(timezone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timezone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timezone, formatter);
  }
  return formatter;
}

function fixedOffsetMinutes(timezone: string): number | undefined {
  if (timezone === "Z") return 0;
  const match = FIXED_OFFSET.exec(timezone);
  if (!match) return undefined;
  const hours = Number(match[2]);
  const minutes = Number(match[3]);
  if (hours > 14 || minutes > 59) return undefined;
  return (match[1] === "-" ? -1 : 1) * (hours * 60 + minutes);
}

export function formatOffset(minutes: number): string {
  if (minutes === 0) return "Z";
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/** True for a zone name the Intl API knows (an IANA zone such as Europe/Moscow, or UTC); not for a fixed offset. */
export function isIanaTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
