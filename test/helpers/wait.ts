/**
 * Waiting on a state instead of sleeping for a time that stands for it: polls a check until it
 * holds, within a generous bound (tests run beside other work on small machines), and when it
 * gives up says what it was waiting for and what it saw last.
 */

export interface WaitOptions {
  /** The bound: generous, since passing is decided by the state, not by how fast it came. */
  timeoutMs?: number;
  /** Between two checks. */
  intervalMs?: number;
  /** What is awaited, and what was seen: put in the error when the bound passes. */
  what?: string | (() => string | Promise<string>);
}

/** Resolves with the first value of `check` that is neither `undefined` nor `false`. */
export async function waitUntil<T>(check: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions = {}): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 25 } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (error) {
      // A check that cannot answer yet (a daemon still starting) is a "not yet".
      lastError = error;
    }
    if (Date.now() > deadline) {
      const what = typeof options.what === "function" ? await Promise.resolve(options.what()).catch((e: unknown) => `(could not describe: ${String(e)})`) : (options.what ?? "condition");
      throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? "" : `; last check failed: ${String(lastError)}`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
