/**
 * The health of each webhook endpoint (a receiving URL), kept in the store's kv under a reserved
 * namespace so every instance sharing the store sees the same counts and the same disabled flag.
 *
 * An endpoint is disabled when a message used up its whole retry schedule (a day and a half by
 * default) and no message to that endpoint succeeded since that message's first attempt: the
 * receiver keeps failing, not just one payload. A disabled endpoint gets no more attempts; its
 * messages wait in the store until `POST /api/webhooks/<id>/enable`.
 */
import type { Store } from "../store/types.ts";

/** kv namespace of endpoint state; `$` cannot start a plugin's kv namespace by accident. */
export const WEBHOOK_KV_NAMESPACE = "$webhooks";
const KEY_PREFIX = "endpoint:";

export interface EndpointState {
  url: string;
  consecutiveFailures: number;
  /** First failure since the last success. */
  failingSince: number | null;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  lastError: string | null;
  disabledAt: number | null;
  disabledReason: string | null;
}

export class EndpointStates {
  /** One read-modify-write at a time per endpoint in this process. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly store: Store) {}

  async get(id: string): Promise<EndpointState | undefined> {
    return (await this.store.kvGet(WEBHOOK_KV_NAMESPACE, KEY_PREFIX + id)) as EndpointState | undefined;
  }

  /** Every endpoint with recorded state, configured or not. */
  async ids(): Promise<string[]> {
    const keys = await this.store.kvList(WEBHOOK_KV_NAMESPACE, KEY_PREFIX, 10_000);
    return keys.map((key) => key.slice(KEY_PREFIX.length));
  }

  recordSuccess(id: string, url: string, now: number): Promise<EndpointState> {
    return this.update(id, url, (state) => ({
      ...state,
      consecutiveFailures: 0,
      failingSince: null,
      lastSuccessAt: now,
    }));
  }

  /**
   * Counts a failed attempt. `exhaustedSince` is set when it was a message's last attempt and
   * holds that message's first attempt: the endpoint is disabled unless something succeeded since.
   */
  recordFailure(id: string, url: string, now: number, error: string, exhaustedSince?: number): Promise<{ state: EndpointState; disabledNow: boolean }> {
    let disabledNow = false;
    return this.update(id, url, (state) => {
      const next: EndpointState = {
        ...state,
        consecutiveFailures: state.consecutiveFailures + 1,
        failingSince: state.failingSince ?? now,
        lastFailureAt: now,
        lastError: error,
      };
      if (exhaustedSince !== undefined && next.disabledAt === null && (next.lastSuccessAt ?? -Infinity) < exhaustedSince) {
        disabledNow = true;
        next.disabledAt = now;
        next.disabledReason = `every attempt of a message failed over its whole retry schedule (${next.consecutiveFailures} failures in a row, last: ${error})`;
      }
      return next;
    }).then((state) => ({ state, disabledNow }));
  }

  /** Clears the disabled flag and the failure count; false when the endpoint has no state. */
  async enable(id: string): Promise<EndpointState | undefined> {
    const current = await this.get(id);
    if (!current) return undefined;
    return this.update(id, current.url, (state) => ({ ...state, consecutiveFailures: 0, failingSince: null, disabledAt: null, disabledReason: null }));
  }

  private update(id: string, url: string, change: (state: EndpointState) => EndpointState): Promise<EndpointState> {
    const previous = this.chains.get(id) ?? Promise.resolve();
    const next = previous.then(async () => {
      const state = (await this.get(id)) ?? initialState(url);
      const updated = change({ ...state, url });
      await this.store.kvSet(WEBHOOK_KV_NAMESPACE, KEY_PREFIX + id, updated);
      return updated;
    });
    const settled = next.catch(() => undefined);
    this.chains.set(id, settled);
    void settled.then(() => {
      if (this.chains.get(id) === settled) this.chains.delete(id);
    });
    return next;
  }
}

function initialState(url: string): EndpointState {
  return {
    url,
    consecutiveFailures: 0,
    failingSince: null,
    lastSuccessAt: null,
    lastFailureAt: null,
    lastError: null,
    disabledAt: null,
    disabledReason: null,
  };
}
