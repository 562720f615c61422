/**
 * A manual start (`POST /actions/{name}`, `hookd run`) is checked against the action's input
 * schema before anything is stored, so a typo is a 400 naming the field instead of a dead run.
 * The schema is the JSON Schema the isolate derived from the action's zod input when the
 * plugin's current version loaded (zod's input side: what a caller sends). The isolate still
 * validates with zod itself; this check only has to be no stricter than zod.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { HookdError } from "../../sandbox/contract/errors.ts";

// ajv-formats is CommonJS with `exports.default`; under ESM interop the function may sit one level down.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as typeof addFormatsModule;

// Made at the first action with an input schema, not at every start-up (its formats included),
// for daemons that may have no such action.
let ajv: Ajv2020 | undefined;
function validatorCompiler(): Ajv2020 {
  if (!ajv) {
    ajv = new Ajv2020({ allErrors: true, strict: false, validateSchema: false });
    addFormats(ajv);
  }
  return ajv;
}

/** Compiled per schema object: a reloaded plugin brings a new object, an unchanged one is reused. */
const compiled = new WeakMap<object, ValidateFunction | null>();

export interface InputIssue {
  path: string[];
  code: string;
  message: string;
}

/** Throws HOOKD_RUN_INPUT_INVALID (400) when `input` does not match; no schema, no check. */
export function checkActionInput(action: string, schema: unknown, input: unknown): void {
  const validate = compile(schema);
  if (!validate || validate(input)) return;
  const issues = (validate.errors ?? []).map(toIssue);
  throw new HookdError("HOOKD_RUN_INPUT_INVALID", [action], {
    issues,
    message: `input of action ${action} does not match its schema: ${issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; ")}`,
  });
}

function compile(schema: unknown): ValidateFunction | undefined {
  if (typeof schema !== "object" || schema === null) return undefined;
  if (!compiled.has(schema)) {
    let validate: ValidateFunction | null;
    try {
      validate = validatorCompiler().compile(schema as object);
    } catch {
      // A schema ajv cannot compile leaves the check to the isolate.
      validate = null;
    }
    compiled.set(schema, validate);
  }
  return compiled.get(schema) ?? undefined;
}

/** ajv's error as hookd's issue shape (the one zod issues take in HTTP answers). */
function toIssue(error: ErrorObject): InputIssue {
  const path = error.instancePath.split("/").slice(1).map((segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~"));
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  if (error.keyword === "required" && params.missingProperty !== undefined) {
    return { path: [...path, params.missingProperty], code: "required", message: "required" };
  }
  if (error.keyword === "additionalProperties" && params.additionalProperty !== undefined) {
    return { path: [...path, params.additionalProperty], code: "unrecognized_key", message: "not expected here" };
  }
  return { path, code: error.keyword, message: error.message ?? "invalid" };
}
