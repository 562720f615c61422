/**
 * `hookd/config`: what an events.config.ts imports. Everything here exists for types only;
 * `defineConfig` returns its argument unchanged (the loader validates it).
 */
import { z } from "zod";

export { z };

/** An event catalog: event name -> zod schema of its payload. */
export type EventCatalog = Record<string, z.ZodType>;

/** Maps an action's input field to a dotted path in the event payload, or to a constant. */
export type InputMapping = Record<string, string | { value: unknown }>;

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

export interface SandboxSettings {
  /** Heap limit of each plugin's isolate. */
  memoryMb?: number;
  /** Wall time of one run, including awaited host calls. */
  timeoutMs?: number;
  /** Runs of one plugin executing at once. */
  maxConcurrentRuns?: number;
}

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
}

/** The whole events.config.ts. Every setting but `events` has a default. */
export interface HookdConfig<Events extends EventCatalog = EventCatalog> {
  events: Events;
  routes?: Array<RouteConfig<keyof Events & string>>;
  webhooks?: Array<WebhookConfig<keyof Events & string>>;
  server?: ServerSettings;
  plugins?: PluginSettings;
  sandbox?: SandboxSettings;
  store?: StoreSettings;
  delivery?: DeliverySettings;
  log?: { level?: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent" };
  /** Values for plugins' declared secrets; a name missing here is read from the environment. */
  secrets?: Record<string, string | undefined>;
}

/** Identity function that gives events.config.ts its types. */
export function defineConfig<const Events extends EventCatalog>(config: HookdConfig<Events>): HookdConfig<Events> {
  return config;
}
