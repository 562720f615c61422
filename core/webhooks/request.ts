/**
 * One webhook attempt as an HTTP request, the way events.php's webhooks called external scripts:
 * GET with the fields in the query string, or POST with a JSON body or a PHP-style form
 * (`clids[]=1&clids[]=2`, `newparam[title]=x`; true/false as 1/0 like http_build_query), plus
 * the Standard Webhooks headers. 2xx is success; a redirect is not followed (it would send the
 * signed message somewhere the config does not name) and counts as a failure.
 */
import qs from "qs";
import { parseRetryAfter } from "../routing/index.ts";
import type { WebhookSigner } from "./signing.ts";

export interface WebhookMessage {
  /** `webhook-id`: the same for every attempt of one message, so receivers can deduplicate. */
  msgId: string;
  url: string;
  method: "GET" | "POST";
  format: "json" | "form";
  /** The event's (mapped) fields. */
  fields: unknown;
  event: { id: string; name: string };
}

export interface PreparedRequest {
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
}

export type SendResult = (
  | { ok: true; status: number }
  | { ok: false; status?: number; message: string; retryAfterMs?: number }
) & {
  /** The start of the answer's body (at most RESPONSE_EXCERPT_BYTES), for the event's page. */
  excerpt?: string;
};

/** How much of an answer's body is read (and kept with the attempt); the rest is never read. */
export const RESPONSE_EXCERPT_BYTES = 1024;

const USER_AGENT = "hookd-webhooks/1";

/** Builds the request of one attempt, signed at `now` (each attempt has its own timestamp). */
export function prepareWebhookRequest(message: WebhookMessage, signer: WebhookSigner | undefined, now: Date): PreparedRequest {
  const headers: Record<string, string> = {
    "user-agent": USER_AGENT,
    "webhook-id": message.msgId,
    "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
    "hookd-event": message.event.name,
    "hookd-event-id": message.event.id,
  };
  let url = message.url;
  let body: string | undefined;
  if (message.method === "GET") {
    const query = phpQuery(message.fields);
    if (query) url = `${url}${url.includes("?") ? "&" : "?"}${query}`;
  } else if (message.format === "form") {
    body = phpQuery(message.fields);
    headers["content-type"] = "application/x-www-form-urlencoded";
  } else {
    body = JSON.stringify(message.fields ?? {});
    headers["content-type"] = "application/json";
  }
  // A GET has no body: its URL is what gets signed (see signing.ts).
  if (signer) headers["webhook-signature"] = signer.sign(message.msgId, now, body ?? url);
  return { url, method: message.method, headers, ...(body === undefined ? {} : { body }) };
}

/** Sends one attempt; never throws (a network error is a failed attempt). */
export async function sendWebhook(
  request: PreparedRequest,
  options: { timeoutMs: number; now: () => number; fetch?: typeof fetch },
): Promise<SendResult> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    const err = error as Error & { cause?: { code?: string; message?: string } };
    const reason = err.name === "TimeoutError" ? `no answer within ${options.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
    return { ok: false, message: reason };
  }
  // Only the start of the body is read (shown with the attempt); cancelling the rest frees the
  // connection without reading a large answer.
  const excerpt = await readExcerpt(response, RESPONSE_EXCERPT_BYTES);
  if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status, excerpt };
  const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), options.now());
  const message =
    response.status >= 300 && response.status < 400
      ? `answered ${response.status} (redirect to ${response.headers.get("location") ?? "?"}, not followed)`
      : `answered ${response.status}`;
  return { ok: false, status: response.status, message, excerpt, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
}

/** Up to `maxBytes` of a body as text; the rest is cancelled unread. */
async function readExcerpt(response: Response, maxBytes: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    while (bytes < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      bytes += value.byteLength;
    }
  } catch {
    // A body that breaks off: what arrived is the excerpt.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString("utf8");
}

/** PHP-style query string (`a[]=1&a[]=2`, `m[k]=v`); booleans as 1/0, nulls left out. */
export function phpQuery(fields: unknown): string {
  if (typeof fields !== "object" || fields === null) return fields === undefined || fields === null ? "" : qs.stringify({ value: fields });
  return qs.stringify(fields, {
    arrayFormat: "brackets",
    encodeValuesOnly: false,
    skipNulls: true,
    filter: (_prefix, value) => (value === true ? 1 : value === false ? 0 : value),
  });
}
