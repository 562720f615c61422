/**
 * The daemon's `ctx.fetch` service. The sandbox process has no network of its own: an isolate's
 * fetch travels as a host call (like kv and emit) and is performed here, under the patterns and
 * limits the daemon holds for the plugin (fetchPolicy below, from the spec the daemon sent and
 * the manifest the plugin's load reported), never under what the sandbox process says.
 *
 * Each plugin has at most `sandbox.fetchMaxConcurrent` fetches on the network at once. Further
 * ones wait their turn rather than fail: a plugin that fans out with Promise.all still works,
 * just paced, and the wait counts against the fetch's own time limit (and ends with its run), so
 * a plugin that keeps thousands waiting gets HOOKD_FETCH_TIMEOUT, not sockets.
 */
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { Endpoint } from "./guarded-transport.ts";
import { defaultFetchLimits, fetchForPlugin } from "./plugin-fetch.ts";
import type { FetchCall, PluginFetchReply } from "../../sandbox/contract/fetch.ts";

export { fetchPolicy, type FetchCall, type FetchPolicy, type PluginFetchInit, type PluginFetchReply } from "../../sandbox/contract/fetch.ts";

export interface FetchServiceOptions {
  /** The config's `sandbox.fetchAllowHosts`: hosts reachable on loopback, private or own addresses. */
  allowHosts?: () => readonly string[];
  /** The config's `sandbox.fetchMaxConcurrent`: fetches one plugin has on the network at once. */
  maxConcurrent?: () => number;
  /** Where the daemon listens: never reached by a plugin. */
  ownEndpoints?: () => readonly Endpoint[];
  /** The value of a secret as the plugin sees it (to drop it from headers across origins). */
  secret?: (plugin: string, name: string) => string | undefined;
  /** Redirects one fetch may follow. */
  maxRedirects?: number;
  /** Replaces the network (the `hookd/testing` kit's fake); patterns and limits still apply. */
  send?: typeof fetch;
}

export const DEFAULT_FETCH_MAX_CONCURRENT = 16;

interface Slots {
  active: number;
  waiting: Array<() => void>;
}

export class FetchService {
  private readonly slots = new Map<string, Slots>();

  constructor(private readonly options: FetchServiceOptions = {}) {}

  /** Fetches on the network now for `plugin` (for tests and metrics). */
  active(plugin: string): number {
    return this.slots.get(plugin)?.active ?? 0;
  }

  async fetch(call: FetchCall): Promise<PluginFetchReply> {
    const { policy } = call;
    // One time limit from here on: waiting for a slot counts against it.
    const timeout = AbortSignal.timeout(policy.timeoutMs);
    await this.acquire(call.plugin, call.signal ? AbortSignal.any([timeout, call.signal]) : timeout, call.url, policy.timeoutMs);
    try {
      return await fetchForPlugin({
        patterns: policy.patterns,
        url: call.url,
        init: call.init,
        limits: { maxResponseBytes: policy.maxResponseBytes, timeoutMs: policy.timeoutMs, maxRedirects: this.options.maxRedirects ?? defaultFetchLimits.maxRedirects },
        allowHosts: this.options.allowHosts?.() ?? [],
        ownEndpoints: this.options.ownEndpoints?.() ?? [],
        secretValues: policy.secretNames.map((name) => this.options.secret?.(call.plugin, name)).filter((value): value is string => typeof value === "string"),
        send: this.options.send,
        signal: call.signal,
        timeout,
      });
    } finally {
      this.release(call.plugin);
    }
  }

  private acquire(plugin: string, signal: AbortSignal, url: string, timeoutMs: number): Promise<void> {
    let slots = this.slots.get(plugin);
    if (!slots) this.slots.set(plugin, (slots = { active: 0, waiting: [] }));
    const limit = Math.max(1, this.options.maxConcurrent?.() ?? DEFAULT_FETCH_MAX_CONCURRENT);
    if (slots.active < limit && slots.waiting.length === 0) {
      slots.active++;
      return Promise.resolve();
    }
    const queue = slots;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = queue.waiting.indexOf(grant);
        if (index !== -1) queue.waiting.splice(index, 1);
        reject(new HookdError("HOOKD_FETCH_TIMEOUT", [url, timeoutMs], { message: `fetch to ${url}: no free fetch slot of the plugin's ${limit} (sandbox.fetchMaxConcurrent) within ${timeoutMs} ms or before the run ended` }));
      };
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        queue.active++;
        resolve();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      queue.waiting.push(grant);
    });
  }

  private release(plugin: string): void {
    const slots = this.slots.get(plugin);
    if (!slots) return;
    slots.active--;
    const limit = Math.max(1, this.options.maxConcurrent?.() ?? DEFAULT_FETCH_MAX_CONCURRENT);
    while (slots.active < limit && slots.waiting.length > 0) slots.waiting.shift()!();
    if (slots.active === 0 && slots.waiting.length === 0) this.slots.delete(plugin);
  }
}
