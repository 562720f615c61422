/**
 * `plugin.oktell` in the test kit: the operators' telephony workstations, faked. A plugin's
 * ctx.oktell calls are checked as the daemon checks them (the capability, the method, its
 * arguments: the same HOOKD_OKTELL_* codes) and answered at once, with what the test set or
 * else seed 002's answer document for the method, decoded as the daemon decodes a bridge's.
 */
import type { OktellHostCall } from "../integrations/oktell/bridge.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import { checkUser } from "../integrations/oktell/bridge.ts";
import { decodeAnswer, isOktellApiMethod, OKTELL_METHODS, specOfComponentMethod, type OktellApiMethod, type OktellComponentMethod } from "../integrations/oktell/methods.ts";
import { SEED_ANSWERS } from "../integrations/oktell/simulator.ts";
import { parseOktellData } from "../integrations/oktell/xml.ts";

/** One ctx.oktell call, as its workstation's bridge would have received it. */
export interface WorkstationCall {
  user: string;
  /** The ctx.oktell method (`confirmResult`). */
  api: OktellApiMethod;
  /** The component's method (`TM_SetConfirmResult`). */
  method: OktellComponentMethod;
  /** The command's argument: the seed-shaped XML, or the boolean of TM_SetConfirmUsage. */
  xml: string | null;
  arg: boolean | null;
}

/** What a faked workstation answers: the decoded value the plugin gets, or a failure of the method. */
export type WorkstationAnswer = unknown | { error: string };

export class FakeWorkstations {
  /** Every call of every run, in order. */
  readonly calls: WorkstationCall[] = [];
  private readonly answers = new Map<string, WorkstationAnswer | ((call: WorkstationCall) => WorkstationAnswer)>();

  /**
   * Sets what a method answers (for one user, or for all): the value the plugin's call resolves
   * to (`{ state: "usLunch", stateCode: 2 }`), `{ error }` to make it reject with
   * HOOKD_OKTELL_METHOD_FAILED, or a function of the call.
   */
  respond(api: OktellApiMethod, answer: WorkstationAnswer | ((call: WorkstationCall) => WorkstationAnswer), options: { user?: string } = {}): void {
    this.answers.set(`${options.user ?? "*"}\n${api}`, answer);
  }

  /** @internal The host service behind ctx.oktell. */
  async serve(host: OktellHostCall, declared: boolean): Promise<unknown> {
    if (!declared) throw new HookdError("HOOKD_OKTELL_NOT_DECLARED", [host.plugin, host.method]);
    if (!isOktellApiMethod(host.method)) throw new HookdError("HOOKD_OKTELL_BAD_ARGUMENT", [host.method, "no such method"]);
    const api = host.method;
    const user = checkUser(host.user, () => new HookdError("HOOKD_OKTELL_BAD_ARGUMENT", [api, `the user must be a workstation login, got ${JSON.stringify(host.user) ?? "undefined"}`]));
    const spec = OKTELL_METHODS[api];
    const call: WorkstationCall = { user, api, method: spec.method, ...spec.build([host.argument]) };
    this.calls.push(call);
    const set = this.answers.get(`${user}\n${api}`) ?? this.answers.get(`*\n${api}`);
    const answer = typeof set === "function" ? (set as (call: WorkstationCall) => WorkstationAnswer)(call) : set;
    if (answer === undefined) return seedAnswer(spec.method);
    if (typeof answer === "object" && answer !== null && typeof (answer as { error?: unknown }).error === "string" && Object.keys(answer).length === 1) {
      throw new HookdError("HOOKD_OKTELL_METHOD_FAILED", [spec.method, user, (answer as { error: string }).error]);
    }
    return answer;
  }
}

/** Seed 002's answer for a method, decoded as the daemon decodes what a bridge posts. */
function seedAnswer(method: OktellComponentMethod): unknown {
  const seed = SEED_ANSWERS[method];
  const spec = specOfComponentMethod(method)!;
  if ("xml" in seed) return decodeAnswer(spec, { data: parseOktellData(seed.xml) });
  if ("returned" in seed) return decodeAnswer(spec, { returned: seed.returned });
  throw new HookdError("HOOKD_OKTELL_METHOD_FAILED", [method, "(test)", seed.error]);
}
