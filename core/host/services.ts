/**
 * The daemon's side of the host-call table (sandbox/contract/host-calls.ts): what a plugin's
 * ctx reaches once the sandbox checked the call. The caller is the trusted side's record of the
 * run (plugin, run meta, limits, fetch policy), never what the isolate said of itself.
 * Every log line, kv write, emit and fetch of a run is also told to the run detail's recorder
 * (core/runs/activity.ts), when there is one.
 */
import type { HostServices } from "../../sandbox/contract/host-calls.ts";
import type { FetchService } from "../fetch/fetch-service.ts";
import type { EventIntake } from "../ingress/intake.ts";
import type { Logger } from "../base/log.ts";
import type { OktellBridge } from "../integrations/oktell/bridge.ts";
import { redactUrl, type RunActivityRecorder } from "../runs/activity.ts";
import { NOOP_TRACING, type Tracing } from "../telemetry/tracing.ts";
import type { Store } from "../store/types.ts";
import type { Calendar } from "../time/calendar.ts";
import { deliverAtFromOptions } from "../time/delay.ts";

export interface DaemonServicesOptions {
  store: Store;
  /** The intake, built after the sandbox that these services serve. */
  intake: () => Pick<EventIntake, "accept">;
  fetchService: FetchService;
  /** The daemon's log, component "plugin". */
  pluginLog: Logger;
  /** The config's business-hours calendars by name, for ctx.emit's `within`. */
  calendars: (name: string) => Calendar | undefined;
  /** The telephony workstation bridge (core/integrations/oktell/), built after the sandbox. */
  oktell: () => Pick<OktellBridge, "call">;
  /** Run detail: what each run did. */
  activity?: RunActivityRecorder | undefined;
  /** Traces out: a span per fetch under its run (its traceparent sent along), emits continue the run's trace. */
  tracing?: () => Tracing;
}

export function daemonServices({ store, intake, fetchService, pluginLog, calendars, oktell, activity, tracing = () => NOOP_TRACING }: DaemonServicesOptions): HostServices {
  const failure = (error: unknown) => (error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error));
  return {
    log: (record) => {
      const fields = { ...record.fields, plugin: record.plugin, event: record.event, eventId: record.eventId, runId: record.runId };
      pluginLog[record.level](fields, record.msg);
      activity?.log(record.runId, record.level, record.msg, record.fields);
    },
    "kv.get": (caller, key) => store.kvGet(caller.plugin, key),
    // The key limit goes with the write: the store counts and writes in one step.
    "kv.set": async (caller, key, value) => {
      const bytes = Buffer.byteLength(JSON.stringify(value) ?? "");
      try {
        await store.kvSet(caller.plugin, key, value, { maxKeys: caller.kvMaxKeys });
        activity?.kvWrite(caller.runId, "set", key, bytes);
      } catch (error) {
        activity?.kvWrite(caller.runId, "set", key, bytes, failure(error));
        throw error;
      }
    },
    "kv.delete": async (caller, key) => {
      const deleted = await store.kvDelete(caller.plugin, key);
      activity?.kvWrite(caller.runId, "delete", key, 0);
      return deleted;
    },
    "kv.list": (caller, prefix, limit) => store.kvList(caller.plugin, prefix, limit),
    emit: async (caller, name, payload, options) => {
      try {
        // ctx.emit(name, payload, { delay } | { at }): checked before anything is stored.
        const deliverAt = deliverAtFromOptions(options, Date.now(), calendars);
        const traceparent = tracing().enabled ? tracing().runTraceparent(caller.runId) : undefined;
        const { id } = await intake().accept({ name, body: payload, source: "emit", parent: { eventId: caller.meta.eventId, depth: caller.meta.depth }, deliverAt, traceparent });
        activity?.emit(caller.runId, name, id);
        return { id };
      } catch (error) {
        activity?.emit(caller.runId, name, undefined, failure(error));
        throw error;
      }
    },
    fetch: async (caller, url, init) => {
      const started = performance.now();
      const at = Date.now();
      const method = (init.method ?? "GET").toUpperCase();
      const span = tracing().enabled ? tracing().start(`hookd.fetch ${method}`, tracing().runTraceparent(caller.runId), { "http.request.method": method, "url.full": redactUrl(url), "hookd.plugin": caller.plugin, "hookd.run.id": caller.runId }, "client") : undefined;
      const sent = span?.traceparent ? { ...init, headers: { ...init.headers, traceparent: span.traceparent } } : init;
      try {
        const reply = await fetchService.fetch({ plugin: caller.plugin, runId: caller.runId, url, init: sent, policy: caller.fetchPolicy, signal: caller.signal });
        activity?.fetch(caller.runId, { at, method, url, status: reply.status, durationMs: performance.now() - started, bytes: Buffer.byteLength(reply.body) });
        span?.end({ attributes: { "http.response.status_code": reply.status } });
        return reply;
      } catch (error) {
        activity?.fetch(caller.runId, { at, method, url, durationMs: performance.now() - started, error: failure(error) });
        span?.end({ code: (error as { code?: string }).code ?? "HOOKD_FETCH_FAILED", error: failure(error) });
        throw error;
      }
    },
    // ctx.oktell: the bridge checks the capability, the user and the argument, and waits for the answer.
    oktell: (caller, method, user, argument) => oktell().call({ plugin: caller.plugin, runId: caller.runId, method, user, argument, signal: caller.signal }),
  };
}
