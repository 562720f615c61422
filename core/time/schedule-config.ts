/**
 * What the config's `schedules` entries are, as a type alone: `hookd/config` (core/config/define.ts)
 * hands it to authors, and a plugin folder's editor types must not pull the scheduler (and Node's
 * types with it) in behind it.
 */

/** Missed ticks of a schedule: run the latest once, none, or every one (bounded). */
export type CatchUp = "one" | "none" | "all";

/** One entry of the config's `schedules`. */
export interface ScheduleConfig<EventName extends string = string> {
  /** 5 fields (minute hour day month weekday), or 6 with seconds first. */
  cron: string;
  /** The zone the cron is read in (`Europe/Moscow`); default `UTC`. */
  tz?: string;
  /** The catalog event each tick emits. */
  emit: EventName;
  /** Its payload, validated against the event's schema when the config loads. */
  payload?: unknown;
  /** Missed ticks: `"one"` (default), `"none"`, `"all"`. */
  catchUp?: CatchUp;
  /** A calendar of the config's `calendars`: ticks on its closed days are skipped. */
  calendar?: string;
}
