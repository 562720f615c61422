/**
 * The telephony server writes dates in its own local time without a zone ("12.07.2008 18:35:06").
 * With `oktell.timezone` set in the config, ISO dates get that zone's offset at that moment
 * (daylight saving included), so handlers can compare them with other systems' times; without
 * it they stay zone-less, which is all the server says.
 */
import { oktellDateTimeToIso } from "./catalog.ts";
import { formatOffset, offsetMinutesAtLocal } from "../../base/time-zone.ts";

/** "12.07.2008 18:35:06" -> "2008-07-12T18:35:06" (no zone) or "...+04:00"; undefined if not a date. */
export function oktellDateTimeToZonedIso(value: string, timezone: string | undefined): string | undefined {
  const local = oktellDateTimeToIso(value);
  if (local === undefined || timezone === undefined) return local;
  return `${local}${formatOffset(offsetMinutesAtLocal(local, timezone))}`;
}
