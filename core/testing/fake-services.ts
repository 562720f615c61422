/**
 * The test kit's side of the host-call table (sandbox/contract/host-calls.ts): the daemon's
 * services with the store, the intake and the network replaced by records a test can read. ctx.kv
 * is a MemoryKv, ctx.emit validates against the catalog and records, ctx.fetch goes through the
 * daemon's own fetch service onto a FakeNetwork, so patterns, redirects and limits are production's.
 * `hookd check` loads plugins against these too (nothing runs there).
 */
import { randomUUID } from "node:crypto";
import type { HostServices } from "../../sandbox/contract/host-calls.ts";
import type { PluginLogRecord } from "../../sandbox/contract/run.ts";
import type { EventCatalog } from "../config/define.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { FetchService } from "../fetch/fetch-service.ts";
import { SecretResolver } from "../../sandbox/index.ts";
import type { FakeNetwork } from "./fake-network.ts";
import type { FakeWorkstations } from "./fake-workstations.ts";
import type { MemoryKv } from "./memory-kv.ts";
import { calendarsOf, type CalendarConfig } from "../time/calendar-config.ts";
import { deliverAtFromOptions } from "../time/delay.ts";

/** An event a plugin published with ctx.emit, as hookd would store it (validated, coerced). */
export interface EmittedEvent {
  name: string;
  payload: unknown;
  id: string;
  /** A delayed emit's due time (ISO 8601), checked as the daemon checks it; absent for "at once". */
  deliverAt?: string;
}

export interface FakeServicesOptions {
  catalog: EventCatalog;
  kv: MemoryKv;
  network: FakeNetwork;
  /** Secret values the plugin's fetches may carry as credentials; the environment is never read. */
  secrets: Record<string, string | undefined>;
  onLog: (record: PluginLogRecord) => void;
  onEmit: (event: EmittedEvent) => void;
  /** The config's business-hours calendars, for ctx.emit's `within`. */
  calendars?: Record<string, CalendarConfig>;
  /** The faked telephony workstations behind ctx.oktell, and whether the plugin declared `oktell: true`. */
  workstations?: { fake: FakeWorkstations; declared: () => boolean };
}

export function fakeServices(options: FakeServicesOptions): HostServices {
  const { catalog, kv } = options;
  const calendars = calendarsOf(options.calendars ?? {});
  const fetchService = new FetchService({
    send: options.network.fetch,
    secret: (plugin, name) => new SecretResolver({ configured: options.secrets, environment: undefined }).resolve(plugin, name),
  });
  return {
    log: options.onLog,
    "kv.get": async (_caller, key) => kv.get(key),
    "kv.set": async (caller, key, value) => kv.write(key, value, caller.kvMaxKeys),
    "kv.delete": async (_caller, key) => kv.remove(key),
    "kv.list": async (_caller, prefix, limit) => kv.list(prefix, limit),
    emit: async (_caller, name, payload, emitOptions) => {
      const deliverAt = deliverAtFromOptions(emitOptions, Date.now(), (name) => calendars.get(name));
      const emitted: EmittedEvent = {
        name,
        payload: validateEvent(catalog, name, payload),
        id: randomUUID(),
        ...(deliverAt === undefined ? {} : { deliverAt: new Date(deliverAt).toISOString() }),
      };
      options.onEmit(emitted);
      return { id: emitted.id };
    },
    fetch: (caller, url, init) => fetchService.fetch({ plugin: caller.plugin, runId: caller.runId, url, init, policy: caller.fetchPolicy, signal: caller.signal }),
    // ctx.oktell, checked as the daemon checks it and answered by the fake workstations.
    oktell: async (caller, method, user, argument) => {
      const workstations = options.workstations;
      if (!workstations) throw new HookdError("HOOKD_OKTELL_UNAVAILABLE", ["no workstation bridge serves this host"]);
      return workstations.fake.serve({ plugin: caller.plugin, runId: caller.runId, method, user, argument, signal: caller.signal }, workstations.declared());
    },
  };
}

/** What the intake does to an emitted payload: the catalog's schema, coerced, or HOOKD_EVENT_*. */
export function validateEvent(catalog: EventCatalog, name: string, payload: unknown): unknown {
  const schema = Object.hasOwn(catalog, name) ? catalog[name] : undefined;
  if (!schema) throw new HookdError("HOOKD_EVENT_UNKNOWN", [name]);
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    throw new HookdError("HOOKD_EVENT_INVALID", [name], {
      issues: parsed.error.issues.map((issue) => ({ path: issue.path.map(String), code: issue.code, message: issue.message })),
      cause: parsed.error,
      message: `event ${name} does not match its schema: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`,
    });
  }
  return parsed.data;
}
