/**
 * `GET /api/runs/{id}`: one run whole, as `{ run, attempts, logs, fetches, emits, kvWrites }`.
 * `attempts` lists every recorded attempt (time, duration, outcome, error with its TypeScript
 * lines); the activity lists are every attempt's entries in order, each tagged with its attempt.
 */
import type { FastifyInstance } from "fastify";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { recordedAttempts } from "../store/run-attempts.ts";
import type { DeliveryRecord, RunAttemptRecord, Store } from "../store/types.ts";

export interface RunDetailAnswer {
  run: DeliveryRecord;
  attempts: Array<Omit<RunAttemptRecord, "activity"> & { dropped: number }>;
  logs: Array<RunAttemptRecord["activity"]["logs"][number] & { attempt: number }>;
  fetches: Array<RunAttemptRecord["activity"]["fetches"][number] & { attempt: number }>;
  emits: Array<RunAttemptRecord["activity"]["emits"][number] & { attempt: number }>;
  kvWrites: Array<RunAttemptRecord["activity"]["kvWrites"][number] & { attempt: number }>;
}

export async function runDetail(store: Store, id: number): Promise<RunDetailAnswer | null> {
  const run = await store.getRun(id);
  if (!run) return null;
  const recorded = recordedAttempts(run, await store.listRunAttempts(id));
  const answer: RunDetailAnswer = { run, attempts: [], logs: [], fetches: [], emits: [], kvWrites: [] };
  for (const { activity, ...attempt } of recorded) {
    answer.attempts.push({ ...attempt, dropped: activity.dropped });
    const tag = <T extends object>(items: T[]) => items.map((item) => ({ ...item, attempt: attempt.attempt }));
    answer.logs.push(...tag(activity.logs));
    answer.fetches.push(...tag(activity.fetches));
    answer.emits.push(...tag(activity.emits));
    answer.kvWrites.push(...tag(activity.kvWrites));
  }
  return answer;
}

/** Parses a run id from a path; an id that is no integer is a run that does not exist. */
export function runIdOf(text: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 1) throw new HookdError("HOOKD_RUN_NOT_FOUND", [text]);
  return id;
}

export function runDetailApi(store: Store) {
  return async function registerRunDetail(scope: FastifyInstance): Promise<void> {
    scope.get<{ Params: { id: string } }>("/api/runs/:id", async (request) => {
      const detail = await runDetail(store, runIdOf(request.params.id));
      if (!detail) throw new HookdError("HOOKD_RUN_NOT_FOUND", [request.params.id]);
      return detail;
    });
  };
}
