/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), made by the reference
 * library: `webhook-signature: v1,<base64 of HMAC-SHA256(secret, "<id>.<timestamp>.<content>")>`.
 *
 * The content is the request body. A GET has no body, so hookd signs the full URL it requests
 * (scheme, host, path and the query string with the fields) in its place: a receiver verifies a
 * GET by putting the URL it was called with where the body would go.
 *
 * Secrets: `whsec_<base64>` as Standard Webhooks issues them, or any other string, whose UTF-8
 * bytes are the key (the config checks a secret with core/config/settings.ts's secretProblem).
 */
import { Webhook } from "standardwebhooks";

export interface WebhookSigner {
  /** The `webhook-signature` value for a message id, a time and the signed content. */
  sign(msgId: string, timestamp: Date, content: string): string;
}

const PREFIX = "whsec_";

export function createSigner(secret: string): WebhookSigner {
  const webhook = secret.startsWith(PREFIX)
    ? new Webhook(secret)
    : new Webhook(new Uint8Array(Buffer.from(secret, "utf8")), { format: "raw" });
  return { sign: (msgId, timestamp, content) => webhook.sign(msgId, timestamp, content) };
}
