/**
 * The config's `calendars` setting, checked when the config loads (a bad `hours` is a config
 * error naming the calendar), and the parsed calendars, worked out once per loaded config.
 */
import { z } from "zod";
import { isHookdError } from "../../sandbox/contract/errors.ts";
import { parseCalendar, type Calendar, type CalendarConfig } from "./calendar.ts";

export type { CalendarConfig };

export const calendarsSchema = z
  .record(
    z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, "calendar names are letters, digits, _ and -"),
    z.object({ tz: z.string().min(1), hours: z.string().min(1), holidays: z.array(z.string()).default([]) }),
  )
  .default({})
  .superRefine((calendars, ctx) => {
    for (const [name, config] of Object.entries(calendars)) {
      try {
        parseCalendar(name, config);
      } catch (error) {
        ctx.addIssue({ code: "custom", path: [name], message: isHookdError(error) ? error.message : String(error) });
      }
    }
  });

const parsed = new WeakMap<object, Map<string, Calendar>>();

/** The calendars of a loaded config, by name (parsed once per config object). */
export function calendarsOf(calendars: Record<string, CalendarConfig>): ReadonlyMap<string, Calendar> {
  let map = parsed.get(calendars);
  if (!map) {
    map = new Map(Object.entries(calendars).map(([name, config]) => [name, parseCalendar(name, config)]));
    parsed.set(calendars, map);
  }
  return map;
}
