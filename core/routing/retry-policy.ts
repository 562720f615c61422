/**
 * When a failed delivery is tried again, and how often. Two policies, one per kind of target:
 *
 * - Handlers and routes: the config's `delivery` defaults (`maxAttempts`, `backoffMs`,
 *   `maxBackoffMs`), overridden per plugin by `plugin({ retry: { ... } })`; the delay doubles each
 *   attempt, with "equal jitter" (half fixed, half random) so a burst of failures does not retry
 *   in lockstep.
 * - Webhooks: a schedule of delays (`webhookDelivery.retryScheduleMs`). The default: the first
 *   attempt at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after each failure, about a
 *   day and a half in all, which outlasts most outages and deploys of a receiver. A receiver that
 *   answers with `Retry-After` (429, 503) is not asked again sooner than it said, up to a day.
 *
 * Pure functions of their arguments (the clock and the randomness are parameters), so tests need
 * no timers.
 */

export interface RetryPolicy {
  /** Attempts before the delivery is dead-lettered (the first run counts). */
  maxAttempts: number;
  /** Delay before the first retry; doubles each attempt, with jitter. */
  backoffMs: number;
  /** Longest delay between two attempts. */
  maxBackoffMs: number;
}

/** The policy of a plugin: its own valid overrides on top of the config's defaults (`delivery`). */
export function retryPolicyFor(defaults: Readonly<RetryPolicy>, declared: unknown): RetryPolicy {
  const own = typeof declared === "object" && declared !== null ? (declared as Record<string, unknown>) : {};
  return {
    // Declared in plugin code, checked here: a wrong value falls back to the default, never throws.
    maxAttempts: integerIn(own.maxAttempts, 1, 100) ?? defaults.maxAttempts,
    backoffMs: integerIn(own.backoffMs, 0, 24 * 3_600_000) ?? defaults.backoffMs,
    maxBackoffMs: integerIn(own.maxBackoffMs, 0, 7 * 24 * 3_600_000) ?? defaults.maxBackoffMs,
  };
}

function integerIn(value: unknown, min: number, max: number): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max ? value : undefined;
}

/** Retry delays: exponential from `baseMs`, capped at `maxMs`, with equal jitter. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}

/** Delays of the webhook retries after the first attempt, which goes at once. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = Object.freeze([
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
]);

/** The longest `Retry-After` honoured: a receiver cannot park a message for longer. */
export const RETRY_AFTER_CAP_MS = 24 * 3_600_000;

/** Attempts a webhook delivery gets: the first one plus one per step of the schedule. */
export function attemptsFor(schedule: readonly number[]): number {
  return 1 + schedule.length;
}

/**
 * The wait before the next webhook attempt, after attempt `attempt` (1-based) failed. Past the
 * end of the schedule (a dead delivery retried by hand) the last step repeats.
 */
export function nextAttemptDelayMs(schedule: readonly number[], attempt: number, retryAfterMs?: number): number {
  const step = schedule.length === 0 ? 0 : schedule[Math.min(Math.max(attempt, 1), schedule.length) - 1]!;
  if (retryAfterMs === undefined) return step;
  return Math.max(step, Math.min(retryAfterMs, RETRY_AFTER_CAP_MS));
}

/**
 * A `Retry-After` header as a delay from `now`: delay-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2026 07:28:00 GMT"). Undefined when absent or unreadable; a date in the past
 * is no delay at all.
 */
export function parseRetryAfter(header: string | null | undefined, now: number): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
