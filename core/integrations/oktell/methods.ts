/**
 * The Oktell client component's methods (seed 002) as commands a workstation bridge performs:
 * for each plugin API name, the component's method, the argument it takes (the seed's
 * `<oktellcommapper>` XML, a boolean, or nothing) and how its answer is read back (the seed's
 * answer document, a boolean, or nothing). Arguments are checked here, in the daemon, whatever
 * the isolate sent: a wrong enum is HOOKD_OKTELL_BAD_ARGUMENT before anything is queued.
 */
import { z } from "zod";
import { HookdError } from "../../../sandbox/contract/errors.ts";
import { EConfirmResult, ELineState, EUserState, nameToCode } from "./catalog.ts";
import { convertProperties } from "./convert.ts";
import type { RawProperty } from "./xml.ts";

/** The component's method names, as the bridge calls them. */
export type OktellComponentMethod =
  | "SetUserState"
  | "GetUserState"
  | "GetLineState"
  | "GetCurrentUserFullInfo"
  | "CallCenter_IsInside"
  | "CallCenter_Enter"
  | "CallCenter_Exit"
  | "CallCenter_SetBusyInExternalTask"
  | "CallCenter_SetFreeInExternalTask"
  | "CallCenter_CheckBusyInExternalTask"
  | "TM_SetTaskActive"
  | "TM_SetConfirmUsage"
  | "TM_SetConfirmResult";

/** What a command carries to the bridge: the method's XML argument, or its boolean one. */
export interface OktellCommandArgument {
  xml: string | null;
  arg: boolean | null;
}

/** How a method answers: an XML document (`<data name=...>`), a boolean, nothing, or an XML document or NULL. */
type AnswerKind = { kind: "xml"; data: string; decode: (properties: RawProperty[]) => unknown; nullable?: unknown } | { kind: "bool" } | { kind: "void" };

interface MethodSpec {
  method: OktellComponentMethod;
  build: (args: unknown[]) => OktellCommandArgument;
  answer: AnswerKind;
}

const NO_ARGUMENT = (): OktellCommandArgument => ({ xml: null, arg: null });

/** The seed's documents are marked version 80710; the bridge passes the text to the component as it is. */
const VERSION = "80710";

/** ctx.oktell's method names -> the component's methods (seed 002). */
export const OKTELL_METHODS = {
  setUserState: {
    method: "SetUserState",
    build: ([options]) => {
      const { state, description, redirect } = check(setUserStateArgs, options, "setUserState");
      const properties = [
        simple("state", nameToCode(EUserState, state)!),
        ...(description === undefined ? [] : [cdata("description", description)]),
        ...(redirect === undefined ? [] : [simple("redirect", redirect ? 1 : 0)]),
      ];
      return { xml: document("userstate", "currentstateinfo", properties), arg: null };
    },
    answer: { kind: "void" },
  },
  getUserState: {
    method: "GetUserState",
    build: NO_ARGUMENT,
    answer: { kind: "xml", data: "userstate", decode: (p) => check(userStateAnswer, setOf(p, "currentstateinfo", { state: EUserState, redirect: "flag" }), "userstate", true) },
  },
  getLineState: {
    method: "GetLineState",
    build: NO_ARGUMENT,
    answer: { kind: "xml", data: "linestate", decode: (p) => check(lineStateAnswer, setOf(p, "currentlinestateinfo", { state: ELineState }), "linestate", true) },
  },
  getCurrentUserFullInfo: {
    method: "GetCurrentUserFullInfo",
    build: NO_ARGUMENT,
    answer: { kind: "xml", data: "userinfo", decode: decodeUserInfo },
  },
  callCenterIsInside: { method: "CallCenter_IsInside", build: NO_ARGUMENT, answer: { kind: "bool" } },
  callCenterEnter: { method: "CallCenter_Enter", build: NO_ARGUMENT, answer: { kind: "bool" } },
  callCenterExit: { method: "CallCenter_Exit", build: NO_ARGUMENT, answer: { kind: "void" } },
  setBusyInExternalTask: { method: "CallCenter_SetBusyInExternalTask", build: NO_ARGUMENT, answer: { kind: "bool" } },
  freeBusyInExternalTask: { method: "CallCenter_SetFreeInExternalTask", build: NO_ARGUMENT, answer: { kind: "bool" } },
  checkBusyInExternalTask: { method: "CallCenter_CheckBusyInExternalTask", build: NO_ARGUMENT, answer: { kind: "bool" } },
  setTaskActive: {
    method: "TM_SetTaskActive",
    build: ([options]) => {
      const { tasktype, idtask, active } = check(setTaskActiveArgs, options, "setTaskActive");
      // The seed: 1 activates, 2 deactivates.
      const properties = [simple("tasktype", tasktype), simple("idtask", idtask), simple("active", active ? 1 : 2)];
      return { xml: document("settaskactive", "params", properties), arg: null };
    },
    // "Returns NULL or the result document": NULL means the server reported nothing against it.
    answer: {
      kind: "xml",
      data: "settaskactiveresult",
      decode: (p) => check(taskActiveAnswer, setOf(p, "settaskactiveresult", { success: "flag" }), "settaskactiveresult", true),
      nullable: { success: true },
    },
  },
  setConfirmUsage: {
    method: "TM_SetConfirmUsage",
    build: ([on]) => ({ xml: null, arg: check(z.boolean(), on, "setConfirmUsage") }),
    answer: { kind: "void" },
  },
  confirmResult: {
    method: "TM_SetConfirmResult",
    build: ([result]) => confirmResultArgument(check(confirmResultArg, result, "confirmResult")),
    answer: { kind: "bool" },
  },
} as const satisfies Record<string, MethodSpec>;

export type OktellApiMethod = keyof typeof OKTELL_METHODS;

/**
 * The protocol as data (`GET /api/oktell`), for relay authors: each ctx.oktell method, the
 * component's method a bridge calls, what the command carries and what the result must be.
 */
export function describeMethods(): Array<{ api: string; method: OktellComponentMethod; argument: string; result: string }> {
  const argumentOf: Partial<Record<OktellComponentMethod, string>> = {
    SetUserState: `xml: <data name="userstate"><property_set name="currentstateinfo"> state, description?, redirect?`,
    TM_SetTaskActive: `xml: <data name="settaskactive"><property_set name="params"> tasktype, idtask, active (1 or 2)`,
    TM_SetConfirmResult: `xml: <data name="confirmresult"><property_set name="confirmresult"> result (0/1/2)`,
    TM_SetConfirmUsage: `arg: true | false`,
  };
  return Object.entries(OKTELL_METHODS).map(([api, spec]) => {
    const answer = (spec as MethodSpec).answer;
    const result =
      answer.kind === "xml"
        ? `its XML document <data name="${answer.data}">${answer.nullable === undefined ? "" : `, or {"returned": null}`}`
        : answer.kind === "bool"
          ? `{"returned": true | false}`
          : `{"returned": null}`;
    return { api, method: spec.method, argument: argumentOf[spec.method] ?? "none (xml: null)", result: `${result}; or {"error": "..."}` };
  });
}

/** The API names, for checks of what the isolate asked for. */
export function isOktellApiMethod(name: unknown): name is OktellApiMethod {
  return typeof name === "string" && Object.hasOwn(OKTELL_METHODS, name);
}

/** The spec of a component method (a stored command names the component's method). */
export function specOfComponentMethod(method: string): MethodSpec | undefined {
  return Object.values(OKTELL_METHODS).find((spec) => spec.method === method) as MethodSpec | undefined;
}

/** TM_SetConfirmResult's XML for a result name (the guard queues it too). */
export function confirmResultArgument(result: "ok" | "skip" | "delete"): OktellCommandArgument {
  return { xml: document("confirmresult", "confirmresult", [simple("result", nameToCode(EConfirmResult, result)!)]), arg: null };
}

const userStateName = z.enum(Object.values(EUserState) as [string, ...string[]]);
const setUserStateArgs = z.strictObject({ state: userStateName, description: z.string().max(4000).optional(), redirect: z.boolean().optional() });
const setTaskActiveArgs = z.strictObject({ tasktype: z.enum(["call", "text"]), idtask: z.string().min(1).max(200), active: z.boolean() });
const confirmResultArg = z.enum(["ok", "skip", "delete"]);

const userStateAnswer = z.looseObject({ state: userStateName, stateCode: z.number().int(), redirect: z.boolean().optional() });
const lineStateAnswer = z.looseObject({ state: z.enum(Object.values(ELineState) as [string, ...string[]]), stateCode: z.number().int() });
const taskActiveAnswer = z.looseObject({ success: z.boolean(), errormessage: z.string().optional() });

/**
 * Checks an argument (or a decoded answer, `answer` true); throws HOOKD_OKTELL_BAD_ARGUMENT
 * (a plugin's mistake) or HOOKD_OKTELL_ANSWER_INVALID (the bridge's) with zod's issues.
 */
function check<T>(schema: z.ZodType<T>, value: unknown, what: string, answer = false): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({ path: issue.path.map(String), code: issue.code, message: issue.message }));
  const detail = issues.map((i) => `${i.path.join(".") || "(value)"}: ${i.message}`).join("; ");
  throw new HookdError(answer ? "HOOKD_OKTELL_ANSWER_INVALID" : "HOOKD_OKTELL_BAD_ARGUMENT", [what, detail], { issues });
}

type Rules = Record<string, "flag" | Readonly<Record<number, string>>>;

/** The converted properties of the named `property_set` (the answer documents keep theirs in one). */
function setOf(properties: RawProperty[], name: string, rules: Rules): Record<string, unknown> {
  const set = properties.find((p): p is Extract<RawProperty, { kind: "set" }> => p.kind === "set" && p.key === name);
  if (!set) throw new HookdError("HOOKD_OKTELL_ANSWER_INVALID", [name, `the document has no <property_set name="${name}">`]);
  const converted = convertProperties(set.properties, Object.fromEntries(Object.entries(rules).map(([k, v]) => [k, v === "flag" ? "flag" : { codes: v }])), undefined);
  // A coded value the document sent without a name attribute still gets its name from the table.
  return converted;
}

/** GetCurrentUserFullInfo: every property kept (names beside codes), except the password, which hookd never stores or shows. */
function decodeUserInfo(properties: RawProperty[]): Record<string, unknown> {
  const info = convertProperties(properties.filter((p) => p.key !== "password"), { isoperator: "flag" }, undefined);
  if (typeof info.id !== "string") throw new HookdError("HOOKD_OKTELL_ANSWER_INVALID", ["userinfo", "the document has no id"]);
  return info;
}

/**
 * The decoded answer of a method, from what its bridge posted: the XML's data elements, or the
 * JSON `returned` value. Throws HOOKD_OKTELL_ANSWER_MISMATCH / _INVALID for what does not fit.
 */
export function decodeAnswer(spec: MethodSpec, answer: { data: Array<{ name: string | undefined; properties: RawProperty[] }> } | { returned: unknown }): unknown {
  const expected = spec.answer;
  if ("data" in answer) {
    if (expected.kind !== "xml") throw new HookdError("HOOKD_OKTELL_ANSWER_MISMATCH", [spec.method, `an XML document`, expected.kind === "bool" ? `{"returned": true|false}` : `{"returned": null}`]);
    const data = answer.data.find((d) => d.name === expected.data);
    if (!data) {
      const got = answer.data.map((d) => `<data name="${d.name ?? ""}">`).join(", ") || "no <data>";
      throw new HookdError("HOOKD_OKTELL_ANSWER_MISMATCH", [spec.method, got, `<data name="${expected.data}">`]);
    }
    return expected.decode(data.properties);
  }
  const returned = answer.returned;
  if (expected.kind === "bool") {
    if (typeof returned !== "boolean") throw new HookdError("HOOKD_OKTELL_ANSWER_MISMATCH", [spec.method, JSON.stringify(returned) ?? "nothing", `{"returned": true|false}`]);
    return returned;
  }
  if (expected.kind === "void") {
    if (returned !== null && returned !== undefined) throw new HookdError("HOOKD_OKTELL_ANSWER_MISMATCH", [spec.method, JSON.stringify(returned), `{"returned": null} (the method returns nothing)`]);
    return null;
  }
  if (returned === null && expected.nullable !== undefined) return expected.nullable;
  throw new HookdError("HOOKD_OKTELL_ANSWER_MISMATCH", [spec.method, JSON.stringify(returned) ?? "nothing", `its XML document (<data name="${expected.data}">)`]);
}

function document(data: string, set: string, properties: string[]): string {
  return [
    `<?xml version="1.0" encoding="utf-16"?>`,
    `<oktellcommapper version="${VERSION}">`,
    `<data name="${data}">`,
    `  <property_set name="${set}">`,
    ...properties.map((p) => `    ${p}`),
    `  </property_set>`,
    `</data>`,
    `</oktellcommapper>`,
  ].join("\n");
}

function simple(key: string, value: string | number): string {
  return `<property_simple key="${key}" value="${escapeAttribute(String(value))}" />`;
}

function cdata(key: string, text: string): string {
  // "]]>" cannot stand inside one CDATA section: it is split across two.
  return `<property_cdata key="${key}"><![CDATA[${text.replace(/]]>/g, "]]]]><![CDATA[>")}]]></property_cdata>`;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
