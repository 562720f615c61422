/**
 * Webhooks as deliveries. For each accepted event, intake asks `targetsFor` which webhooks the
 * config sends it to: one delivery per event and webhook, stored in the event's transaction, so
 * webhooks share the delivery promise of handlers (restarts, leases, dead letters, retry).
 * The dispatcher claims them by `webhook:<endpoint id>` and hands them to `run`, which sends one
 * attempt and tells it when to try again (the retry schedule, or later if `Retry-After` says so).
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../base/log.ts";
import { attemptsFor, endpointId, nextAttemptDelayMs, WEBHOOK_KEY_PREFIX, webhookTargets, type WebhookInput, type WebhookRule } from "../routing/index.ts";
import type { RunActivityRecorder } from "../runs/activity.ts";
import type { Tracing } from "../telemetry/tracing.ts";
import type { ClaimedDelivery, DeliveryTarget, RunOutcome, Store } from "../store/types.ts";
import { EndpointStates, type EndpointState } from "./endpoints.ts";
import { prepareWebhookRequest, sendWebhook } from "./request.ts";
import { createSigner, type WebhookSigner } from "./signing.ts";

/** The event name of a test delivery's message (`hookd-event` header and body `type`). */
export const TEST_EVENT = "hookd.test";

/** How often endpoint state written by other instances is read back. */
const REFRESH_MS = 10_000;

/** A configured webhook (config `webhooks`): where routing sends an event, and its signing secret. */
export interface WebhookEndpointConfig extends WebhookRule {
  secret?: string | undefined;
}

export interface WebhookDeliverySettings {
  /** Delays of the retries after the first attempt. */
  retryScheduleMs: readonly number[];
  /** How long one attempt waits for an answer. */
  timeoutMs: number;
  /** Signing secret of webhooks that set none. */
  secret?: string | undefined;
}

export interface WebhookDeliveriesOptions {
  store: Store;
  /** Getters: a config reload applies to the next event and the next attempt. */
  webhooks: () => readonly WebhookEndpointConfig[];
  settings: () => WebhookDeliverySettings;
  logger: Logger;
  /** HOOKD_WEBHOOK_SECRET is the last default of the secret. */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  fetch?: typeof fetch;
  /** The set of endpoints taking deliveries changed (the dispatcher's claim keys). */
  onEndpointsChanged?: () => void;
  /** Run detail: each attempt's request and answer (core/runs/activity.ts). */
  activity?: Pick<RunActivityRecorder, "fetch"> | undefined;
  /** Traces out: a span per attempt under its run, its traceparent sent along. */
  tracing?: () => Tracing;
}

/** What a test delivery (`POST /api/webhooks/{id}/test`) got back; it is not stored. */
export interface TestDeliveryAnswer {
  ok: boolean;
  status: number | null;
  latencyMs: number;
  /** The start of the answer's body (RESPONSE_EXCERPT_BYTES at most). */
  response: string | null;
  error?: string | undefined;
  request: { method: string; url: string; msgId: string };
}

/** One endpoint as `GET /api/webhooks` shows it. */
export interface EndpointReport extends Partial<EndpointState> {
  id: string;
  url: string;
  state: "enabled" | "disabled";
  /** Events the config sends there; empty when the config no longer names it. */
  events: string[];
  configured: boolean;
}

export class WebhookDeliveries {
  private readonly states: EndpointStates;
  private readonly log: Logger;
  private readonly now: () => number;
  private disabled = new Set<string>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private readonly signers = new Map<string, WebhookSigner>();
  private warnedUnsigned = false;

  constructor(private readonly options: WebhookDeliveriesOptions) {
    this.states = new EndpointStates(options.store);
    this.log = options.logger.child({ component: "webhooks" });
    this.now = options.now ?? Date.now;
  }

  /** Reads which endpoints are disabled, then keeps reading it (other instances may change it). */
  async start(): Promise<void> {
    await this.refresh();
    this.refreshTimer = setInterval(() => void this.refresh(), REFRESH_MS).unref();
  }

  stop(): void {
    clearInterval(this.refreshTimer);
  }

  /** The deliveries an event gets: one per configured webhook for it (core/routing), with the schedule's attempts. */
  targetsFor(event: string, payload: unknown): DeliveryTarget[] {
    return webhookTargets(this.options.webhooks(), event, payload, attemptsFor(this.options.settings().retryScheduleMs));
  }

  /** Endpoints whose deliveries may be claimed: the configured ones that are not disabled. */
  claimKeys(): string[] {
    const ids = new Set(this.options.webhooks().map((hook) => endpointId(hook.url)));
    return [...ids].filter((id) => !this.disabled.has(id)).map((id) => WEBHOOK_KEY_PREFIX + id);
  }

  /** Sends one attempt of a webhook delivery; never throws (the dispatcher records the outcome). */
  async run(delivery: ClaimedDelivery): Promise<RunOutcome> {
    const started = performance.now();
    try {
      return await this.attempt(delivery, started);
    } catch (error) {
      // A stored delivery hookd cannot even send (a bad secret in HOOKD_WEBHOOK_SECRET, a corrupt
      // row): retrying cannot help, so it goes to the dead letters with the reason.
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, retriable: false, durationMs: performance.now() - started, error: { code: "HOOKD_DAEMON_INTERNAL", message: `webhook not sent: ${message}` } };
    }
  }

  private async attempt(delivery: ClaimedDelivery, started: number): Promise<RunOutcome> {
    const input = delivery.input as WebhookInput;
    const id = endpointId(input.url);
    const msgId = `msg_${delivery.event.id}${input.ordinal > 0 ? `_${input.ordinal}` : ""}`;
    const request = prepareWebhookRequest(
      {
        msgId,
        url: input.url,
        method: input.method,
        format: input.format,
        fields: "fields" in input ? input.fields : delivery.event.payload,
        event: { id: delivery.event.id, name: delivery.event.name },
      },
      this.signerFor(delivery.event.name, input),
      new Date(this.now()),
    );
    const sentAt = Date.now();
    const tracing = this.options.tracing?.();
    const span = tracing?.enabled
      ? tracing.start(`hookd.webhook ${input.method}`, tracing.runTraceparent(String(delivery.id)), { "http.request.method": input.method, "url.full": input.url, "hookd.webhook.endpoint": id, "hookd.attempt": delivery.attempt }, "client")
      : undefined;
    if (span?.traceparent) request.headers.traceparent = span.traceparent;
    const result = await sendWebhook(request, { timeoutMs: this.options.settings().timeoutMs, now: this.now, fetch: this.options.fetch });
    const durationMs = performance.now() - started;
    this.options.activity?.fetch(String(delivery.id), {
      at: sentAt,
      method: input.method,
      url: input.url,
      durationMs,
      ...(result.status === undefined ? {} : { status: result.status }),
      ...(result.excerpt === undefined ? {} : { response: result.excerpt }),
      ...(result.ok ? {} : { error: result.message }),
    });
    span?.end({ ...(result.status === undefined ? {} : { attributes: { "http.response.status_code": result.status } }), ...(result.ok ? {} : { code: "HOOKD_WEBHOOK_FAILED", error: result.message }) });
    if (result.ok) {
      await this.states.recordSuccess(id, input.url, this.now()).catch((error: unknown) => this.log.warn({ err: error, endpoint: id }, "recording a webhook success failed"));
      return { ok: true, durationMs };
    }

    const last = delivery.attempt >= delivery.maxAttempts;
    const message = `${input.method} ${input.url} ${result.message}`;
    await this.recordFailure(id, input.url, message, last ? delivery.event.receivedAt : undefined);
    return {
      ok: false,
      retriable: true,
      durationMs,
      error: { code: "HOOKD_WEBHOOK_FAILED", message },
      ...(last ? {} : { retryAfterMs: nextAttemptDelayMs(this.options.settings().retryScheduleMs, delivery.attempt, result.retryAfterMs) }),
    };
  }

  /** Every endpoint: the configured ones and those with recorded state. */
  async list(): Promise<EndpointReport[]> {
    const byId = new Map<string, { url: string; events: Set<string> }>();
    for (const hook of this.options.webhooks()) {
      const id = endpointId(hook.url);
      const entry = byId.get(id) ?? { url: hook.url, events: new Set<string>() };
      entry.events.add(hook.on);
      byId.set(id, entry);
    }
    const ids = new Set([...byId.keys(), ...(await this.states.ids())]);
    const reports: EndpointReport[] = [];
    for (const id of [...ids].sort()) {
      const state = await this.states.get(id);
      const configured = byId.get(id);
      reports.push({
        ...state,
        id,
        url: configured?.url ?? state?.url ?? "",
        state: state?.disabledAt ? "disabled" : "enabled",
        events: configured ? [...configured.events].sort() : [],
        configured: configured !== undefined,
      });
    }
    return reports;
  }

  /**
   * Sends one `hookd.test` message to a configured endpoint now, disabled or not, signed and sent
   * as real deliveries are (same request builder, signer and sender); nothing is stored and the
   * endpoint's failure count is left alone. Undefined when the config names no such endpoint.
   */
  async sendTest(id: string): Promise<TestDeliveryAnswer | undefined> {
    const hook = this.options.webhooks().find((candidate) => endpointId(candidate.url) === id);
    if (!hook) return undefined;
    const testId = `test_${randomUUID()}`;
    const input: WebhookInput = { url: hook.url, method: hook.method, format: hook.format, ordinal: 0 };
    const request = prepareWebhookRequest(
      { msgId: `msg_${testId}`, url: hook.url, method: hook.method, format: hook.format, fields: { type: TEST_EVENT, endpoint: id, sentAt: new Date(this.now()).toISOString() }, event: { id: testId, name: TEST_EVENT } },
      this.signerFor(TEST_EVENT, input),
      new Date(this.now()),
    );
    const started = performance.now();
    const result = await sendWebhook(request, { timeoutMs: this.options.settings().timeoutMs, now: this.now, fetch: this.options.fetch });
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    this.log.info({ endpoint: id, url: hook.url, status: result.status, ok: result.ok }, "webhook test delivery sent");
    return {
      ok: result.ok,
      status: result.status ?? null,
      latencyMs,
      response: result.excerpt ?? null,
      ...(result.ok ? {} : { error: result.message }),
      request: { method: hook.method, url: request.url, msgId: `msg_${testId}` },
    };
  }

  /** Re-enables an endpoint; its waiting messages go out again. Undefined for an unknown id. */
  async enable(id: string): Promise<EndpointReport | undefined> {
    const known = (await this.list()).find((report) => report.id === id);
    if (!known) return undefined;
    const state = await this.states.enable(id);
    if (this.disabled.delete(id)) this.options.onEndpointsChanged?.();
    this.log.info({ endpoint: id, url: known.url }, "webhook endpoint enabled");
    return { ...known, ...state, state: "enabled" };
  }

  private async recordFailure(id: string, url: string, message: string, exhaustedSince: number | undefined): Promise<void> {
    try {
      const { state, disabledNow } = await this.states.recordFailure(id, url, this.now(), message, exhaustedSince);
      if (!disabledNow) return;
      this.disabled.add(id);
      this.log.error(
        { code: "HOOKD_WEBHOOK_DISABLED", endpoint: id, url, failures: state.consecutiveFailures, failingSince: state.failingSince },
        `webhook endpoint ${url} disabled: ${state.disabledReason}; POST /api/webhooks/${id}/enable sends its waiting messages again`,
      );
      this.options.onEndpointsChanged?.();
    } catch (error) {
      this.log.warn({ err: error, endpoint: id }, "recording a webhook failure failed");
    }
  }

  private async refresh(): Promise<void> {
    try {
      const ids = new Set(this.options.webhooks().map((hook) => endpointId(hook.url)));
      const disabled = new Set<string>();
      for (const id of ids) if ((await this.states.get(id))?.disabledAt) disabled.add(id);
      const changed = disabled.size !== this.disabled.size || [...disabled].some((id) => !this.disabled.has(id));
      this.disabled = disabled;
      if (changed) this.options.onEndpointsChanged?.();
    } catch (error) {
      this.log.debug({ err: error }, "reading webhook endpoint state failed; next refresh retries");
    }
  }

  /** The webhook's own secret, else `webhookDelivery.secret`, else HOOKD_WEBHOOK_SECRET. */
  private signerFor(event: string, input: WebhookInput): WebhookSigner | undefined {
    const hooks = this.options.webhooks();
    const hook =
      hooks.find((h) => h.url === input.url && h.on === event && h.method === input.method && h.secret) ??
      hooks.find((h) => h.url === input.url && h.secret);
    const secret = hook?.secret ?? this.options.settings().secret ?? (this.options.env ?? process.env).HOOKD_WEBHOOK_SECRET;
    if (!secret) {
      if (!this.warnedUnsigned) {
        this.warnedUnsigned = true;
        this.log.warn("webhooks are sent unsigned: set a secret on the webhook, webhookDelivery.secret or HOOKD_WEBHOOK_SECRET");
      }
      return undefined;
    }
    let signer = this.signers.get(secret);
    if (!signer) {
      signer = createSigner(secret);
      this.signers.set(secret, signer);
    }
    return signer;
  }
}
