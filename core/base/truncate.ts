/**
 * Bounds on text hookd keeps or writes out: a run's error message (stored as `lastError`,
 * returned by /api/runs, logged at every attempt) and log fields. A handler that throws a 20 MB
 * message must not make every attempt store, log and serve 20 MB.
 */

/** The default bound of a stored error message and of one log field. */
export const DEFAULT_MAX_TEXT_CHARS = 16 * 1024;

/**
 * `text` cut to `max` characters, saying so and how large it was:
 * `"…first chars… [truncated, 20971520 bytes]"`.
 */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… [truncated, ${Buffer.byteLength(text)} bytes]`;
}
