/**
 * The config's `oktell` settings: the telephony XML's zone, and the workstation bridge's command
 * timing, poll bounds and confirm guard. The schema lives with the integration that reads it;
 * core/config/settings.ts puts it in the config.
 */
import { z } from "zod";
import { isValidTimezone } from "../../base/time-zone.ts";

export const oktellSettingsSchema = z
  .object({
    timezone: z.string().refine(isValidTimezone, "expected an IANA time zone (Europe/Moscow), UTC, or an offset like +03:00").optional(),
    // The workstation bridge (core/integrations/oktell): how long a command waits to be
    // answered, how long a poll holds one before it goes again, how many polls wait at once.
    commandTtlMs: z.number().int().min(100).max(24 * 3_600_000).default(60_000),
    commandLeaseMs: z.number().int().min(100).max(600_000).default(15_000),
    maxPollers: z.number().int().min(1).max(10_000).default(256),
    // A bridge that polled within this long counts as connected (ctx.oktell refuses users without one).
    bridgeSeenMs: z.number().int().min(1_000).max(3_600_000).default(90_000),
    // The confirm guard: every TMInterfaceConfirm (121) no handler answered within answerAfterMs
    // gets `result` by TM_SetConfirmResult, so no operator stays reserved (unset: off).
    confirm: z
      .strictObject({
        answerAfterMs: z.number().int().min(0).max(600_000),
        result: z.enum(["ok", "skip", "delete"]).default("ok"),
      })
      .optional(),
  })
  .prefault({});

export type OktellSettings = z.output<typeof oktellSettingsSchema>;
