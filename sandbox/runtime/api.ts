/**
 * `hookd`: the API a plugin imports. These are the types editors check plugins against; at
 * run time the compiler maps this module to the in-isolate runtime (sandbox/runtime/shim.ts).
 *
 * The catalog's types come from the project's events.config.ts through `Register`, which
 * `hookd types` fills in a declaration file:
 *
 *   declare module "hookd" { interface Register { config: typeof import("./events.config.ts").default } }
 */
import type { z } from "zod";

export { z } from "zod";

/** Filled by module augmentation with the project's config; see the file comment. */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Register {}

type RegisteredEvents = Register extends { config: { events: infer E } } ? E : Record<string, z.ZodType>;

/** A name of the catalog: `on("deal.closed", ...)` with a typo is a type error. */
export type EventName = keyof RegisteredEvents & string;

/** The payload a handler receives: the schema's output (ids coerced to numbers). */
export type EventPayload<K extends EventName> = RegisteredEvents[K] extends z.ZodType ? z.output<RegisteredEvents[K]> : never;

/** What `ctx.emit` takes: the schema's input, validated like an HTTP request. */
export type EventInput<K extends EventName> = RegisteredEvents[K] extends z.ZodType ? z.input<RegisteredEvents[K]> : never;

/** pino's call shapes: `log.info("msg")` or `log.info({ fields }, "msg")`. */
export interface PluginLogger {
  debug(fields: object, msg?: string): void;
  debug(msg: string): void;
  info(fields: object, msg?: string): void;
  info(msg: string): void;
  warn(fields: object, msg?: string): void;
  warn(msg: string): void;
  error(fields: object, msg?: string): void;
  error(msg: string): void;
}

/** The plugin's own persistent key-value store; values are JSON. */
export interface PluginKv {
  get<T = unknown>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** Keys that start with `prefix`, in order. */
  list(prefix?: string, limit?: number): Promise<string[]>;
}

export interface FetchInit {
  method?: string;
  headers?: Record<string, string> | Headers | Array<[string, string]>;
  /** Sent as UTF-8 text: a string, or a body (URLSearchParams, FormData, Blob, bytes) whose bytes are UTF-8. */
  body?: string | ArrayBuffer | ArrayBufferView | Blob | FormData | URLSearchParams | null;
  /**
   * An AbortSignal (e.g. `AbortSignal.timeout(500)`): the call rejects with its reason when it
   * aborts. The request itself is cut when the run ends.
   */
  signal?: { readonly aborted: boolean; readonly reason: unknown; throwIfAborted(): void; addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void } | null;
}

/**
 * What ctx.fetch answers: a real `Response` of the isolate. Its headers are a real `Headers`
 * whose header names also read as properties (`response.headers["content-type"]`), as when
 * ctx.fetch answered a plain object.
 */
export interface FetchResponse {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly url: string;
  readonly redirected: boolean;
  readonly type: string;
  readonly headers: Headers & Readonly<Record<string, string>>;
  readonly bodyUsed: boolean;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
  blob(): Promise<Blob>;
  formData(): Promise<FormData>;
  clone(): FetchResponse;
}

/**
 * `ctx.emit`'s third argument: deliver the event later. It is stored at once (the emit resolves
 * once it is on disk) and its handlers run at its time, across restarts. Either option, not both.
 */
export type EmitOptions = (
  | {
      /** How long from now: "30s", "15m", "2h", "1.5h", "1d" (a unit is required), or milliseconds. At most 366 days. */
      delay: string | number;
      at?: never;
    }
  | {
      /**
       * When: a Date, or an ISO 8601 string with a zone ("2026-12-01T09:00:00+03:00"). A time
       * already past means now. `"next-open"` (with `within`): the calendar's next opening.
       */
      at: Date | string;
      delay?: never;
    }
) & {
  /**
   * A calendar of the config's `calendars`: the delay counts only its open hours, and a time in
   * closed hours moves to the next opening.
   */
  within?: string;
};

/** User states of the Oktell telephony server (seed 002 `EUserState`). */
export type EUserState = "usDisconnected" | "usReady" | "usLunch" | "usOff" | "usFullbusy" | "usReserved" | "usWOphone";
/** Line states of the Oktell telephony server (seed 002 `ELineState`). */
export type ELineState =
  | "lsDisconnected" | "lsOff" | "lsReady" | "lsHookUp" | "lsIncomingCall" | "lsCommutated" | "lsWait"
  | "lsFlash" | "lsWaitDown" | "lsListenBusy" | "lsUndefined" | "lsReserved" | "lsReservedByTask";
/** Answers to a TMInterfaceConfirm (121): confirm the call, skip it, or take the subscriber off the list. */
export type OktellConfirmResult = "ok" | "skip" | "delete";

/**
 * The telephony workstation's methods (the Oktell client component's, seed 002), performed by the
 * operator's workstation bridge (see README, "The telephony workstation bridge"). `user` is the
 * operator's login as the bridge gives it (`ctx.event.source.user` of that workstation's events).
 * A command its bridge does not answer within `oktell.commandTtlMs` (or the run's time) rejects with
 * HOOKD_OKTELL_COMMAND_TIMEOUT; a user whose bridge is not polling with HOOKD_OKTELL_USER_NOT_CONNECTED.
 * Needs `plugin({ oktell: true })`.
 */
export interface OktellApi {
  /** SetUserState: ask the server to change the operator's state (it may refuse: watch oktell.userstatechanged). */
  setUserState(user: string, options: { state: EUserState; description?: string; redirect?: boolean }): Promise<void>;
  /** GetUserState: the operator's state, its code, and whether forwarding is on. */
  getUserState(user: string): Promise<{ state: EUserState; stateCode: number; redirect?: boolean }>;
  /** GetLineState: the state of the operator's (first) line. */
  getLineState(user: string): Promise<{ state: ELineState; stateCode: number }>;
  /** GetCurrentUserFullInfo: the operator's description and rights, decoded (names beside codes; never the password). */
  getCurrentUserFullInfo(user: string): Promise<{ id: string } & Record<string, unknown>>;
  /** TM_SetTaskActive: activate or deactivate a call-centre task; `errormessage` says why the server refused. */
  setTaskActive(user: string, options: { tasktype: "call" | "text"; idtask: string; active: boolean }): Promise<{ success: boolean; errormessage?: string }>;
  /** TM_SetConfirmUsage: true makes the integration answer every TMInterfaceConfirm (121) itself. */
  setConfirmUsage(user: string, on: boolean): Promise<void>;
  /** TM_SetConfirmResult: answer a TMInterfaceConfirm; true when the server was waiting for it. */
  confirmResult(user: string, result: OktellConfirmResult): Promise<boolean>;
  /** CallCenter_Enter: true when the operator got a call-centre licence. */
  callCenterEnter(user: string): Promise<boolean>;
  /** CallCenter_Exit. */
  callCenterExit(user: string): Promise<void>;
  /** CallCenter_IsInside. */
  callCenterIsInside(user: string): Promise<boolean>;
  /** CallCenter_SetBusyInExternalTask: reserve the operator for external (CRM) work; false if already reserved. */
  setBusyInExternalTask(user: string): Promise<boolean>;
  /** CallCenter_SetFreeInExternalTask: end that reservation; false if there was none. */
  freeBusyInExternalTask(user: string): Promise<boolean>;
  /** CallCenter_CheckBusyInExternalTask. */
  checkBusyInExternalTask(user: string): Promise<boolean>;
}

/** Where the event came from: the channel, and for the telephony bridge's events the workstation's user. */
export interface EventSourceInfo {
  readonly channel: "http" | "emit" | "action" | "oktell" | "replay";
  readonly user?: string;
}

/** Everything a handler can reach besides its payload. */
export interface Ctx {
  /** The event this run handles; `attempt` starts at 1. */
  readonly event: { readonly id: string; readonly name: string; readonly receivedAt: string; readonly attempt: number; readonly source: EventSourceInfo };
  readonly log: PluginLogger;
  /** Only the secrets the plugin declared in `plugin({ secrets })`. */
  readonly secrets: Readonly<Record<string, string | undefined>>;
  readonly kv: PluginKv;
  /** Reaches only URLs matching the plugin's `plugin({ fetch })` patterns. */
  fetch(input: string | URL | Request, init?: FetchInit): Promise<FetchResponse>;
  /**
   * Publishes a new event through the same validation as the HTTP ingress; with `{ delay }` or
   * `{ at }` its handlers run later (cancel it with `POST /api/events/{id}/cancel`).
   */
  emit<K extends EventName>(name: K, payload: EventInput<K>, options?: EmitOptions): Promise<{ id: string }>;

  fetch(url: string, init?: FetchInit): Promise<FetchResponse>;
  /** Publishes a new event through the same validation as the HTTP ingress. */
  emit<K extends EventName>(name: K, payload: EventInput<K>): Promise<{ id: string }>;
  /** The telephony workstation's methods; only with `plugin({ oktell: true })`. */
  readonly oktell: OktellApi;
}

export interface PluginOptions {
  /** URL patterns `ctx.fetch` may reach; `*` matches any characters. */
  fetch?: string[];
  /** Names of secrets exposed as `ctx.secrets`. */
  secrets?: string[];
  /** Wall time of one run (overrides the config's sandbox.timeoutMs). */
  timeoutMs?: number;
  /** Heap limit of this plugin's isolate (overrides sandbox.memoryMb). */
  memoryMb?: number;
  /** Runs of this plugin executing at once. */
  maxConcurrentRuns?: number;
  /** CPU time of one run (overrides sandbox.cpuTimeMs); time spent waiting on ctx calls does not count. */
  cpuTimeMs?: number;
  /** Log lines and bytes one run may write; the rest is dropped with one warning. */
  maxLogLinesPerRun?: number;
  maxLogBytesPerRun?: number;
  /** `ctx.fetch`: time for the whole answer, and its largest body in bytes. */
  fetchTimeoutMs?: number;
  fetchMaxBytes?: number;
  /** `ctx.kv`: largest value (JSON bytes) and most keys this plugin may keep. */
  kvMaxValueBytes?: number;
  kvMaxKeys?: number;
  /** Events one run may publish with `ctx.emit`. */
  maxEmitsPerRun?: number;
  /**
   * Makes `WebAssembly` available (it is off by default: its memory lives outside the isolate's
   * heap limit). Each memory must then declare a maximum, and the maxima of the memories alive
   * together stay within `memoryMb`.
   */
  wasm?: boolean;
  /**
   * How this plugin's failed runs are retried (overrides the config's `delivery` settings):
   * attempts before a run is dead-lettered, first retry delay (doubling, with jitter), and cap.
   */
  retry?: { maxAttempts?: number; backoffMs?: number; maxBackoffMs?: number };
  /** `ctx.oktell`: method calls on the operators' telephony workstations through their bridges. */
  oktell?: boolean;
}

type Awaitable<T> = T | Promise<T>;

/** A span of time: "500ms", "10s", "5m", "1h", "1d", or milliseconds. */
export type Duration = string | number;

/**
 * How often and how many at once this plugin's deliveries of one event run. A `key` is a dotted
 * payload path (`did`, `client.id`): the rule then holds per value of that field; without one it
 * holds for all of the handler's deliveries. Every rule is kept in the store, so it holds across
 * restarts and across instances sharing a PostgreSQL store. Throttle and rate limit count a run's
 * first attempt; retries follow the retry policy.
 */
export interface FlowOptions {
  /** At most `limit` runs at once per key; the rest wait (`waiting: concurrency limit`). */
  concurrency?: { key?: string; limit: number };
  /** At most `limit` starts in any `period` per key; the rest wait their turn (`waiting: throttled until ...`), none is dropped. */
  throttle?: { key?: string; limit: number; period: Duration };
  /** At most `limit` runs in any `period` per key; the rest are skipped and recorded as such (`skipped: rate limit`). */
  rateLimit?: { key?: string; limit: number; period: Duration };
  /** A burst runs once, with its last event, `period` after the last one; the earlier ones are skipped (`skipped: debounced`). */
  debounce?: { key?: string; period: Duration };
}

/** Subscribes a handler to a catalog event. */
export declare function on<K extends EventName>(name: K, handler: (event: EventPayload<K>, ctx: Ctx) => Awaitable<void>): void;
/** Subscribes a handler with flow control: `on("deal.edit", { debounce: { key: "did", period: "10s" } }, handler)`. */
export declare function on<K extends EventName>(name: K, options: FlowOptions, handler: (event: EventPayload<K>, ctx: Ctx) => Awaitable<void>): void;

/** Declares an action: started by a route, by hand (`POST /actions/{name}`), or by a handler. */
export declare function action<S extends z.ZodType>(
  name: string,
  spec: { input: S },
  handler: (input: z.output<S>, ctx: Ctx) => Awaitable<void>,
): void;
export declare function action(name: string, handler: (input: unknown, ctx: Ctx) => Awaitable<void>): void;

/** What a schedule's handler receives for each tick. */
export interface ScheduleTick {
  /** The tick's time (ISO 8601), not when it happened to run: a retried tick keeps it. */
  readonly scheduledAt: string;
  readonly cron: string;
  readonly tz: string;
}

export interface ScheduleOptions {
  /** The zone the cron is read in (`Europe/Moscow`); default `UTC`. */
  tz?: string;
  /**
   * Ticks missed while hookd was down: `"one"` (default) runs the latest once at start, `"none"`
   * skips them, `"all"` runs each (at most 100, the latest).
   */
  catchUp?: "one" | "none" | "all";
  /** A calendar of the config's `calendars`: ticks on its closed days (weekends, holidays) are skipped. */
  calendar?: string;
}

/**
 * Runs `handler` on a cron (5 fields, or 6 with seconds first), each tick a durable run like an
 * event's: retried, dead-lettered, in the history. One tick runs once, across restarts and
 * across instances.
 */
export declare function schedule(cron: string, options: ScheduleOptions, handler: (tick: ScheduleTick, ctx: Ctx) => Awaitable<void>): void;
export declare function schedule(cron: string, handler: (tick: ScheduleTick, ctx: Ctx) => Awaitable<void>): void;

/** Declares the plugin's capabilities and limits; call it once, at the top level. */
export declare function plugin(options: PluginOptions): PluginOptions;

/** Throw it to dead-letter the run at once instead of retrying. */
export declare class NonRetriableError extends Error {
  readonly retriable: false;
}
