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

export interface ArrivalOptions {
  timeoutMs?: number;
  /** What is awaited (and anything else worth saying): put in the error, with what arrived, when the bound passes. */
  what?: string | (() => string);
  /** How an arrival is shown in that error (the last 15 of them). */
  show?: (item: unknown) => string;
}

/**
 * Things that arrive while a test runs (a daemon's log lines, notify messages, requests a fake
 * server received), kept in arrival order; a wait resolves on the arrival that makes its check
 * hold, or at once when what arrived already does. Nothing polls.
 */
export class Arrivals<T> {
  readonly items: T[] = [];
  private readonly waiters = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Resolves with the first value of `check` over everything arrived that is neither `undefined` nor `false`. */
  when<R>(check: (items: readonly T[]) => R | undefined | false, options: ArrivalOptions = {}): Promise<R> {
    const { timeoutMs = 30_000 } = options;
    const now = check(this.items);
    if (now !== undefined && now !== false) return Promise.resolve(now);
    return new Promise<R>((resolve, reject) => {
      const waiter = () => {
        const value = check(this.items);
        if (value === undefined || value === false) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const show = options.show ?? ((item: unknown) => JSON.stringify(item));
        const last = this.items.slice(-15).map(show).join("\n");
        const what = typeof options.what === "function" ? options.what() : (options.what ?? "a matching arrival");
        reject(new Error(`gave up after ${timeoutMs} ms waiting for ${what}; ${this.items.length} arrived, the last:\n${last}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** The first arrival (past or future) that matches. */
  first(match: (item: T) => boolean, options: ArrivalOptions = {}): Promise<T> {
    return this.when((items) => items.find(match), options);
  }

  /** Once `count` arrivals match: all of them. */
  count(match: (item: T) => boolean, count: number, options: ArrivalOptions = {}): Promise<T[]> {
    return this.when((items) => {
      const found = items.filter(match);
      return found.length >= count && found;
    }, { what: `${count} matching arrivals`, ...options });
  }
}

/**
 * A pause that stands for no state: bursts of writes with gaps between them, a millisecond of its
 * own, or a bounded watch that something does NOT happen. Never for "the work is done" or "the
 * run is in flight": wait on those with `waitUntil` or `Arrivals`.
 */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
