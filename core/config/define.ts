/**
 * `hookd/config`: what an events.config.ts imports. Everything here exists for types only;
 * `defineConfig` returns its argument unchanged (the loader validates it).
 */
import { z } from "zod";
import type { PluginOptions } from "../../sandbox/contract/run.ts";
import type { InputMapping } from "../routing/route-input.ts";
import type { ScheduleConfig } from "../time/schedule-config.ts";
import type { CalendarConfig } from "../time/calendar.ts";

export type { CalendarConfig, ScheduleConfig };

export { z };

/** An event catalog: event name -> zod schema of its payload. */
export type EventCatalog = Record<string, z.ZodType>;

/** Maps an action's input field to a dotted path in the event payload, or to a constant. */
export type { InputMapping };

/** A handler without code: start a plugin's action when an event arrives. */
export interface RouteConfig<EventName extends string = string> {
  on: EventName;
  /** The action to start, as declared by a plugin with `action(name, ...)`. */
  run: string;
  /** Action input field -> event field path (`"userId"`, `"client.id"`) or `{ value }`. */
  input?: InputMapping;
}

/** A handler without code: send the event to an external URL, as events.php webhooks did. */
export interface WebhookConfig<EventName extends string = string> {
  on: EventName;
  url: string;
  method?: "GET" | "POST";
  /** POST body format; GET always sends a query string. */
  format?: "json" | "form";
  /** Outgoing field -> event field path; without it the whole payload is sent. */
  map?: Record<string, string>;
  /** Signing secret (Standard Webhooks, `whsec_...` or raw); defaults to HOOKD_WEBHOOK_SECRET. */
  secret?: string;
}

export interface WebhookDeliverySettings {
  /**
   * Delays of the retries after the first attempt, which goes at once. Default:
   * 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. A `Retry-After` answer can only lengthen a wait.
   * An endpoint whose message fails over the whole schedule is disabled (GET /api/webhooks).
   */
  retryScheduleMs?: number[];
  /** How long one attempt waits for an answer (default 15 s). */
  timeoutMs?: number;
  /** Signing secret of webhooks that set none; defaults to HOOKD_WEBHOOK_SECRET. */
  secret?: string;
}

export interface OktellSettings {
  /**
   * Zone of the telephony server's local dates ("Europe/Moscow", "UTC", "+03:00"): its
   * `12.07.2008 18:35:06` becomes `2008-07-12T18:35:06+04:00`. Without it dates stay zone-less.
   */
  timezone?: string;
  /** How long a workstation command waits for its bridge's answer before it expires (default 60000). */
  commandTtlMs?: number;
  /** A command sent to a bridge and not answered within this goes again on its next poll (default 15000). */
  commandLeaseMs?: number;
  /** Long-polls (`GET /oktell/commands`) waiting at once on this daemon (default 256; 4 per user). */
  maxPollers?: number;
  /** A bridge that polled within this long counts as connected (default 90000). */
  bridgeSeenMs?: number;
  /**
   * The confirm guard: hookd answers every `oktell.tminterfaceconfirm` (121) that no handler
   * answered within `answerAfterMs` with `result` (TM_SetConfirmResult for that workstation);
   * a TMInterfaceClose (123) of the same task cancels it. Unset: off.
   */
  confirm?: { answerAfterMs: number; result?: "ok" | "skip" | "delete" };
}

export interface ServerSettings {
  host?: string;
  port?: number;
  /** When set, every API request needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
  /** Largest accepted request body in bytes. */
  bodyLimit?: number;
}

export interface PluginSettings {
  dir?: string;
  /** Reload plugins when their files change (default true). */
  watch?: boolean;
}

/**
 * The defaults of every per-plugin limit (a plugin overrides each in `plugin({...})`, where they
 * are documented), plus what only the config sets.
 */
export type SandboxSettings = Omit<PluginOptions, "fetch" | "secrets" | "retry"> & {
  /** Time a plugin's top-level code gets each time its isolate is built. */
  loadTimeoutMs?: number;
  /**
   * The kernel wall around the sandbox process (bubblewrap on Linux: no network, no files but
   * hookd's own, no view of the daemon). `"auto"` (default) uses it where available and warns
   * where not; `"required"` refuses to start without it; `"off"` does not try.
   * Env: `HOOKD_SANDBOX_WALL`.
   */
  wall?: "auto" | "required" | "off";
  /** A plugin failing `failures` runs in a row is paused for `coolDownMs` (doubling while it keeps failing). */
  breaker?: { failures?: number; coolDownMs?: number };
};

export interface StoreSettings {
  /** `sqlite:<path>` (relative to the data folder's parent) or `postgres://...`. */
  url?: string;
  /**
   * SQLite `synchronous`: FULL (default) fsyncs the WAL on every commit, so a 202 survives
   * power loss; NORMAL can lose the last commits on power loss (not on a process crash);
   * OFF can corrupt the database on power loss.
   */
  synchronous?: "FULL" | "NORMAL" | "OFF";
}

export interface DeliverySettings {
  /** Attempts per delivery before it is dead-lettered. */
  maxAttempts?: number;
  /** First retry delay; doubles each attempt, with jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Deliveries in flight at once across all plugins. */
  concurrency?: number;
  /** Longest chain of ctx.emit before it is cut as a loop. */
  maxEmitDepth?: number;
  /** Events one accepted event may cause through ctx.emit in total, all generations (default 1000). */
  maxDescendants?: number;
  /**
   * Per-key order: event name or `prefix.*` -> payload field (`{ "shop.order.*": "orderId" }`).
   * A handler gets the events with one key one at a time, in acceptance order; other keys run
   * concurrently. Added to the shipped catalog's keys (`deal.*` by `did`, `client.*` by `clid`...);
   * `false` switches one off.
   */
  orderBy?: Record<string, string | false>;
  /** Time runs in flight get to finish on SIGTERM before their leases are released (default 10 s). */
  drainMs?: number;
  /** How long finished events are kept before they are pruned; 0 keeps them forever. */
  retention?: {
    /** Events whose deliveries are all done (default 7 days). */
    doneMs?: number;
    /** Events with dead letters (default 30 days). */
    deadMs?: number;
  };
}

/** The whole events.config.ts. Every setting but `events` has a default. */
export interface HookdConfig<Events extends EventCatalog = EventCatalog> {
  events: Events;
  routes?: Array<RouteConfig<keyof Events & string>>;
  webhooks?: Array<WebhookConfig<keyof Events & string>>;
  webhookDelivery?: WebhookDeliverySettings;
  oktell?: OktellSettings;
  server?: ServerSettings;
  plugins?: PluginSettings;
  sandbox?: SandboxSettings;
  store?: StoreSettings;
  delivery?: DeliverySettings;
  log?: { level?: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent" };
  /**
   * Values for plugins' declared secrets; a name missing here is read from the environment
   * (never a `HOOKD_*` variable). `"billing:STRIPE_KEY"` is STRIPE_KEY for the plugin billing
   * only: no other plugin can read that name, from here or from the environment.
   */
  secrets?: Record<string, string | undefined>;
  /** Cron ticks that emit a catalog event: `{ cron, tz, emit, payload, catchUp }` (see "Time and flow control"). */
  schedules?: Array<ScheduleConfig<keyof Events & string>>;
  /** Business hours by name: `{ office: { tz, hours: "Mon-Fri 09:00-18:00", holidays: ["2026-12-31"] } }`. */
  calendars?: Record<string, CalendarConfig>;
}

/** Identity function that gives events.config.ts its types. */
export function defineConfig<const Events extends EventCatalog>(config: HookdConfig<Events>): HookdConfig<Events> {
  return config;
}
