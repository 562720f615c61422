/**
 * Every error code hookd can produce, in one place. HTTP answers, logs and run records carry
 * these codes; tests assert codes, never message text. Messages are templates: `%s` is filled
 * from the arguments in order.
 */
const definitions = {
  // configuration
  HOOKD_CONFIG_NOT_FOUND: { status: 500, message: "config file not found: %s" },
  HOOKD_CONFIG_COMPILE: { status: 500, message: "config %s does not compile: %s" },
  HOOKD_CONFIG_EXPORT: { status: 500, message: "config %s must `export default defineConfig({...})`, got %s" },
  HOOKD_CONFIG_INVALID: { status: 500, message: "config %s: %s" },

  // HTTP ingress
  HOOKD_HTTP_UNAUTHORIZED: { status: 401, message: "missing or wrong Authorization: Bearer token" },
  HOOKD_HTTP_NOT_FOUND: { status: 404, message: "no route %s %s" },
  HOOKD_HTTP_BODY_TOO_LARGE: { status: 413, message: "request body is larger than %s bytes" },
  HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: "unsupported content type %s: send application/json, application/x-www-form-urlencoded or multipart/form-data",
  },
  HOOKD_HTTP_FILE_PART: { status: 415, message: "multipart part %s is a file: events take form fields only" },
  HOOKD_HTTP_MALFORMED_BODY: { status: 400, message: "request body could not be parsed: %s" },
  HOOKD_HTTP_BAD_REQUEST: { status: 400, message: "%s" },
  HOOKD_HTTP_TOO_DEEP: { status: 400, message: "%s nests objects or arrays deeper than %s levels (server.maxDepth)" },
  HOOKD_HTTP_SHUTTING_DOWN: { status: 503, message: "hookd is stopping and accepts no new events" },
  HOOKD_HTTP_NOT_READY: { status: 503, message: "hookd is not ready: %s" },

  // events and actions
  HOOKD_EVENT_UNKNOWN: { status: 404, message: "unknown event %s: it is not in the catalog (GET /api/catalog lists them)" },
  HOOKD_EVENT_INVALID: { status: 400, message: "event %s does not match its schema" },
  HOOKD_EVENT_IDEMPOTENCY_CONFLICT: {
    status: 422,
    message: "Idempotency-Key %s was already used for a different body (first event %s)",
  },
  HOOKD_EVENT_TOO_LARGE: { status: 413, message: "event %s is %s bytes as JSON, more than the limit of %s (server.bodyLimit)" },
  HOOKD_EVENT_EMIT_DEPTH: { status: 400, message: "emit chain deeper than %s events: %s is cut to stop an emit loop" },
  HOOKD_EVENT_EMIT_BUDGET: {
    status: 429,
    message: "event %s already caused %s events (delivery.maxDescendants): the emit of %s is refused to stop a fan-out",
  },
  // delayed events (core/time)
  HOOKD_EVENT_DELAY_INVALID: { status: 400, message: "%s: %s" },
  HOOKD_EVENT_NOT_FOUND: { status: 404, message: "no event %s" },
  HOOKD_EVENT_NOT_SCHEDULED: { status: 409, message: "event %s cannot be cancelled: %s" },
  // schedules (core/time)
  HOOKD_SCHEDULE_INVALID: { status: 500, message: "schedule of %s: %s" },
  // Flow control (core/routing/flow-rules.ts): a load error, and why a delivery did not run.
  HOOKD_FLOW_INVALID: { status: 500, message: "flow options of %s: %s" },
  HOOKD_FLOW_RATE_LIMITED: { status: 409, message: "skipped: rate limit of %s runs per %s reached" },
  HOOKD_FLOW_DEBOUNCED: { status: 409, message: "skipped: debounced, event %s came after it" },
  HOOKD_CALENDAR_INVALID: { status: 500, message: "calendar %s: %s" },
  HOOKD_ACTION_UNKNOWN: { status: 404, message: "unknown action %s: no loaded plugin declares it" },
  HOOKD_RUN_NOT_FOUND: { status: 404, message: "no run %s" },
  HOOKD_RUN_NOT_RETRIABLE: { status: 409, message: "run %s is %s: only failed or dead runs can be retried" },
  HOOKD_REPLAY_PLUGIN_UNKNOWN: { status: 404, message: "cannot replay to plugin %s: it is not loaded" },
  HOOKD_REPLAY_NO_TARGETS: { status: 409, message: "nothing handles %s%s now: a replay would run nothing" },

  // the telephony XML ingress (POST /ingest/oktell)
  HOOKD_OKTELL_ENCODING: {
    status: 400,
    message: "unsupported XML encoding %s: send UTF-16 (LE or BE, with or without BOM) or UTF-8",
  },
  HOOKD_OKTELL_MALFORMED: { status: 400, message: "the XML body is not well-formed: %s" },
  HOOKD_OKTELL_NO_EVENT: { status: 400, message: "no <event> in the body: %s" },

  // the telephony workstation bridge (core/integrations/oktell: /oktell/commands, ctx.oktell)
  HOOKD_OKTELL_USER_MISSING: { status: 400, message: "%s needs the workstation's user: ?user=<login> or the x-oktell-user header" },
  HOOKD_OKTELL_USER_INVALID: { status: 400, message: "the workstation user %s is not a login: 1 to 128 characters, no control characters" },
  HOOKD_OKTELL_COMMAND_UNKNOWN: { status: 404, message: "no workstation command %s (GET /api/oktell/commands lists them)" },
  HOOKD_OKTELL_COMMAND_NOT_PENDING: { status: 409, message: "command %s is %s: only a command sent to its bridge and not answered takes a result" },
  HOOKD_OKTELL_COMMAND_EXPIRED: { status: 410, message: "command %s expired (oktell.commandTtlMs) before it was answered" },
  HOOKD_OKTELL_WRONG_USER: { status: 403, message: "command %s is for the bridge of user %s, not of %s" },
  HOOKD_OKTELL_RESULT_INVALID: { status: 400, message: "the result of command %s: %s" },
  HOOKD_OKTELL_ANSWER_MISMATCH: { status: 400, message: "the answer to %s is %s; expected %s" },
  HOOKD_OKTELL_ANSWER_INVALID: { status: 400, message: "the answer document %s does not decode: %s" },
  HOOKD_OKTELL_TOO_MANY_POLLS: { status: 429, message: "%s" },
  HOOKD_OKTELL_BAD_ARGUMENT: { status: 400, message: "ctx.oktell.%s: %s" },
  HOOKD_OKTELL_NOT_DECLARED: { status: 403, message: "plugin %s calls ctx.oktell.%s without declaring plugin({ oktell: true })" },
  HOOKD_OKTELL_USER_NOT_CONNECTED: { status: 503, message: "no workstation bridge of user %s has polled for commands in the last %s s" },
  HOOKD_OKTELL_COMMAND_TIMEOUT: { status: 504, message: "command %s (%s for user %s) was not answered within %s ms" },
  HOOKD_OKTELL_METHOD_FAILED: { status: 502, message: "%s on the workstation of user %s failed: %s" },
  HOOKD_OKTELL_UNAVAILABLE: { status: 503, message: "ctx.oktell is not available here: %s" },

  // outbound webhooks
  HOOKD_WEBHOOK_FAILED: { status: 502, message: "webhook %s %s failed: %s" },
  HOOKD_WEBHOOK_NOT_FOUND: { status: 404, message: "no webhook endpoint %s (GET /api/webhooks lists them)" },
  HOOKD_WEBHOOK_DISABLED: { status: 503, message: "webhook endpoint %s is disabled: %s" },

  // plugins: compile and load
  HOOKD_PLUGIN_COMPILE: { status: 500, message: "plugin %s does not compile: %s" },
  HOOKD_PLUGIN_NODE_BUILTIN: {
    status: 500,
    message: "imports the Node built-in \"%s\": plugins run in an isolate without Node APIs; use ctx.fetch, ctx.kv and ctx.log",
  },
  HOOKD_PLUGIN_LOAD: { status: 500, message: "plugin %s failed while loading: %s" },
  HOOKD_ROUTE_INPUT_MISSING: {
    status: 500,
    message: "routes.%s (on %s, run %s): the input leaves out %s, which the action requires: map it from the event or give a { value }",
  },
  HOOKD_PLUGIN_UNKNOWN_EVENT: { status: 500, message: "plugin %s subscribes to %s, which is not in the catalog" },
  HOOKD_PLUGIN_NOT_LOADED: { status: 503, message: "plugin %s is not loaded" },
  HOOKD_PLUGIN_TYPECHECK: { status: 500, message: "type errors: %s" },
  HOOKD_PLUGIN_OPTIONS_INVALID: { status: 500, message: "plugin({ %s }) is invalid: %s" },
  HOOKD_PLUGIN_LIMIT_ABOVE_CEILING: {
    status: 500,
    message: "plugin %s declares %s: %s, above the ceiling of %s the config sets in %s",
  },
  HOOKD_PLUGIN_PAUSED: { status: 503, message: "plugin %s is paused after %s failed runs in a row; it runs again after %s" },
  HOOKD_PLUGIN_AMBIGUOUS: { status: 500, message: "plugin %s has more than one source (%s): neither is loaded until only one is left" },
  HOOKD_PLUGIN_START_TIMEOUT: { status: 500, message: "plugin %s did not load within %s ms of start-up: hookd is ready without it, the load goes on" },

  // the plugin compiler's containment (core/compile)
  HOOKD_COMPILE_FORBIDDEN_IMPORT: {
    status: 500,
    message: "plugin %s imports %s: a plugin reads only its own file or folder, plugins/lib/, plugins/_* modules and node_modules",
  },
  HOOKD_COMPILE_NOT_A_FILE: { status: 500, message: "plugin %s: %s is not a regular file" },
  HOOKD_COMPILE_TOO_LARGE: { status: 500, message: "plugin %s: a source file is over the limit (plugins.maxSourceBytes, maxBundleBytes, maxNesting): %s" },
  HOOKD_COMPILE_TIMEOUT: { status: 500, message: "plugin %s did not compile within %s ms (plugins.compileTimeoutMs)" },
  HOOKD_COMPILE_CRASHED: { status: 500, message: "the compiler crashed on plugin %s (it was restarted; other plugins compile on): %s" },

  // runs (a handler, route or action executing in the sandbox)
  HOOKD_RUN_FAILED: { status: 500, message: "%s" },
  HOOKD_RUN_TIMEOUT: { status: 500, message: "run exceeded its wall time of %s ms" },
  HOOKD_RUN_MEMORY: { status: 500, message: "run exceeded the isolate memory limit of %s MB" },
  HOOKD_RUN_ABORTED: { status: 500, message: "run aborted: %s" },
  HOOKD_RUN_NEIGHBOUR_LIMIT: {
    status: 503,
    message: "the isolate was disposed because run %s of the same plugin exceeded a limit (%s): this run goes again, its attempt given back",
  },
  HOOKD_RUN_CPU: { status: 500, message: "run exceeded its CPU time of %s ms" },
  HOOKD_RUN_STACK_OVERFLOW: { status: 500, message: "run exceeded the call stack size: %s" },
  HOOKD_RUN_EMIT_LIMIT: { status: 429, message: "run emitted more than %s events" },
  HOOKD_RUN_LOG_LIMIT: { status: 429, message: "run wrote more than %s of logs: further lines are dropped" },
  HOOKD_RUN_WASM_MEMORY: { status: 500, message: "WebAssembly memory refused: %s" },
  HOOKD_RUN_HOST_CALL_LIMIT: { status: 429, message: "run had more than %s host calls in flight at once" },
  HOOKD_RUN_NO_HANDLER: { status: 500, message: "plugin %s has no handler for %s" },
  HOOKD_RUN_INPUT_INVALID: { status: 400, message: "input of action %s does not match its schema" },

  // the host API a plugin calls through ctx
  HOOKD_FETCH_NOT_ALLOWED: { status: 403, message: "fetch to %s is not allowed: the plugin declares %s" },
  HOOKD_FETCH_FAILED: { status: 502, message: "fetch to %s failed: %s" },
  HOOKD_FETCH_TOO_LARGE: { status: 502, message: "fetch to %s: response exceeds the limit of %s bytes" },
  HOOKD_FETCH_TIMEOUT: { status: 504, message: "fetch to %s: no complete answer within %s ms" },
  HOOKD_KV_INVALID: { status: 400, message: "kv: %s" },
  HOOKD_KV_LIMIT: { status: 413, message: "kv: %s" },
  HOOKD_HOST_CALL_UNKNOWN: { status: 400, message: "unknown host call %s" },
  HOOKD_HOST_CALL_INVALID: { status: 400, message: "host call %s refused: %s" },

  // the sandbox process
  HOOKD_SANDBOX_CRASHED: { status: 500, message: "the sandbox process exited (%s) while the run was in flight" },
  HOOKD_SANDBOX_UNAVAILABLE: { status: 503, message: "the sandbox process is not running" },
  HOOKD_SANDBOX_UNRESPONSIVE: {
    status: 500,
    message: "the sandbox process stopped answering (%s heartbeats of %s ms missed) while the run was in flight; it was restarted",
  },
  HOOKD_SANDBOX_MEMORY: { status: 500, message: "the sandbox process uses %s MB, above sandbox.processMemoryMb (%s MB): it is replaced" },
  HOOKD_SANDBOX_WALL_UNAVAILABLE: { status: 500, message: "sandbox.wall is required but the kernel wall cannot be built: %s" },

  // store
  HOOKD_STORE_UNSUPPORTED: { status: 500, message: "unsupported store url %s: use sqlite:<path> or postgres://..." },
  HOOKD_STORE_UNREADABLE: { status: 500, message: "delivery %s: its stored event cannot be handed to a run: %s" },
  HOOKD_STORE_NO_ANSWER: { status: 503, message: "the store gave no answer to %s: %s" },
  HOOKD_STORE_LEASE_LOST: { status: 409, message: "delivery %s: lease lost, a newer attempt owns it" },

  // anything else: a bug in hookd, never the sender's fault
  HOOKD_DAEMON_INTERNAL: { status: 500, message: "internal error: %s" },
  HOOKD_DAEMON_STOP_TIMEOUT: { status: 500, message: "stopping %s did not finish within the stop budget" },

  // CLI
  HOOKD_CLI_USAGE: { status: 400, message: "%s" },
  HOOKD_INIT_CONFLICT: { status: 409, message: "%s already has %s: hookd init writes into an empty folder or one without these files" },
  HOOKD_INIT_PACK: { status: 500, message: "could not pack this hookd (%s) into %s with npm pack: %s" },

  // the plugin authors' test kit (hookd/testing)
  HOOKD_TESTING_NODE_FLAGS: {
    status: 500,
    message: "isolates in this process need node's --no-node-snapshot flag: in vitest.config.ts set test.pool to \"forks\" and test.execArgv to [\"--no-node-snapshot\"]",
  },
  HOOKD_CLI_DAEMON_UNREACHABLE: { status: 503, message: "no hookd daemon answers at %s (%s)" },
} as const satisfies Record<string, { status: number; message: string }>;

export type HookdErrorCode = keyof typeof definitions;

/** The registry itself, for tests and for the documentation of codes. */
export const errorCodes: Readonly<Record<HookdErrorCode, { status: number; message: string }>> = definitions;

export interface HookdErrorOptions {
  cause?: unknown;
  /** Structured details (zod issues, locations) that travel with the error into the HTTP answer. */
  issues?: unknown[];
  /** Overrides the whole message when the template does not fit. */
  message?: string;
}

/** An error with a stable `HOOKD_*` code and the HTTP status it maps to. */
export class HookdError extends Error {
  readonly code: HookdErrorCode;
  readonly statusCode: number;
  readonly issues: unknown[] | undefined;

  constructor(code: HookdErrorCode, args: ReadonlyArray<string | number> = [], options: HookdErrorOptions = {}) {
    super(options.message ?? formatMessage(definitions[code].message, args), { cause: options.cause });
    this.name = "HookdError";
    this.code = code;
    this.statusCode = definitions[code].status;
    this.issues = options.issues;
  }

  /** The JSON body hookd answers with: `{"error": {"code", "message", "issues"?}}`. */
  toJSON(): { error: { code: HookdErrorCode; message: string; issues?: unknown[] } } {
    return {
      error: { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) },
    };
  }
}

export function hookdError(code: HookdErrorCode, ...args: Array<string | number>): HookdError {
  return new HookdError(code, args);
}

export function isHookdError(value: unknown, code?: HookdErrorCode): value is HookdError {
  return value instanceof HookdError && (code === undefined || value.code === code);
}

function formatMessage(template: string, args: ReadonlyArray<string | number>): string {
  let i = 0;
  return template.replace(/%s/g, () => (i < args.length ? String(args[i++]) : "%s"));
}
