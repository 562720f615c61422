import { HookdError } from "../../sandbox/contract/errors.ts";

/** The error of a new key past a plugin's key limit (both stores, and hookd/testing's kv). */
export function kvLimit(maxKeys: number, key: string): HookdError {
  return new HookdError("HOOKD_KV_LIMIT", [`the plugin holds ${maxKeys} keys, its limit: delete some before adding ${key}`]);
}
