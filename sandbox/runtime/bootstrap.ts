/**
 * The in-isolate runtime. esbuild bundles this file once into a script that runs in every
 * plugin isolate before the plugin's own code. It receives the host's bridge Reference and
 * keeps it in this closure: plugin code only ever sees plain functions (`on`, `action`,
 * `plugin`, and each run's `ctx`), never an isolated-vm Reference or a host object.
 *
 * Everything crossing the boundary is a JSON string: payloads are parsed here into objects the
 * isolate owns, so nothing a plugin does to them (prototype pollution included) reaches the host.
 *
 * The plugin shares this realm, so it can replace any built-in after the runtime installed.
 * The runtime therefore keeps its own copies of what it relies on, and closes the one door
 * through which a Reference could still leak: V8 hands `Error.prepareStackTrace` the frames of a
 * stack, and a frame's receiver can be the bridge itself. The runtime installs its own
 * formatter, fixed for good, so plugin code only ever sees stack strings. The host checks every
 * call anyway: a plugin that subverts its own runtime can only break its own runs.
 */

import type { HostCallArgs, HostCallName, HostCallResult } from "../contract/host-calls.ts";
import { guardWebAssembly } from "./wasm-guard.ts";
import { installWeb, setErrorReporter, type TimerRun } from "./web.ts";
import type { HostFetchReply } from "./fetch-api.ts";

/** The part of isolated-vm's Reference this runtime uses. */
interface HostReference {
  apply(receiver: undefined, args: unknown[], options: object): Promise<unknown>;
}

/** The synchronous host function (random bytes for crypto.getRandomValues). */
interface SyncHostReference {
  applySync(receiver: undefined, args: unknown[], options?: object): unknown;
}

type AnyHandler = (payload: unknown, ctx: unknown) => unknown;

interface RunRequestJson {
  runId: string;
  kind: "event" | "action";
  name: string;
  payload: unknown;
  meta: { eventId: string; eventName: string; receivedAt: number; attempt: number; depth: number; source?: { channel: string; user?: string } };
  /** The limits the runtime enforces itself, so a flood stops here instead of at the host. */
  limits?: { maxLogLinesPerRun?: number; maxLogBytesPerRun?: number; maxEmitsPerRun?: number; maxHostCallsInFlight?: number };
}

interface SafeParseSchema {
  safeParse(value: unknown): { success: true; data: unknown } | { success: false; error: { issues: unknown[] } };
}

interface HostErrorJson {
  code?: string;
  message?: string;
  retriable?: boolean;
  issues?: unknown[];
}

/** A log line longer than this (JSON characters) loses its fields; the host cuts at the same size. */
const MAX_LOG_LINE_CHARS = 16 * 1024;

/** Installs the runtime; returns the dispatcher the host calls for every run. */
export function install(host: HostReference, memoryMb = 64, syncHost?: SyncHostReference): (requestJson: string) => Promise<string> {
  // Own copies of the built-ins the runtime needs, taken before any plugin code runs.
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const freeze = Object.freeze;
  const create = Object.create;
  const defineProperty = Object.defineProperty;
  const assign = Object.assign;
  const keysOf = Object.keys;
  const isArray = Array.isArray;
  const apply = Reflect.apply;
  const hostApply = host.apply;
  const ErrorCtor = Error;
  const then = Promise.prototype.then;
  const PromiseCtor = Promise;
  const MapCtor = Map;
  const mapGet = Map.prototype.get;
  const mapSet = Map.prototype.set;
  const mapDelete = Map.prototype.delete;
  const mapHas = Map.prototype.has;
  const mapKeys = Map.prototype.keys;
  const arrayFrom = Array.from;
  const objectFrom = Object.fromEntries;
  const promiseAll = Promise.all.bind(Promise);
  const stringOf = String;
  // Errors the runtime itself made from a host reply, with the code the host gave them. A code
  // is trusted only from here: a plugin can write any `code` on anything it throws (or on a host
  // error it caught), but cannot reach this map, so it cannot pass its failure off as the host's
  // (HOOKD_RUN_ABORTED, say, which the circuit breaker does not count).
  const hostCodes = new WeakMap<object, string>();
  const hostCodeGet = WeakMap.prototype.get;
  const hostCodeSet = WeakMap.prototype.set;

  lockStackFormatting();
  closeDetachedCallbacks();
  // WebAssembly memory lives outside the heap limit: off unless declared (see wasm-guard.ts).
  const enableWasm = guardWebAssembly(memoryMb, (message) => hostError({ code: "HOOKD_RUN_WASM_MEMORY", message, retriable: false }));

  // Options objects without a prototype: isolated-vm reads them, and a getter a plugin put on
  // Object.prototype must not run (and see the bridge on the stack) while it does.
  // Only strings cross, and strings need no copying options.
  const COPY_IN_OUT = plainObject({ result: plainObject({ promise: true }) });

  const handlers = new MapCtor<string, AnyHandler[]>();
  // on(name, options, handler): each event's flow options, as JSON data.
  const flow = new MapCtor<string, unknown>();
  const actions = new MapCtor<string, { input?: SafeParseSchema; fn: AnyHandler }>();
  // schedule(cron, { tz, catchUp }, handler), by key: `schedule:<cron>[@tz][#n]` (the run's name).
  const schedules = new MapCtor<string, { cron: string; tz?: string; catchUp?: string; calendar?: string; fn: AnyHandler }>();
  let options: Record<string, unknown> = {};
  let loading = true;
  // Only the secrets the plugin declared, handed over by the host after it loaded.
  let secrets: Readonly<Record<string, string | undefined>> = freeze({});

  class NonRetriableError extends ErrorCtor {
    readonly retriable = false;
    constructor(message: string) {
      super(message);
      this.name = "NonRetriableError";
    }
  }

  function assertLoading(what: string): void {
    if (!loading) throw new ErrorCtor(`${what} must be called at the top level of the plugin, not inside a handler`);
  }

  /**
   * on(name, handler) or on(name, { concurrency, throttle, rateLimit, debounce }, handler). The
   * flow options cross as JSON; the host checks them (core/routing/flow-rules.ts) at load. They
   * govern the plugin's deliveries of the event, so one handler of an event declares them.
   */
  function on(name: unknown, spec: unknown, handler?: unknown): void {
    assertLoading("on()");
    if (typeof name !== "string" || name.length === 0) throw new TypeError("on(name, handler): name must be an event name");
    const fn = typeof spec === "function" ? spec : handler;
    if (typeof fn !== "function") throw new TypeError(`on("${name}", handler): handler must be a function`);
    if (typeof spec === "object" && spec !== null) {
      if (apply(mapHas, flow, [name])) throw new ErrorCtor(`on("${name}", options, handler): another handler of "${name}" declared flow options already; declare them once per event`);
      apply(mapSet, flow, [name, parse(stringify(spec))]);
    } else if (spec !== undefined && typeof spec !== "function") throw new TypeError(`on("${name}", options, handler): options must be an object`);
    const list = apply(mapGet, handlers, [name]) ?? [];
    list[list.length] = fn as AnyHandler;
    apply(mapSet, handlers, [name, list]);
  }

  function action(name: unknown, spec: unknown, fn?: unknown): void {
    assertLoading("action()");
    if (typeof name !== "string" || name.length === 0) throw new TypeError("action(name, ...): name must be a string");
    const handler = typeof spec === "function" ? spec : fn;
    if (typeof handler !== "function") throw new TypeError(`action("${name}"): missing the handler function`);
    if (apply(mapHas, actions, [name])) throw new ErrorCtor(`action("${name}") is declared twice`);
    const input = typeof spec === "object" && spec !== null ? (spec as { input?: SafeParseSchema }).input : undefined;
    apply(mapSet, actions, [name, { input, fn: handler as AnyHandler }]);
  }

  /** The cron, zone and catch-up are the host's to check (core/time/cron.ts), at load. */
  function schedule(cron: unknown, spec: unknown, fn?: unknown): void {
    assertLoading("schedule()");
    if (typeof cron !== "string" || cron.trim().length === 0) throw new TypeError("schedule(cron, ...): cron must be a cron expression such as \"0 9 * * 1-5\"");
    const handler = typeof spec === "function" ? spec : fn;
    if (typeof handler !== "function") throw new TypeError(`schedule("${cron}"): missing the handler function`);
    const given = (typeof spec === "object" && spec !== null ? spec : {}) as { tz?: unknown; catchUp?: unknown; calendar?: unknown };
    if (given.calendar !== undefined && typeof given.calendar !== "string") throw new TypeError(`schedule("${cron}"): calendar must be the name of a calendar of the config`);
    if (given.tz !== undefined && typeof given.tz !== "string") throw new TypeError(`schedule("${cron}"): tz must be a time zone name`);
    if (given.catchUp !== undefined && typeof given.catchUp !== "string") throw new TypeError(`schedule("${cron}"): catchUp must be "one", "none" or "all"`);
    const expression = cron;
    const base = `schedule:${expression}${given.tz === undefined ? "" : `@${given.tz as string}`}`;
    let key = base;
    for (let n = 2; apply(mapHas, schedules, [key]); n++) key = `${base}#${n}`;
    apply(mapSet, schedules, [key, { cron: expression, tz: given.tz as string | undefined, catchUp: given.catchUp as string | undefined, calendar: given.calendar as string | undefined, fn: handler as AnyHandler }]);
  }

  function plugin(declared: unknown): unknown {
    assertLoading("plugin()");
    if (typeof declared !== "object" || declared === null) throw new TypeError("plugin({...}) takes an options object");
    options = parse(stringify(declared)) as Record<string, unknown>;
    if (options.wasm === true) enableWasm();
    return declared;
  }

  // The runs in flight in this isolate, for the web globals (timers, crypto, console): a global
  // like setTimeout has no ctx, so it is filed under the run whose code entered last (a handler
  // started, a host reply, a timer fired), or else the newest run in flight.
  const liveRuns = new MapCtor<string, { timers: TimerRun; budget: RunBudget; log: ReturnType<typeof makeLogger> }>();
  let currentRun: TimerRun | undefined;
  const syncApply = syncHost?.applySync;
  const pickRun = (): TimerRun | undefined => {
    if (currentRun !== undefined && !currentRun.ended) return currentRun;
    let newest: TimerRun | undefined;
    for (const runId of arrayFrom(apply(mapKeys, liveRuns, []) as Iterable<string>)) newest = (apply(mapGet, liveRuns, [runId]) as { timers: TimerRun }).timers;
    return newest;
  };
  const liveOf = (run: TimerRun | undefined) => (run === undefined ? undefined : (apply(mapGet, liveRuns, [run.runId]) as { timers: TimerRun; budget: RunBudget; log: ReturnType<typeof makeLogger> } | undefined));
  const webApi = installWeb({
    currentRun: pickRun,
    liveRuns: () => arrayFrom(apply(mapKeys, liveRuns, []) as Iterable<string>, (runId) => (apply(mapGet, liveRuns, [runId]) as { timers: TimerRun }).timers),
    enterRun: (run) => {
      currentRun = run;
    },
    sleep: (run, ms) => sendHostCall("timer", run.runId, [ms]),
    randomBytes: (n) => {
      if (syncApply === undefined) throw new ErrorCtor("crypto.getRandomValues is not available here");
      return apply(syncApply, syncHost, [undefined, ["random", n]]) as string;
    },
    urlCode: () => {
      if (syncApply === undefined) throw new ErrorCtor("URL is not available here");
      return apply(syncApply, syncHost, [undefined, ["url", 0]]) as string;
    },
    crypto: (op, args) => {
      const live = liveOf(pickRun());
      if (live === undefined) return PromiseCtor.reject(new ErrorCtor("crypto.subtle works only inside a handler"));
      return callHostUntyped(`crypto.${op}`, live.timers.runId, args, live.budget);
    },
  });
  const consoleLine = (level: "debug" | "info" | "warn" | "error") => (...args: unknown[]) => {
    const live = liveOf(pickRun());
    if (live === undefined) return;
    let text = "";
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      let part: string;
      try {
        part = typeof arg === "string" ? arg : arg instanceof ErrorCtor ? String(arg.stack ?? arg) : (stringify(arg) ?? stringOf(arg));
      } catch {
        part = stringOf(arg);
      }
      text += (i === 0 ? "" : " ") + part;
    }
    live.log[level](text);
  };
  const consoleApi = freeze({
    log: consoleLine("info"), info: consoleLine("info"), warn: consoleLine("warn"), error: consoleLine("error"),
    debug: consoleLine("debug"), trace: consoleLine("debug"),
  });
  defineProperty(globalThis, "console", { value: consoleApi, writable: true, configurable: true, enumerable: false });
  setErrorReporter((error) => {
    const live = liveOf(pickRun());
    live?.log.error({ err: error instanceof ErrorCtor ? { name: error.name, message: error.message, stack: error.stack } : { value: stringOf(error) } }, "uncaught error in a timer, microtask or event listener");
  });

  const api = freeze({ on, action, plugin, schedule, NonRetriableError });
  defineProperty(globalThis, "__hookd", { value: api, enumerable: false, writable: false, configurable: false });

  /**
   * Calls the host with at most `maxHostCalls` of the run's calls in flight; the rest wait here,
   * in the isolate's own heap (which its memory limit counts), instead of piling up in the sandbox
   * process: 200,000 un-awaited `ctx.kv.get` used to take it from 84 MB to 2 GB. The host fails
   * a run that goes past the limit anyway (a plugin that subverted this runtime).
   */
  function callHost<K extends HostCallName>(op: K, runId: string, args: HostCallArgs<K>, budget: RunBudget): Promise<HostCallResult<K>> {
    return callHostUntyped(op, runId, args, budget) as Promise<HostCallResult<K>>;
  }

  function callHostUntyped(op: string, runId: string, args: readonly unknown[], budget: RunBudget): Promise<unknown> {
    if (budget.hostCalls < budget.maxHostCalls) {
      budget.hostCalls++;
      return releasing(sendHostCall(op, runId, args), budget);
    }
    return new PromiseCtor((resolve, reject) => {
      apply(mapSet, budget.queue, [
        budget.queueTail++,
        () => {
          // The slot of the call that just ended passes straight to this one.
          budget.hostCalls++;
          apply(then, releasing(sendHostCall(op, runId, args), budget), [resolve, reject]);
        },
      ]);
    });
  }

  /** Frees the call's slot once it settled, for the next queued call of the run. */
  function releasing(reply: Promise<unknown>, budget: RunBudget): Promise<unknown> {
    const release = () => {
      budget.hostCalls--;
      const next = apply(mapGet, budget.queue, [budget.queueHead]) as (() => void) | undefined;
      if (next === undefined) return;
      apply(mapDelete, budget.queue, [budget.queueHead]);
      budget.queueHead++;
      next();
    };
    return apply(then, reply, [
      (value: unknown) => {
        release();
        return value;
      },
      (error: unknown) => {
        release();
        throw error;
      },
    ]) as Promise<unknown>;
  }

  /** Sends one host call; a failure comes back as plain data and is thrown here as a fresh Error. */
  function sendHostCall(op: string, runId: string, args: readonly unknown[]): Promise<unknown> {
    let reply: Promise<unknown>;
    try {
      // The envelope is written by hand: a toJSON a plugin put on Object.prototype may forge the
      // arguments, never which run the call belongs to.
      const envelope = `{"runId":${stringify(runId)},"args":${stringify(args) ?? "null"}}`;
      reply = apply(hostApply, host, [undefined, [op, envelope], COPY_IN_OUT]) as Promise<unknown>;
    } catch (error) {
      // Whatever isolated-vm threw carries frames of the bridge: only its message goes on.
      return PromiseCtor.reject(hostError({ code: "HOOKD_HOST_CALL_INVALID", message: messageOf(error), retriable: false }));
    }
    return apply(then, reply, [
      (text: unknown) => {
        const live = apply(mapGet, liveRuns, [runId]) as { timers: TimerRun } | undefined;
        if (live !== undefined) currentRun = live.timers;
        const parsed = parse(text as string) as { ok: boolean; value?: unknown; error?: HostErrorJson };
        if (parsed.ok) return parsed.value;
        throw hostError(parsed.error ?? {});
      },
    ]) as Promise<unknown>;
  }

  function hostError(raw: HostErrorJson): Error {
    const error = new ErrorCtor(raw.message ?? "host call failed") as Error & { code?: string; retriable?: boolean; issues?: unknown[] };
    error.code = raw.code;
    if (typeof raw.code === "string") apply(hostCodeSet, hostCodes, [error, raw.code]);
    if (raw.retriable === false) error.retriable = false;
    if (isArray(raw.issues)) error.issues = raw.issues;
    return error;
  }

  /** Sends a log line; the result waits for it, since the host forgets a run once it ended. */
  function sendLog(runId: string, line: string): void {
    try {
      const delivered = apply(then, apply(hostApply, host, [undefined, ["log", line], COPY_IN_OUT]), [undefined, () => undefined]);
      const pending = apply(mapGet, logsInFlight, [runId]) as Array<Promise<unknown>> | undefined;
      if (pending) pending[pending.length] = delivered as Promise<unknown>;
    } catch {
      // The line is lost; the run goes on.
    }
  }

  function makeLogger(request: RunRequestJson, budget: RunBudget) {
    const runId = request.runId;
    const write = (level: string) => (fieldsOrMsg?: unknown, msg?: unknown) => {
      // One line past the limit still goes, so the host can say the rest was dropped.
      if (budget.logLines > budget.maxLogLines || budget.logBytes > budget.maxLogBytes) return;
      const base = { runId, eventId: request.meta.eventId, event: request.meta.eventName, level };
      const message = typeof fieldsOrMsg === "string" ? fieldsOrMsg : typeof msg === "string" ? msg : undefined;
      let line: string;
      try {
        line = stringify({ ...base, msg: message, fields: typeof fieldsOrMsg === "string" ? undefined : toPlainFields(fieldsOrMsg) });
      } catch {
        line = stringify({ ...base, msg: message, fields: { unserializable: true } });
      }
      if (line.length > MAX_LOG_LINE_CHARS) {
        line = stringify({ ...base, msg: message === undefined ? undefined : message.slice(0, 1024), fields: { truncated: true, chars: line.length } });
      }
      budget.logLines++;
      budget.logBytes += line.length;
      sendLog(runId, line);
    };
    return freeze({ debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") });
  }

  // --- ctx.oktell (see core/integrations/oktell/methods.ts for what each does; the host checks every argument) ---
  const OKTELL_METHOD_NAMES = [
    "setUserState", "getUserState", "getLineState", "getCurrentUserFullInfo", "callCenterEnter", "callCenterExit", "callCenterIsInside",
    "setBusyInExternalTask", "freeBusyInExternalTask", "checkBusyInExternalTask", "setTaskActive", "setConfirmUsage", "confirmResult",
  ] as const;
  function makeOktell(runId: string, budget: RunBudget) {
    const methods: Record<string, (user: unknown, argument?: unknown) => Promise<unknown>> = {};
    for (let i = 0; i < OKTELL_METHOD_NAMES.length; i++) {
      const name = OKTELL_METHOD_NAMES[i]!;
      methods[name] = (user: unknown, argument?: unknown) => callHost("oktell", runId, [name, user, argument === undefined ? null : argument], budget);
    }
    return freeze(methods);
  }
  // --- end ctx.oktell ---

  function makeContext(request: RunRequestJson) {
    const runId = request.runId;
    const limits = request.limits ?? {};
    const budget: RunBudget = {
      logLines: 0,
      logBytes: 0,
      emits: 0,
      maxLogLines: limits.maxLogLinesPerRun ?? Infinity,
      maxLogBytes: limits.maxLogBytesPerRun ?? Infinity,
      maxEmits: limits.maxEmitsPerRun ?? Infinity,
      hostCalls: 0,
      maxHostCalls: limits.maxHostCallsInFlight ?? 64,
      queue: new MapCtor<number, () => void>(),
      queueHead: 0,
      queueTail: 0,
    };
    const log = makeLogger(request, budget);
    const timers: TimerRun = { runId, ended: false, timers: new MapCtor(), armedFor: undefined, log: () => undefined };
    apply(mapSet, liveRuns, [runId, { timers, budget, log }]);
    currentRun = timers;
    return freeze({
      event: freeze({
        id: request.meta.eventId,
        name: request.meta.eventName,
        receivedAt: new Date(request.meta.receivedAt).toISOString(),
        attempt: request.meta.attempt,
        source: freeze(request.meta.source === undefined ? { channel: "http" } : { ...request.meta.source }),
      }),
      log,
      secrets,
      kv: freeze({
        get: (key: string) => callHost("kv.get", runId, [key], budget),
        set: (key: string, value: unknown) => apply(then, callHost("kv.set", runId, [key, value === undefined ? null : value], budget), [() => undefined]) as Promise<void>,
        delete: (key: string) => callHost("kv.delete", runId, [key], budget),
        list: (prefix = "", limit = 100) => callHost("kv.list", runId, [prefix, limit], budget),
      }),
      // --- ctx.oktell: the telephony workstation's methods, one host call "oktell" [method, user, argument] ---
      oktell: makeOktell(runId, budget),
      // --- end ctx.oktell ---
      emit: (name: string, payload: unknown, options?: unknown) => {
        if (++budget.emits > budget.maxEmits) {
          return PromiseCtor.reject(hostError({ code: "HOOKD_RUN_EMIT_LIMIT", message: `run emitted more than ${budget.maxEmits} events`, retriable: false }));
        }
        // Options ({ delay } or { at }, a Date crossing as its ISO string) are the daemon's to check.
        return callHost("emit", runId, options === undefined ? [name, payload] : [name, payload, options], budget);
      },
      fetch: async (input: unknown, init?: unknown) => {
        // ---- web platform (issue 20): a Request or a URL in, a real Response out (fetch-api.ts).
        const { url, init: sent, signal } = await webApi.fetch().hostRequest(input, init);
        signal?.throwIfAborted();
        const call = callHost("fetch", runId, [url, sent], budget);
        const aborted =
          signal === undefined
            ? call
            : new PromiseCtor<unknown>((resolve, reject) => {
                signal.addEventListener("abort", () => reject(signal.reason), { once: true });
                apply(then, call, [resolve, reject]);
              });
        return webApi.fetch().hostResponse((await aborted) as HostFetchReply, url);
        // ---- end web platform
      },
    });
  }

  // Log lines of a run still on their way to the host. The run's result waits for them: the host
  // forgets a run once it has its result, and a line landing after that would be dropped.
  const logsInFlight = new MapCtor<string, Array<Promise<unknown>>>();

  async function dispatch(requestJson: string): Promise<string> {
    const request = parse(requestJson) as RunRequestJson;
    apply(mapSet, logsInFlight, [request.runId, []]);
    try {
      const ctx = makeContext(request);
      if (request.kind === "event") {
        const scheduled = apply(mapGet, schedules, [request.name]) as { fn: AnyHandler } | undefined;
        const list = scheduled !== undefined ? [scheduled.fn] : (apply(mapGet, handlers, [request.name]) as AnyHandler[] | undefined);
        // Replies are written by hand from strings, as in describeFailure: no toJSON can forge them.
        if (!list) return `{"ok":false,"error":{"code":"HOOKD_RUN_NO_HANDLER","message":${stringify(`no handler for ${request.name}`)}}}`;
        // Several on() for one event run in declaration order, as one run.
        for (let i = 0; i < list.length; i++) {
          const handler = list[i]!;
          await handler(request.payload, ctx);
        }
      } else {
        const entry = apply(mapGet, actions, [request.name]) as { input?: SafeParseSchema; fn: AnyHandler } | undefined;
        if (!entry) return `{"ok":false,"error":{"code":"HOOKD_RUN_NO_HANDLER","message":${stringify(`no action ${request.name}`)}}}`;
        let input = request.payload;
        if (entry.input) {
          const parsed = entry.input.safeParse(input);
          if (!parsed.success) {
            const issues = stringify(plainIssues(parsed.error.issues)) ?? "[]";
            return `{"ok":false,"retriable":false,"error":{"code":"HOOKD_RUN_INPUT_INVALID","message":${stringify(`input of action ${request.name} does not match its schema`)},"issues":${issues}}}`;
          }
          input = parsed.data;
        }
        await entry.fn(input, ctx);
      }
      // A literal: a plugin that replaced toJSON somewhere cannot turn success into anything else.
      return '{"ok":true}';
    } catch (thrown) {
      return describeFailure(thrown);
    } finally {
      // The run's timers go with it: none fires later, into another run or into no run.
      const live = apply(mapGet, liveRuns, [request.runId]) as { timers: TimerRun } | undefined;
      if (live !== undefined) {
        live.timers.ended = true;
        live.timers.timers.clear();
        if (currentRun === live.timers) currentRun = undefined;
      }
      apply(mapDelete, liveRuns, [request.runId]);
      const pending = (apply(mapGet, logsInFlight, [request.runId]) as Array<Promise<unknown>> | undefined) ?? [];
      apply(mapDelete, logsInFlight, [request.runId]);
      await promiseAll(pending);
    }
  }

  /** Called by the host once the plugin's top-level code has run. */
  function finishLoading(): string {
    loading = false;
    // Each action's input as JSON Schema (zod's input side), so the host can refuse a bad manual
    // start before storing it. Coerced fields accept anything here: zod in the isolate decides.
    const actionInputs: Record<string, unknown> = {};
    for (const [name, entry] of arrayFrom(apply(mapKeys, actions, []) as Iterable<string>, (key) => [key, apply(mapGet, actions, [key])] as const)) {
      try {
        const schema = (entry.input as { toJSONSchema?: (params: object) => unknown } | undefined)?.toJSONSchema?.({
          io: "input",
          unrepresentable: "any",
          override: (ctx: { zodSchema?: { _zod?: { def?: { coerce?: boolean } } }; jsonSchema: Record<string, unknown> }) => {
            if (ctx.zodSchema?._zod?.def?.coerce) for (const key of keysOf(ctx.jsonSchema)) delete ctx.jsonSchema[key];
          },
        });
        if (schema !== undefined) actionInputs[name] = schema;
      } catch {
        // Not representable: the isolate's own validation still applies.
      }
    }
    return stringify({
      events: arrayFrom(apply(mapKeys, handlers, []) as Iterable<string>),
      actions: arrayFrom(apply(mapKeys, actions, []) as Iterable<string>),
      schedules: arrayFrom(apply(mapKeys, schedules, []) as Iterable<string>, (key) => {
        const entry = apply(mapGet, schedules, [key]) as { cron: string; tz?: string; catchUp?: string; calendar?: string };
        return { key, cron: entry.cron, tz: entry.tz, catchUp: entry.catchUp, calendar: entry.calendar };
      }),
      options,
      actionInputs,
      flow: objectFrom(arrayFrom(apply(mapKeys, flow, []) as Iterable<string>, (key) => [key, apply(mapGet, flow, [key])] as const)),
    });
  }

  function setSecrets(json: string): void {
    secrets = freeze(parse(json) as Record<string, string | undefined>);
  }

  /** A failed run as the host reads it; never throws, whatever the plugin threw. */
  function describeFailure(thrown: unknown): string {
    try {
      const retriable = !(thrown instanceof NonRetriableError) && (thrown as { retriable?: unknown })?.retriable !== false;
      const hostCode = typeof thrown === "object" && thrown !== null ? (apply(hostCodeGet, hostCodes, [thrown]) as string | undefined) : undefined;
      const error = describeThrown(thrown, hostCode);
      // Written by hand, field by field, from strings: stringify of a whole object would call a
      // toJSON the plugin put on Object.prototype, which could then forge the code. A string
      // primitive's JSON has no such hook.
      const field = (name: string, value: string | undefined) => (value === undefined ? "" : `,${stringify(name)}:${stringify(value)}`);
      return `{"ok":false,"retriable":${retriable ? "true" : "false"},"error":{"code":${stringify(error.code)}${field("message", error.message)}${field("name", error.name)}${field("stack", error.stack)}${field("pluginCode", error.pluginCode)}}}`;
    } catch {
      return '{"ok":false,"error":{"code":"HOOKD_RUN_FAILED","message":"the plugin threw a value that cannot be described"}}';
    }
  }

  function plainObject<T extends object>(value: T): T {
    return freeze(assign(create(null) as object, value)) as T;
  }

  // The host reaches these through the returned function; plugin code cannot.
  return assign(dispatch, { finishLoading, setSecrets }) as (requestJson: string) => Promise<string>;
}

interface RunBudget {
  logLines: number;
  logBytes: number;
  emits: number;
  maxLogLines: number;
  maxLogBytes: number;
  maxEmits: number;
  /** Host calls of the run in flight, their limit, and the calls waiting for a slot (in order). */
  hostCalls: number;
  maxHostCalls: number;
  queue: Map<number, () => void>;
  queueHead: number;
  queueTail: number;
}

/**
 * Stack traces are formatted here, as V8 would, and plugins cannot install their own formatter:
 * the structured frames it would receive expose receivers and functions of the whole stack.
 */
function lockStackFormatting(): void {
  const frameText = (frame: unknown) => `    at ${String(frame)}`;
  const format = (error: unknown, frames: unknown[]): string => {
    let header: string;
    try {
      const { name, message } = error as { name?: unknown; message?: unknown };
      const title = name === undefined ? "Error" : String(name);
      const text = message === undefined ? "" : String(message);
      header = text === "" ? title : title === "" ? text : `${title}: ${text}`;
    } catch {
      header = "Error";
    }
    const lines = [header];
    for (let i = 0; i < frames.length; i++) lines[lines.length] = frameText(frames[i]);
    return lines.join("\n");
  };
  Object.defineProperty(Error, "prepareStackTrace", { value: format, writable: false, enumerable: false, configurable: false });
}

/**
 * A few APIs have V8 call back into the isolate later, from a task of its own: a finalizer, the
 * end of an asynchronous WebAssembly compile, Atomics.waitAsync. Such a callback runs outside
 * any run (no watchdog sees it), and isolated-vm cannot always stop one: disposing an isolate
 * busy in one can abort the whole process. So they go: finalizers and waitAsync are removed,
 * and WebAssembly compiles synchronously, inside the run that asked for it.
 */
function closeDetachedCallbacks(): void {
  const global = globalThis as Record<string, unknown>;
  delete global.FinalizationRegistry;
  delete (Atomics as unknown as Record<string, unknown>).waitAsync;
  const wasm = (global.WebAssembly ?? {}) as Record<string, unknown>;
  const Module = wasm.Module as new (bytes: unknown) => object;
  const Instance = wasm.Instance as new (module: object, imports?: unknown) => object;
  const compile = (bytes: unknown) => new Promise((resolve) => resolve(new Module(bytes)));
  const instantiate = (source: unknown, imports?: unknown) =>
    new Promise((resolve) => {
      if (source instanceof Module) return resolve(new Instance(source, imports));
      const module = new Module(source);
      resolve({ module, instance: new Instance(module, imports) });
    });
  Object.defineProperty(wasm, "compile", { value: compile, writable: false, configurable: false });
  Object.defineProperty(wasm, "instantiate", { value: instantiate, writable: false, configurable: false });
  delete wasm.compileStreaming;
  delete wasm.instantiateStreaming;
}

function toPlainFields(value: unknown): Record<string, unknown> | undefined {
  if (typeof value !== "object" || value === null) return value === undefined ? undefined : { value };
  // A logged error is the plugin's words, not a run's outcome: its own code stays its code there.
  if (value instanceof Error) return { err: describeThrown(value, ownCode(value)) };
  return value as Record<string, unknown>;
}

function plainIssues(issues: unknown): unknown[] {
  try {
    return JSON.parse(JSON.stringify(issues)) as unknown[];
  } catch {
    return [];
  }
}

function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error);
  } catch {
    return "host call failed";
  }
}

/**
 * A thrown value as the host reads it. `hostCode` is the code of an error the runtime made from a
 * host reply (see `hostCodes`); anything else fails as HOOKD_RUN_FAILED, and a `code` the plugin
 * set itself travels as `pluginCode`, so authors still see it.
 */
function describeThrown(thrown: unknown, hostCode?: string): { code: string; message: string; stack?: string; name?: string; pluginCode?: string } {
  const own = ownCode(thrown);
  const pluginCode = own !== undefined && own !== hostCode ? own : undefined;
  if (thrown instanceof Error) {
    const described = { code: hostCode ?? "HOOKD_RUN_FAILED", name: String(thrown.name), message: String(thrown.message), stack: typeof thrown.stack === "string" ? thrown.stack : undefined };
    return pluginCode === undefined ? described : { ...described, pluginCode };
  }
  let message: string;
  try {
    message = typeof thrown === "string" ? thrown : JSON.stringify(thrown) ?? String(thrown);
  } catch {
    message = String(thrown);
  }
  return { code: "HOOKD_RUN_FAILED", message: `non-Error thrown: ${message}`, ...(pluginCode === undefined ? {} : { pluginCode }) };
}

/** The `code` a plugin put on what it threw, cut to a sane length; undefined when there is none. */
function ownCode(thrown: unknown): string | undefined {
  try {
    const code = typeof thrown === "object" && thrown !== null ? (thrown as { code?: unknown }).code : undefined;
    return typeof code === "string" ? code.slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}
