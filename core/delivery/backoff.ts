/**
 * Retry delays: exponential from `baseMs`, capped at `maxMs`, with "equal jitter" (half fixed,
 * half random) so that a burst of failures does not retry in lockstep.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}
