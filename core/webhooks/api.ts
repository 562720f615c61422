/**
 * `GET /api/webhooks`: every endpoint, enabled or disabled, with its failure count and last
 * error. `POST /api/webhooks/{id}/enable`: put a disabled endpoint back to work.
 * `POST /api/webhooks/{id}/test`: send one signed `hookd.test` message there now and answer what
 * came back (`{ ok, status, latencyMs, response }`); it is not stored as a delivery.
 */
import type { FastifyInstance } from "fastify";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { WebhookDeliveries } from "./deliveries.ts";

export function webhookApi(webhooks: WebhookDeliveries) {
  return async function registerWebhookApi(scope: FastifyInstance): Promise<void> {
    scope.get("/api/webhooks", async () => ({ webhooks: await webhooks.list() }));
    scope.post<{ Params: { id: string } }>("/api/webhooks/:id/enable", async (request) => {
      const report = await webhooks.enable(request.params.id);
      if (!report) throw new HookdError("HOOKD_WEBHOOK_NOT_FOUND", [request.params.id]);
      return { webhook: report };
    });
    scope.post<{ Params: { id: string } }>("/api/webhooks/:id/test", async (request) => {
      const answer = await webhooks.sendTest(request.params.id);
      if (!answer) throw new HookdError("HOOKD_WEBHOOK_NOT_FOUND", [request.params.id]);
      return answer;
    });
  };
}
