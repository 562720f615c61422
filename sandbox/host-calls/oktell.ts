/**
 * ctx.oktell: one of the telephony workstation's methods by name, with the operator's login and
 * the method's argument. The daemon (core/integrations/oktell/bridge.ts) checks the plugin's
 * capability, the user and the argument against the method, and waits for the bridge's answer.
 */
import { HookdError } from "../contract/errors.ts";
import type { HostCallSpec } from "./spec.ts";

const MAX_METHOD_CHARS = 64;

export const oktell: HostCallSpec<"oktell"> = {
  check: (raw) => {
    const method = raw[0];
    if (typeof method !== "string" || method.length === 0 || method.length > MAX_METHOD_CHARS) {
      throw new HookdError("HOOKD_OKTELL_BAD_ARGUMENT", ["method", "a ctx.oktell method name"]);
    }
    return [method, raw[1], raw[2] ?? null];
  },
};
