/**
 * How a run's failure is named. Limits the host enforces (wall time, CPU, memory) have stable
 * codes of their own; what plugin code throws is mapped to its TypeScript location and may carry
 * only the codes the host itself hands into isolates, so a plugin cannot pass its own failure off
 * as, say, a sandbox crash. Host errors going into an isolate are reduced to plain data.
 */
import type { HookdErrorCode } from "./contract/errors.ts";
import type { RunError } from "./contract/run.ts";
import type { ResolvedLimits } from "./contract/limits.ts";
import type { PluginSpec } from "./contract/run.ts";
import { errorFromIsolate, type SourceMapper } from "./source-map.ts";

/** Why the host ended a run (or every run) of an isolate. */
export type LimitReason = "timeout" | "cpu" | "memory" | "catastrophic" | "hostCalls";

export function limitError(reason: LimitReason, limits: ResolvedLimits): RunError {
  switch (reason) {
    case "timeout":
      return { code: "HOOKD_RUN_TIMEOUT", message: `run exceeded its wall time of ${limits.timeoutMs} ms` };
    case "cpu":
      return { code: "HOOKD_RUN_CPU", message: `run exceeded its CPU time of ${limits.cpuTimeMs} ms` };
    case "memory":
      return { code: "HOOKD_RUN_MEMORY", message: `run exceeded the isolate memory limit of ${limits.memoryMb} MB` };
    case "hostCalls":
      return { code: "HOOKD_RUN_HOST_CALL_LIMIT", message: "run had more host calls in flight at once than sandbox.maxHostCallsInFlight allows (its runtime was bypassed)" };
    case "catastrophic":
      return {
        code: "HOOKD_RUN_MEMORY",
        message: `run exhausted the isolate memory limit of ${limits.memoryMb} MB in a way V8 cannot recover from; the isolate was abandoned and the sandbox process replaced`,
      };
  }
}

/**
 * Codes that may come back from the isolate: the host's own replies and the runtime's checks.
 * HOOKD_RUN_ABORTED is not among them: only the host aborts runs, and never says so through an
 * isolate, so a reply carrying it is forged (the circuit breaker does not count that code).
 */
const CODES_A_PLUGIN_MAY_CARRY = new Set<string>([
  "HOOKD_RUN_FAILED",
  "HOOKD_RUN_NO_HANDLER",
  "HOOKD_RUN_INPUT_INVALID",
  "HOOKD_RUN_EMIT_LIMIT",
  "HOOKD_RUN_WASM_MEMORY",
  "HOOKD_FETCH_NOT_ALLOWED",
  "HOOKD_FETCH_FAILED",
  "HOOKD_FETCH_TOO_LARGE",
  "HOOKD_FETCH_TIMEOUT",
  "HOOKD_KV_INVALID",
  "HOOKD_KV_LIMIT",
  "HOOKD_EVENT_UNKNOWN",
  // An emit refused by the ingress bounds (server.maxDepth, server.bodyLimit).
  "HOOKD_HTTP_TOO_DEEP",
  "HOOKD_EVENT_TOO_LARGE",
  "HOOKD_EVENT_INVALID",
  "HOOKD_EVENT_EMIT_DEPTH",
  "HOOKD_EVENT_EMIT_BUDGET",
  // ctx.emit's { delay } / { at } refused (core/time/delay.ts).
  "HOOKD_EVENT_DELAY_INVALID",
  "HOOKD_HOST_CALL_UNKNOWN",
  "HOOKD_HOST_CALL_INVALID",
  // --- ctx.oktell (core/integrations/oktell/bridge.ts) ---
  "HOOKD_OKTELL_BAD_ARGUMENT",
  "HOOKD_OKTELL_NOT_DECLARED",
  "HOOKD_OKTELL_UNAVAILABLE",
  "HOOKD_OKTELL_USER_NOT_CONNECTED",
  "HOOKD_OKTELL_COMMAND_TIMEOUT",
  "HOOKD_OKTELL_METHOD_FAILED",
  // --- end ctx.oktell ---
]);

/** Host errors that fail the same way however often they are retried. */
const NOT_RETRIABLE = new Set<string>([
  "HOOKD_FETCH_NOT_ALLOWED",
  "HOOKD_KV_INVALID",
  "HOOKD_KV_LIMIT",
  "HOOKD_EVENT_UNKNOWN",
  // An emit refused by the ingress bounds (server.maxDepth, server.bodyLimit).
  "HOOKD_HTTP_TOO_DEEP",
  "HOOKD_EVENT_TOO_LARGE",
  "HOOKD_EVENT_INVALID",
  "HOOKD_EVENT_DELAY_INVALID",
  "HOOKD_EVENT_EMIT_DEPTH",
  // The root's budget never grows back: a retry would be refused the same way.
  "HOOKD_EVENT_EMIT_BUDGET",
  "HOOKD_RUN_EMIT_LIMIT",
  "HOOKD_RUN_WASM_MEMORY",
  "HOOKD_HOST_CALL_UNKNOWN",
  "HOOKD_HOST_CALL_INVALID",
  // --- ctx.oktell: a wrong argument or a missing capability stays wrong ---
  "HOOKD_OKTELL_BAD_ARGUMENT",
  "HOOKD_OKTELL_NOT_DECLARED",
  // --- end ctx.oktell ---
]);

/** V8's own RangeErrors for exhausted resources: the run hit a limit, whatever it caught. */
const STACK_OVERFLOW = /Maximum call stack size exceeded/;
const OUT_OF_MEMORY = /Invalid string length|Array buffer allocation failed|Invalid array length|Invalid typed array length|could not allocate memory|Out of memory/i;

/** A failure reported by the runtime (what the plugin threw), located in the plugin's source. */
export function pluginError(raw: unknown, spec: PluginSpec, mapper: SourceMapper, limits: ResolvedLimits): RunError {
  const own = (raw as { pluginCode?: unknown } | undefined)?.pluginCode;
  // The plugin's own `code` stays visible to its author, in a field the host never acts on.
  const mapped = { ...errorFromIsolate(raw, spec, mapper, "HOOKD_RUN_FAILED"), ...(typeof own === "string" ? { pluginCode: own.slice(0, 200) } : {}) };
  const name = (raw as { name?: unknown } | undefined)?.name;
  const message = String((raw as { message?: unknown } | undefined)?.message ?? "");
  if (name === "RangeError" && STACK_OVERFLOW.test(message)) return { ...mapped, code: "HOOKD_RUN_STACK_OVERFLOW" };
  if (name === "RangeError" && OUT_OF_MEMORY.test(message)) {
    return { ...mapped, code: "HOOKD_RUN_MEMORY", message: `${mapped.message} (isolate memory limit ${limits.memoryMb} MB)` };
  }
  if (!CODES_A_PLUGIN_MAY_CARRY.has(mapped.code)) return { ...mapped, code: "HOOKD_RUN_FAILED" };
  return mapped;
}

/** What the isolate learns of a failed host call: code, message, whether to retry. Never a stack. */
export interface PlainHostError {
  code: HookdErrorCode;
  message: string;
  retriable?: false;
  issues?: unknown[];
}

export function plainHostError(error: unknown): PlainHostError {
  const raw = error as { code?: unknown; message?: unknown; issues?: unknown } | undefined;
  const known = typeof raw?.code === "string" && CODES_A_PLUGIN_MAY_CARRY.has(raw.code);
  const code: HookdErrorCode = known ? (raw!.code as HookdErrorCode) : "HOOKD_RUN_FAILED";
  // Any other error (a store failure, a bug) may carry host paths or internals: it goes in as a
  // generic sentence, and the host's own log keeps the details.
  const message = known && typeof raw?.message === "string" ? raw.message : "the host could not complete the call";
  const issues = Array.isArray(raw?.issues) ? plainIssues(raw.issues) : undefined;
  return { code, message, ...(NOT_RETRIABLE.has(code) ? { retriable: false as const } : {}), ...(issues ? { issues } : {}) };
}


function plainIssues(issues: unknown[]): unknown[] | undefined {
  try {
    return JSON.parse(JSON.stringify(issues.slice(0, 50))) as unknown[];
  } catch {
    return undefined;
  }
}
