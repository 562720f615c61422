/**
 * How often and how patiently a delivery is retried: the config's `delivery` defaults, overridden
 * per plugin by `plugin({ retry: { maxAttempts, backoffMs, maxBackoffMs } })`.
 */
import type { Settings } from "../config/settings.ts";

export interface RetryPolicy {
  /** Attempts before the delivery is dead-lettered (the first run counts). */
  maxAttempts: number;
  /** Delay before the first retry; doubles each attempt, with jitter. */
  backoffMs: number;
  /** Longest delay between two attempts. */
  maxBackoffMs: number;
}

/** The policy of a plugin: its own valid overrides on top of the config's defaults. */
export function retryPolicyFor(defaults: Settings["delivery"], declared: unknown): RetryPolicy {
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
