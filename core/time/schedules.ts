/**
 * Where schedules come from and what a tick stores. Plugins declare theirs with
 * `schedule(cron, { tz, catchUp }, handler)` (the manifest lists them; a bad cron fails the load,
 * like a handler for an unknown event); the config declares `schedules: [{ cron, tz, emit,
 * payload }]`, each tick emitting a catalog event through the same validation as any other.
 *
 * A schedule's id is what it is (plugin or emitted event, cron, zone), so the store's last tick
 * follows it across restarts and reloads, and an edited cron is a new schedule that starts from
 * now instead of "catching up" ticks of a cron that never ran.
 */
import { z } from "zod";
import type { DeliveryTarget, NewEvent } from "../store/types.ts";
import { CATCH_UP_MODES, cronProblem, type CatchUp } from "./cron.ts";
import type { ScheduleDefinition, TickRecord } from "./scheduler.ts";
import type { ScheduleConfig } from "./schedule-config.ts";
import { newEventId } from "../base/event-id.ts";

export type { ScheduleConfig } from "./schedule-config.ts";

/** The config's `schedules` setting. */
export const scheduleConfigSchema = z
  .array(
    z
      .object({
        cron: z.string().min(1),
        tz: z.string().min(1).optional(),
        emit: z.string().min(1),
        payload: z.unknown().optional(),
        catchUp: z.enum(["one", "none", "all"]).optional(),
        calendar: z.string().min(1).optional(),
      })
      .superRefine((entry, ctx) => {
        const problem = cronProblem(entry);
        if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, path: ["cron"] });
      }),
  )
  .default([]);

/** The config's schedules against its catalog: each emits a known event, with a payload that fits it. */
export function scheduleConfigProblems(events: Record<string, unknown>, schedules: ReadonlyArray<ScheduleConfig>, calendars: readonly string[] = []): string[] {
  const problems: string[] = [];
  schedules.forEach((entry, i) => {
    if (entry.calendar !== undefined && !calendars.includes(entry.calendar)) problems.push(`schedules.${i}.calendar: no calendar "${entry.calendar}" in calendars`);
    const schema = Object.hasOwn(events, entry.emit) ? (events[entry.emit] as z.ZodType) : undefined;
    if (schema === undefined) return problems.push(`schedules.${i}.emit: unknown event "${entry.emit}"`);
    const parsed = schema.safeParse(entry.payload ?? {});
    if (!parsed.success) problems.push(`schedules.${i}.payload: does not match event "${entry.emit}": ${parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"} ${issue.message}`).join(", ")}`);
    return undefined;
  });
  return problems;
}

/** Why a plugin's declared schedules cannot run, or undefined when they can. */
export function manifestScheduleProblem(schedules: ReadonlyArray<{ cron: string; tz?: string | undefined; catchUp?: string | undefined; calendar?: string | undefined }> | undefined): string | undefined {
  for (const declared of schedules ?? []) {
    const problem = cronProblem(declared);
    if (problem !== undefined) return `schedule(${JSON.stringify(declared.cron)}): ${problem}`;
    if (declared.catchUp !== undefined && !CATCH_UP_MODES.includes(declared.catchUp as CatchUp)) {
      return `schedule(${JSON.stringify(declared.cron)}): catchUp must be "one", "none" or "all", not ${JSON.stringify(declared.catchUp)}`;
    }
  }
  return undefined;
}

/** The schedules of the plugins' current versions. */
export function pluginSchedules(declared: ReadonlyArray<{ plugin: string; schedules: ReadonlyArray<{ key: string; cron: string; tz?: string | undefined; catchUp?: string | undefined; calendar?: string | undefined }> }>): ScheduleDefinition[] {
  return declared.flatMap(({ plugin, schedules }) =>
    schedules.map((s) => ({
      id: `plugin:${plugin}:${s.key}`,
      source: "plugin" as const,
      plugin,
      key: s.key,
      cron: s.cron.trim(),
      tz: s.tz ?? "UTC",
      catchUp: (s.catchUp as CatchUp | undefined) ?? "one",
      calendar: s.calendar,
    })),
  );
}

/** The config's schedules; two alike get `#2`, `#3` so each keeps its own last tick. */
export function configSchedules(schedules: ReadonlyArray<ScheduleConfig>): ScheduleDefinition[] {
  const seen = new Map<string, number>();
  return schedules.map((s) => {
    const base = `config:${s.emit}:${s.cron.trim()}@${s.tz ?? "UTC"}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return {
      id: n === 1 ? base : `${base}#${n}`,
      source: "config" as const,
      emit: s.emit,
      payload: s.payload ?? {},
      cron: s.cron.trim(),
      tz: s.tz ?? "UTC",
      catchUp: s.catchUp ?? "one",
      calendar: s.calendar,
    };
  });
}

export interface TickBuilderOptions {
  now: () => number;
  /** A plugin's attempt budget (its retry policy over the config's). */
  maxAttempts: (plugin: string) => number;
  /** A config schedule's event: validated like any accepted event, and who must run for it. */
  emitted: (name: string, payload: unknown) => { payload: unknown; deliveries: DeliveryTarget[] };
}

/** The event and deliveries of one tick. */
export function tickRecord(definition: ScheduleDefinition, at: number, options: TickBuilderOptions): TickRecord {
  const base: Omit<NewEvent, "name" | "payload"> = { id: newEventId(), receivedAt: options.now(), source: "schedule", depth: 0 };
  if (definition.source === "config") {
    const { payload, deliveries } = options.emitted(definition.emit!, definition.payload);
    return { event: { ...base, name: definition.emit!, payload }, deliveries };
  }
  const tick = { scheduledAt: new Date(at).toISOString(), cron: definition.cron, tz: definition.tz };
  return {
    // The run's name is the schedule's key in the plugin: that is where its handler is found.
    event: { ...base, name: definition.key!, payload: tick },
    deliveries: [{ kind: "handler", plugin: definition.plugin!, target: definition.key!, maxAttempts: options.maxAttempts(definition.plugin!) }],
  };
}
