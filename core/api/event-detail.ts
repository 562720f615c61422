/**
 * `GET /api/events/{id}`: one event followed end to end, as `{ event, runs, webhooks, children }`.
 * `event` is the event whole (as before), with `parent` for an emitted one: the event and the run
 * that emitted it. `runs` are every delivery it caused (handlers, route actions, manual actions,
 * webhooks; as before), `webhooks` its webhook deliveries with each attempt's request and answer
 * (status, latency, the start of the response), `children` the events its runs emitted.
 */
import type { FastifyInstance } from "fastify";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { DeliveryRecord, EventRecord, Store } from "../store/types.ts";
import { recordedAttempts } from "../store/run-attempts.ts";

/** Deliveries of one event listed at most (an event has one per handler, route and webhook). */
const MAX_RUNS = 1000;
/** Emitted children listed at most. */
const MAX_CHILDREN = 200;

export interface WebhookAttemptAnswer {
  attempt: number;
  startedAt: number;
  durationMs: number;
  status: "done" | "failed";
  code: string | null;
  message?: string | undefined;
  request?: { method: string; url: string } | undefined;
  answer?: { status?: number | undefined; latencyMs: number; response?: string | undefined; error?: string | undefined } | undefined;
}

export interface EventDetailAnswer {
  event: EventRecord & { parent?: { eventId: string; runId?: number; plugin?: string } };
  runs: DeliveryRecord[];
  webhooks: Array<{ run: DeliveryRecord; endpoint: string; attempts: WebhookAttemptAnswer[] }>;
  children: Array<{ id: string; name: string; receivedAt: number; source: string; runId?: number }>;
}

export interface EventDetailOptions {
  store: Store;
  /** A run as listed (its error cut to the list's item bound). */
  boundRun?: (run: DeliveryRecord) => DeliveryRecord;
}

export async function eventDetail({ store, boundRun = (run) => run }: EventDetailOptions, id: string): Promise<EventDetailAnswer | null> {
  const event = await store.getEvent(id);
  if (!event) return null;
  const runs = await store.listRuns({ eventId: event.id, limit: MAX_RUNS });
  const webhooks: EventDetailAnswer["webhooks"] = [];
  // Which of this event's runs emitted each child: the emits its attempts recorded.
  const emitter = new Map<string, number>();
  for (const run of runs) {
    const attempts = recordedAttempts(run, await store.listRunAttempts(run.id));
    for (const attempt of attempts) for (const emit of attempt.activity.emits) if (emit.eventId) emitter.set(emit.eventId, run.id);
    if (run.kind !== "webhook") continue;
    webhooks.push({
      run: boundRun(run),
      endpoint: attempts.find((a) => a.activity.fetches[0])?.activity.fetches[0]?.url ?? run.target,
      attempts: attempts.map((attempt) => {
        const sent = attempt.activity.fetches[0];
        return {
          attempt: attempt.attempt,
          startedAt: attempt.startedAt,
          durationMs: attempt.durationMs,
          status: attempt.status,
          code: attempt.code,
          message: attempt.error?.message,
          request: sent ? { method: sent.method, url: sent.url } : undefined,
          answer: sent ? { status: sent.status, latencyMs: Math.round(sent.durationMs * 10) / 10, response: sent.response, error: sent.error } : undefined,
        };
      }),
    });
  }
  const children = (await store.listChildEvents(event.id, MAX_CHILDREN)).map((child) => ({
    id: child.id,
    name: child.name,
    receivedAt: child.receivedAt,
    source: child.source,
    ...(emitter.has(child.id) ? { runId: emitter.get(child.id)! } : {}),
  }));
  return { event: { ...event, ...(await parentOf(store, event)) }, runs: runs.map(boundRun), webhooks, children };
}

/** For an emitted event: its parent event and, when its attempts recorded the emit, the run. */
async function parentOf(store: Store, event: EventRecord): Promise<{ parent?: { eventId: string; runId?: number; plugin?: string } }> {
  if (event.parentId === null) return {};
  const parentRuns = await store.listRuns({ eventId: event.parentId, limit: MAX_RUNS });
  for (const run of parentRuns) {
    const attempts = await store.listRunAttempts(run.id);
    if (attempts.some((a) => a.activity.emits.some((emit) => emit.eventId === event.id))) return { parent: { eventId: event.parentId, runId: run.id, plugin: run.plugin } };
  }
  return { parent: { eventId: event.parentId } };
}

export function eventDetailApi(options: EventDetailOptions) {
  return async function registerEventDetail(scope: FastifyInstance): Promise<void> {
    scope.get<{ Params: { id: string } }>("/api/events/:id", async (request) => {
      const detail = await eventDetail(options, request.params.id);
      if (!detail) throw new HookdError("HOOKD_HTTP_NOT_FOUND", ["GET", request.url]);
      return detail;
    });
  };
}
