/**
 * `GET /api/schedules`: every schedule this instance runs (plugins' and the config's), with its
 * next tick, its last tick (stored by this instance or another) and its state.
 */
import type { FastifyInstance } from "fastify";
import type { Scheduler } from "./scheduler.ts";

export function scheduleApi(scheduler: () => Scheduler) {
  return async function registerScheduleApi(scope: FastifyInstance): Promise<void> {
    scope.get("/api/schedules", async () => ({ schedules: scheduler().list() }));
  };
}
