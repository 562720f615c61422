/**
 * The in-isolate runtime. esbuild bundles this file once into a script that runs in every
 * plugin isolate before the plugin's own code. It receives the host's bridge Reference and
 * keeps it in this closure: plugin code only ever sees plain functions (`on`, `action`,
 * `plugin`, and each run's `ctx`), never an isolated-vm Reference or a host object.
 *
 * Everything crossing the boundary is a JSON string: payloads are parsed here into objects the
 * isolate owns, so nothing a plugin does to them (prototype pollution included) reaches the host.
 */

/** The part of isolated-vm's Reference this runtime uses. */
interface HostReference {
  apply(receiver: undefined, args: unknown[], options: object): Promise<unknown>;
  applyIgnored(receiver: undefined, args: unknown[], options: object): void;
}

type AnyHandler = (payload: unknown, ctx: unknown) => unknown;

interface RunRequestJson {
  runId: string;
  kind: "event" | "action";
  name: string;
  payload: unknown;
  meta: { eventId: string; eventName: string; receivedAt: number; attempt: number; depth: number };
}

interface SafeParseSchema {
  safeParse(value: unknown): { success: true; data: unknown } | { success: false; error: { issues: unknown[] } };
}

const COPY_IN = { arguments: { copy: true } } as const;
const COPY_IN_OUT = { arguments: { copy: true }, result: { promise: true, copy: true } } as const;

/** Installs the runtime; returns the dispatcher the host calls for every run. */
export function install(host: HostReference): (requestJson: string) => Promise<string> {
  const handlers = new Map<string, AnyHandler[]>();
  const actions = new Map<string, { input?: SafeParseSchema; fn: AnyHandler }>();
  let options: Record<string, unknown> = {};
  let loading = true;
  // Only the secrets the plugin declared, handed over by the host after it loaded.
  let secrets: Readonly<Record<string, string | undefined>> = Object.freeze({});

  class NonRetriableError extends Error {
    readonly retriable = false;
    constructor(message: string) {
      super(message);
      this.name = "NonRetriableError";
    }
  }

  function assertLoading(what: string): void {
    if (!loading) throw new Error(`${what} must be called at the top level of the plugin, not inside a handler`);
  }

  function on(name: unknown, fn: unknown): void {
    assertLoading("on()");
    if (typeof name !== "string" || name.length === 0) throw new TypeError("on(name, handler): name must be an event name");
    if (typeof fn !== "function") throw new TypeError(`on("${name}", handler): handler must be a function`);
    const list = handlers.get(name) ?? [];
    list.push(fn as AnyHandler);
    handlers.set(name, list);
  }

  function action(name: unknown, spec: unknown, fn?: unknown): void {
    assertLoading("action()");
    if (typeof name !== "string" || name.length === 0) throw new TypeError("action(name, ...): name must be a string");
    const handler = typeof spec === "function" ? spec : fn;
    if (typeof handler !== "function") throw new TypeError(`action("${name}"): missing the handler function`);
    if (actions.has(name)) throw new Error(`action("${name}") is declared twice`);
    const input = typeof spec === "object" && spec !== null ? (spec as { input?: SafeParseSchema }).input : undefined;
    actions.set(name, { input, fn: handler as AnyHandler });
  }

  function plugin(declared: unknown): unknown {
    assertLoading("plugin()");
    if (typeof declared !== "object" || declared === null) throw new TypeError("plugin({...}) takes an options object");
    options = JSON.parse(JSON.stringify(declared)) as Record<string, unknown>;
    return declared;
  }

  const api = Object.freeze({ on, action, plugin, NonRetriableError });
  Object.defineProperty(globalThis, "__hookd", { value: api, enumerable: false, writable: false, configurable: false });

  function callHost(op: string, runId: string, args: unknown[]): Promise<unknown> {
    return host.apply(undefined, [op, JSON.stringify({ runId, args })], COPY_IN_OUT).then((reply) => {
      const parsed = JSON.parse(reply as string) as { ok: boolean; value?: unknown; error?: { code: string; message: string } };
      if (parsed.ok) return parsed.value;
      const error = new Error(parsed.error?.message ?? "host call failed") as Error & { code?: string };
      error.code = parsed.error?.code;
      throw error;
    });
  }

  function makeLogger(runId: string, request: RunRequestJson) {
    const write = (level: string) => (fieldsOrMsg?: unknown, msg?: unknown) => {
      const record =
        typeof fieldsOrMsg === "string"
          ? { level, msg: fieldsOrMsg }
          : { level, msg: typeof msg === "string" ? msg : undefined, fields: toPlainFields(fieldsOrMsg) };
      let line: string;
      try {
        line = JSON.stringify({ runId, eventId: request.meta.eventId, event: request.meta.eventName, ...record });
      } catch {
        line = JSON.stringify({ runId, eventId: request.meta.eventId, event: request.meta.eventName, level, msg: record.msg, fields: { unserializable: true } });
      }
      host.applyIgnored(undefined, ["log", line], COPY_IN);
    };
    return Object.freeze({ debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") });
  }

  function makeContext(request: RunRequestJson) {
    const runId = request.runId;
    return Object.freeze({
      event: Object.freeze({
        id: request.meta.eventId,
        name: request.meta.eventName,
        receivedAt: new Date(request.meta.receivedAt).toISOString(),
        attempt: request.meta.attempt,
      }),
      log: makeLogger(runId, request),
      secrets,
      kv: Object.freeze({
        get: (key: string) => callHost("kv.get", runId, [key]),
        set: (key: string, value: unknown) => callHost("kv.set", runId, [key, value === undefined ? null : value]).then(() => undefined),
        delete: (key: string) => callHost("kv.delete", runId, [key]) as Promise<boolean>,
        list: (prefix = "", limit = 100) => callHost("kv.list", runId, [prefix, limit]) as Promise<string[]>,
      }),
      emit: (name: string, payload: unknown) => callHost("emit", runId, [name, payload]) as Promise<{ id: string }>,
      fetch: async (url: string, init?: { method?: string; headers?: Record<string, string>; body?: string }) => {
        const reply = (await callHost("fetch", runId, [String(url), init ?? {}])) as {
          status: number;
          statusText: string;
          headers: Record<string, string>;
          body: string;
          url: string;
        };
        return Object.freeze({
          status: reply.status,
          statusText: reply.statusText,
          ok: reply.status >= 200 && reply.status < 300,
          url: reply.url,
          headers: Object.freeze({ ...reply.headers, get: (name: string) => reply.headers[name.toLowerCase()] ?? null }),
          text: async () => reply.body,
          json: async () => JSON.parse(reply.body) as unknown,
        });
      },
    });
  }

  async function dispatch(requestJson: string): Promise<string> {
    const request = JSON.parse(requestJson) as RunRequestJson;
    try {
      const ctx = makeContext(request);
      if (request.kind === "event") {
        const list = handlers.get(request.name);
        if (!list) return JSON.stringify({ ok: false, error: { code: "HOOKD_RUN_NO_HANDLER", message: `no handler for ${request.name}` } });
        // Several on() for one event run in declaration order, as one run.
        for (const fn of list) await fn(request.payload, ctx);
      } else {
        const entry = actions.get(request.name);
        if (!entry) return JSON.stringify({ ok: false, error: { code: "HOOKD_RUN_NO_HANDLER", message: `no action ${request.name}` } });
        let input = request.payload;
        if (entry.input) {
          const parsed = entry.input.safeParse(input);
          if (!parsed.success) {
            return JSON.stringify({
              ok: false,
              retriable: false,
              error: { code: "HOOKD_RUN_INPUT_INVALID", message: `input of action ${request.name} does not match its schema`, issues: parsed.error.issues },
            });
          }
          input = parsed.data;
        }
        await entry.fn(input, ctx);
      }
      return JSON.stringify({ ok: true });
    } catch (thrown) {
      return JSON.stringify({ ok: false, retriable: !(thrown instanceof NonRetriableError) && (thrown as { retriable?: unknown })?.retriable !== false, error: describeThrown(thrown) });
    }
  }

  /** Called by the host once the plugin's top-level code has run. */
  function finishLoading(): string {
    loading = false;
    return JSON.stringify({ events: [...handlers.keys()], actions: [...actions.keys()], options });
  }

  function setSecrets(json: string): void {
    secrets = Object.freeze(JSON.parse(json) as Record<string, string | undefined>);
  }

  // The host reaches these through the returned function; plugin code cannot.
  return Object.assign(dispatch, { finishLoading, setSecrets }) as (requestJson: string) => Promise<string>;
}

function toPlainFields(value: unknown): Record<string, unknown> | undefined {
  if (typeof value !== "object" || value === null) return value === undefined ? undefined : { value };
  if (value instanceof Error) return { err: describeThrown(value) };
  return value as Record<string, unknown>;
}

function describeThrown(thrown: unknown): { code: string; message: string; stack?: string; name?: string } {
  if (thrown instanceof Error) {
    const code = typeof (thrown as { code?: unknown }).code === "string" ? (thrown as unknown as { code: string }).code : "HOOKD_RUN_FAILED";
    return { code, name: thrown.name, message: thrown.message, stack: typeof thrown.stack === "string" ? thrown.stack : undefined };
  }
  let message: string;
  try {
    message = typeof thrown === "string" ? thrown : JSON.stringify(thrown) ?? String(thrown);
  } catch {
    message = String(thrown);
  }
  return { code: "HOOKD_RUN_FAILED", message: `non-Error thrown: ${message}` };
}
