/**
 * Cron expressions, read and stepped by croner (a maintained parser with time zones, optional
 * seconds and DST handled as it defines: a local time that does not exist runs at the first
 * instant after the gap, one that exists twice runs once). hookd only asks two questions of it:
 * is this expression valid, and when is the first tick strictly after an instant.
 *
 * A schedule's missed ticks (the daemon was down) are worked out here too, by `catchUp`:
 * `"one"` (the default) runs the latest missed tick once, `"none"` skips them, `"all"` runs each,
 * at most MAX_CATCH_UP_TICKS of them (the latest ones), so a per-second cron after a day down
 * does not flood the queue.
 */
import { isIanaTimeZone } from "../base/time-zone.ts";
import { Cron } from "croner";
import { HookdError } from "../../sandbox/contract/errors.ts";

export type { CatchUp } from "./schedule-config.ts";
import type { CatchUp } from "./schedule-config.ts";

export const CATCH_UP_MODES: readonly CatchUp[] = ["one", "none", "all"];

/** The most missed ticks `catchUp: "all"` runs at start (the latest ones). */
export const MAX_CATCH_UP_TICKS = 100;

export interface CronSpec {
  cron: string;
  /** An IANA zone (`Europe/Moscow`) or `UTC` (the default). */
  tz?: string | undefined;
}

export interface CompiledCron {
  /** The first tick strictly after `after` (epoch ms), or null when the expression has no more. */
  next(after: number): number | null;
  /** Up to `count` ticks at or before `atOrBefore`, latest first. */
  previous(atOrBefore: number, count: number): number[];
}

/** Why this cron (and zone) cannot be scheduled, or undefined when it can. */
export function cronProblem(spec: CronSpec): string | undefined {
  if (typeof spec.cron !== "string" || spec.cron.trim().length === 0) return "the cron expression is empty";
  const fields = spec.cron.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) return `"${spec.cron}" has ${fields} fields: a cron has 5 (minute hour day month weekday) or 6 (seconds first)`;
  if (spec.tz !== undefined && !isIanaTimeZone(spec.tz)) return `"${spec.tz}" is not an IANA time zone (Europe/Moscow) or UTC`;
  try {
    new Cron(spec.cron.trim(), { paused: true, timezone: spec.tz ?? "UTC" }).nextRun(new Date(0));
  } catch (error) {
    return `"${spec.cron}": ${error instanceof Error ? error.message.replace(/^CronPattern: /, "") : String(error)}`;
  }
  return undefined;
}

/** A cron ready to step; throws HOOKD_SCHEDULE_INVALID when it is not valid. */
export function compileCron(spec: CronSpec, where: string): CompiledCron {
  const problem = cronProblem(spec);
  if (problem !== undefined) throw new HookdError("HOOKD_SCHEDULE_INVALID", [where, problem]);
  const cron = new Cron(spec.cron.trim(), { paused: true, timezone: spec.tz ?? "UTC" });
  return {
    next(after) {
      return cron.nextRun(new Date(after))?.getTime() ?? null;
    },
    previous(atOrBefore, count) {
      return cron.previousRuns(count, new Date(atOrBefore + 1)).map((date) => date.getTime());
    },
  };
}

/**
 * The ticks to run now for a schedule whose last tick was `last` (null: never ran, so nothing
 * was missed), at `now`: each one due at or before `now`, oldest first.
 */
export function ticksDue(cron: CompiledCron, last: number | null, now: number, catchUp: CatchUp, keep: (at: number) => boolean = () => true): number[] {
  if (last === null || catchUp === "none") return [];
  // Stepped back from now, not forward from the last tick: a per-second cron after a day down
  // costs as many steps as ticks it runs, not 86,400. `keep` drops ticks on a calendar's closed days.
  const missed = cron.previous(now, MAX_CATCH_UP_TICKS).filter((at) => at > last && keep(at));
  return catchUp === "one" ? missed.slice(0, 1) : missed.reverse();
}
