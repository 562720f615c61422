// Outbound webhooks at unit level: the retry schedule, Retry-After, signatures and disabling an
// endpoint, with an injected clock and an injected fetch (no timers, no network).
import { createHmac } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../core/base/log.ts";
import { attemptsFor, DEFAULT_RETRY_SCHEDULE_MS, nextAttemptDelayMs, parseRetryAfter, RETRY_AFTER_CAP_MS } from "../../core/routing/retry-policy.ts";
import { endpointId } from "../../core/routing/targets.ts";
import { SqliteStore } from "../../core/store/sqlite.ts";
import type { ClaimedDelivery, RunOutcome } from "../../core/store/types.ts";
import { WebhookDeliveries, type WebhookEndpointConfig } from "../../core/webhooks/deliveries.ts";
import { phpQuery, prepareWebhookRequest } from "../../core/webhooks/request.ts";
import { createSigner } from "../../core/webhooks/signing.ts";

const S = 1000;
const M = 60 * S;
const H = 60 * M;

/** The Standard Webhooks signature, computed here with node:crypto, not with hookd's library. */
function expectedSignature(secretKey: Buffer, msgId: string, timestamp: string, content: string): string {
  return `v1,${createHmac("sha256", secretKey).update(`${msgId}.${timestamp}.${content}`).digest("base64")}`;
}

describe("retry schedule", () => {
  it("goes at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h", () => {
    expect(attemptsFor(DEFAULT_RETRY_SCHEDULE_MS)).toBe(8);
    const waits = [1, 2, 3, 4, 5, 6, 7].map((attempt) => nextAttemptDelayMs(DEFAULT_RETRY_SCHEDULE_MS, attempt));
    expect(waits).toEqual([5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H]);
    // A dead delivery retried by hand keeps the last step.
    expect(nextAttemptDelayMs(DEFAULT_RETRY_SCHEDULE_MS, 12)).toBe(10 * H);
  });

  it("Retry-After lengthens a wait, never shortens it, and is capped at a day", () => {
    expect(nextAttemptDelayMs(DEFAULT_RETRY_SCHEDULE_MS, 1, 60 * S)).toBe(60 * S);
    expect(nextAttemptDelayMs(DEFAULT_RETRY_SCHEDULE_MS, 3, 60 * S)).toBe(30 * M);
    expect(nextAttemptDelayMs(DEFAULT_RETRY_SCHEDULE_MS, 1, 30 * 24 * H)).toBe(RETRY_AFTER_CAP_MS);
  });

  it("reads Retry-After as seconds or as an HTTP date against the given clock", () => {
    const now = Date.parse("2026-11-21T10:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120 * S);
    expect(parseRetryAfter("Sat, 21 Nov 2026 10:05:00 GMT", now)).toBe(5 * M);
    expect(parseRetryAfter("Sat, 21 Nov 2026 09:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe("requests and signatures", () => {
  const secretKey = Buffer.from("a fixed test key of thirty-two b");
  const secret = `whsec_${secretKey.toString("base64")}`;
  const message = {
    msgId: "msg_e1",
    event: { id: "e1", name: "deal.close" },
    fields: { deal: 12, amount: "1500.00", won: true, lost: false, note: null, clids: [1, 2], extra: { title: "Сделка" } },
  };
  const now = new Date("2026-11-21T10:00:00Z");
  const timestamp = String(now.getTime() / 1000);

  it("POST JSON: the body is signed with id and timestamp", () => {
    const request = prepareWebhookRequest({ ...message, url: "http://127.0.0.1:9/hook", method: "POST", format: "json" }, createSigner(secret), now);
    expect(request.headers).toMatchObject({ "webhook-id": "msg_e1", "webhook-timestamp": timestamp, "content-type": "application/json" });
    expect(JSON.parse(request.body!)).toEqual(message.fields);
    expect(request.headers["webhook-signature"]).toBe(expectedSignature(secretKey, "msg_e1", timestamp, request.body!));
  });

  it("POST form: PHP-style arrays and maps, booleans as 1/0, nulls left out", () => {
    const request = prepareWebhookRequest({ ...message, url: "http://127.0.0.1:9/hook.php", method: "POST", format: "form" }, createSigner(secret), now);
    expect(request.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    const form = new URLSearchParams(request.body!);
    expect(form.getAll("clids[]")).toEqual(["1", "2"]);
    expect(Object.fromEntries([...form].filter(([k]) => k !== "clids[]"))).toEqual({ deal: "12", amount: "1500.00", won: "1", lost: "0", "extra[title]": "Сделка" });
    expect(request.headers["webhook-signature"]).toBe(expectedSignature(secretKey, "msg_e1", timestamp, request.body!));
  });

  it("GET: the fields go in the query string and the full URL is what is signed", () => {
    const request = prepareWebhookRequest({ ...message, url: "http://127.0.0.1:9/hook.php?src=hookd", method: "GET", format: "json" }, createSigner(secret), now);
    expect(request.body).toBeUndefined();
    const url = new URL(request.url);
    expect(url.searchParams.get("src")).toBe("hookd");
    expect(url.searchParams.get("deal")).toBe("12");
    expect(request.headers["webhook-signature"]).toBe(expectedSignature(secretKey, "msg_e1", timestamp, request.url));
  });

  it("a secret without the whsec_ prefix is used as its UTF-8 bytes", () => {
    const signature = createSigner("пароль").sign("msg_x", now, "body");
    expect(signature).toBe(expectedSignature(Buffer.from("пароль", "utf8"), "msg_x", timestamp, "body"));
  });

  it("phpQuery of a scalar payload", () => {
    expect(phpQuery(undefined)).toBe("");
  });
});

describe("endpoint state with an injected clock", () => {
  const stores: SqliteStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  const url = "http://127.0.0.1:9/failing";
  const hooks: WebhookEndpointConfig[] = [{ on: "deal.close", url, method: "POST", format: "json" }];

  /** `answer(n)` is the receiver's answer to the n-th request (0-based). */
  function setup(answer: (n: number) => Response) {
    const store = new SqliteStore({ file: ":memory:" });
    stores.push(store);
    let clock = Date.parse("2026-11-21T10:00:00Z");
    const seen: Array<{ at: number; id: string | null }> = [];
    let changes = 0;
    const webhooks = new WebhookDeliveries({
      store,
      webhooks: () => hooks,
      settings: () => ({ retryScheduleMs: DEFAULT_RETRY_SCHEDULE_MS, timeoutMs: 1000, secret: "test-secret" }),
      logger: createLogger({ level: "silent" }),
      now: () => clock,
      fetch: (async (_url: string, init: RequestInit) => {
        seen.push({ at: clock, id: (init.headers as Record<string, string>)["webhook-id"] ?? null });
        return answer(seen.length - 1);
      }) as typeof fetch,
      onEndpointsChanged: () => changes++,
    });
    const delivery = (attempt: number, eventId = "e1"): ClaimedDelivery => ({
      id: 1,
      kind: "webhook",
      plugin: `webhook:${endpointId(url)}`,
      target: endpointId(url),
      attempt,
      maxAttempts: attemptsFor(DEFAULT_RETRY_SCHEDULE_MS),
      leaseToken: "t",
      suspect: false,
      input: webhooks.targetsFor("deal.close", { did: 1 })[0]!.input,
      event: { id: eventId, name: "deal.close", payload: { did: 1 }, receivedAt: Date.parse("2026-11-21T10:00:00Z"), depth: 0 },
    });
    return {
      webhooks,
      seen,
      delivery,
      changes: () => changes,
      /** Runs attempts the way the dispatcher would: each at the time the previous one asked for. */
      async runAll(eventId = "e1"): Promise<RunOutcome[]> {
        const outcomes: RunOutcome[] = [];
        for (let attempt = 1; attempt <= attemptsFor(DEFAULT_RETRY_SCHEDULE_MS); attempt++) {
          const outcome = await webhooks.run(delivery(attempt, eventId));
          outcomes.push(outcome);
          if (outcome.ok) break;
          clock += outcome.retryAfterMs ?? 0;
        }
        return outcomes;
      },
      advance: (ms: number) => (clock += ms),
    };
  }

  it("a receiver that always fails sees every attempt at its scheduled time, with one webhook-id, then the endpoint is disabled", async () => {
    const t = setup(() => new Response("down", { status: 500 }));
    await t.webhooks.start();
    expect(t.webhooks.claimKeys()).toEqual([`webhook:${endpointId(url)}`]);

    const outcomes = await t.runAll();
    expect(outcomes).toHaveLength(8);
    expect(outcomes.every((o) => !o.ok && o.error.code === "HOOKD_WEBHOOK_FAILED")).toBe(true);
    const gaps = t.seen.slice(1).map((s, i) => s.at - t.seen[i]!.at);
    expect(gaps).toEqual([5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H]);
    expect(new Set(t.seen.map((s) => s.id))).toEqual(new Set(["msg_e1"]));
    // The last attempt asks for no next time: the dispatcher dead-letters it.
    expect((outcomes[7] as { retryAfterMs?: number }).retryAfterMs).toBeUndefined();

    expect(t.webhooks.claimKeys()).toEqual([]);
    expect(t.changes()).toBeGreaterThan(0);
    const [report] = await t.webhooks.list();
    expect(report).toMatchObject({ id: endpointId(url), url, state: "disabled", consecutiveFailures: 8, configured: true, events: ["deal.close"] });

    const enabled = await t.webhooks.enable(endpointId(url));
    expect(enabled).toMatchObject({ state: "enabled", consecutiveFailures: 0 });
    expect(t.webhooks.claimKeys()).toEqual([`webhook:${endpointId(url)}`]);
    expect(await t.webhooks.enable("ep_nope")).toBeUndefined();
  });

  it("Retry-After from a 503 or 429 pushes the next attempt back", async () => {
    const t = setup((n) =>
      n === 0
        ? new Response(null, { status: 503, headers: { "retry-after": "600" } })
        : n === 1
          ? new Response(null, { status: 429, headers: { "retry-after": "Sat, 21 Nov 2026 12:00:00 GMT" } })
          : new Response(null, { status: 204 }),
    );
    const outcomes = await t.runAll();
    expect(outcomes.map((o) => o.ok)).toEqual([false, false, true]);
    // 600 s instead of 5 s; then up to 12:00 (the clock is at 10:10:00), longer than the 5 min step.
    expect((outcomes[0] as { retryAfterMs?: number }).retryAfterMs).toBe(600 * S);
    expect((outcomes[1] as { retryAfterMs?: number }).retryAfterMs).toBe(110 * M);
  });

  it("a redirect is a failure, not followed", async () => {
    const t = setup(() => new Response(null, { status: 302, headers: { location: "http://elsewhere.example/" } }));
    const outcome = await t.webhooks.run(t.delivery(1));
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error.message).toContain("302");
    expect(t.seen).toHaveLength(1);
  });

  it("an endpoint that succeeded since the message's first attempt is not disabled", async () => {
    // The receiver takes one request (another message's) while this message keeps failing.
    const t = setup((n) => new Response(null, { status: n === 3 ? 200 : 500 }));
    const outcomes: RunOutcome[] = [];
    for (let attempt = 1; attempt <= 8; attempt++) {
      if (attempt === 4) expect((await t.webhooks.run(t.delivery(1, "e2"))).ok).toBe(true);
      const outcome = await t.webhooks.run(t.delivery(attempt));
      outcomes.push(outcome);
      if (!outcome.ok) t.advance(outcome.retryAfterMs ?? 0);
    }
    expect(outcomes.every((o) => !o.ok)).toBe(true);
    expect(t.seen.map((s) => s.id)).toContain("msg_e2");
    expect(t.webhooks.claimKeys()).toHaveLength(1);
    expect((await t.webhooks.list())[0]!.state).toBe("enabled");
  });
});
