/**
 * Every host call's checks, by the table's names (sandbox/contract/host-calls.ts). The isolate
 * host runs a call's check before serving it or passing it on; the daemon's side of the sandbox
 * process runs the same check again on what the process sends, which it does not trust.
 */
import { HookdError } from "../contract/errors.ts";
import type { HostCallArgs, HostCallName, HostCallResult } from "../contract/host-calls.ts";
import { aesGcm, digest, hmac } from "./crypto.ts";
import { emit } from "./emit.ts";
import { fetch } from "./fetch.ts";
import { kvDelete, kvGet, kvList, kvSet } from "./kv.ts";
import { oktell } from "./oktell.ts";
import type { CheckContext, HostCallSpec } from "./spec.ts";

export type { CheckContext, HostCallSpec, RunUsage } from "./spec.ts";

const HOST_CALLS: { readonly [K in HostCallName]: HostCallSpec<K> } = {
  "kv.get": kvGet,
  "kv.set": kvSet,
  "kv.delete": kvDelete,
  "kv.list": kvList,
  emit,
  fetch,
  oktell,
  "crypto.digest": digest,
  "crypto.hmac": hmac,
  "crypto.aesgcm": aesGcm,
};

/** A call checked against its spec: its name, typed arguments, and the local answer if the sandbox gives one. */
export interface CheckedCall<K extends HostCallName = HostCallName> {
  name: K;
  args: HostCallArgs<K>;
  serve?: (() => HostCallResult<K>) | undefined;
}

/** The call `name` with its arguments checked; HOOKD_HOST_CALL_UNKNOWN for a name the table lacks. */
export function checkHostCall(name: unknown, raw: readonly unknown[], context: CheckContext): CheckedCall {
  if (typeof name !== "string" || !Object.hasOwn(HOST_CALLS, name)) throw new HookdError("HOOKD_HOST_CALL_UNKNOWN", [String(name)]);
  const spec = HOST_CALLS[name as HostCallName] as HostCallSpec<HostCallName>;
  const args = spec.check(raw, context);
  const local = spec.serve;
  return { name: name as HostCallName, args, serve: local ? () => local(args) : undefined };
}
