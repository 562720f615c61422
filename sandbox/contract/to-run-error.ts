/**
 * One reading of "something was thrown" as a RunError. Whatever comes back from an isolate, a
 * worker message, a store or a compile may carry any `code`: only the registry's are kept, and
 * the rest become the caller's fallback, so a recorded code is always one the registry explains.
 */
import { errorCodes, type HookdErrorCode } from "./errors.ts";
import type { RunError } from "./run.ts";

/** Whether `code` is one of the registry's. */
export function isErrorCode(code: unknown): code is HookdErrorCode {
  return typeof code === "string" && Object.hasOwn(errorCodes, code);
}

/** A registry code, or `fallback` for anything else. */
export function errorCodeOr(code: unknown, fallback: HookdErrorCode): HookdErrorCode {
  return isErrorCode(code) ? code : fallback;
}

/**
 * `thrown` as a RunError: its code when the registry has it (else `fallback`), its message, and
 * its source location when it carries one (as a `location` string, or in a compile error's first
 * issue).
 */
export function toRunError(thrown: unknown, fallback: HookdErrorCode): RunError {
  const raw = thrown as { code?: unknown; message?: unknown; location?: unknown; issues?: unknown } | undefined;
  const location = typeof raw?.location === "string" ? raw.location : issueLocation(raw?.issues);
  return {
    code: errorCodeOr(raw?.code, fallback),
    message: typeof raw?.message === "string" ? raw.message : String(thrown),
    ...(location ? { location } : {}),
  };
}

function issueLocation(issues: unknown): string | undefined {
  const first = Array.isArray(issues) ? (issues[0] as { file?: unknown; line?: unknown; column?: unknown } | undefined) : undefined;
  return typeof first?.file === "string" && first.file ? `${first.file}:${String(first.line)}:${String(first.column)}` : undefined;
}
