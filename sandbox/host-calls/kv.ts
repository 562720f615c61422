/**
 * ctx.kv: keys are short strings, values fit the plugin's `kvMaxValueBytes`, a list asks for at
 * most 1,000 keys. The key-count limit goes with the write (the store counts and writes in one
 * step: a count kept here, apart from the write, let 500 concurrent sets through a limit of 50).
 */
import { HookdError } from "../contract/errors.ts";
import type { HostCallSpec } from "./spec.ts";

const MAX_KEY_CHARS = 512;
const MAX_LIST = 1000;
const DEFAULT_LIST = 100;

export const kvGet: HostCallSpec<"kv.get"> = {
  check: (raw) => [checkKey(raw[0])],
};

export const kvSet: HostCallSpec<"kv.set"> = {
  check: (raw, { limits }) => {
    const key = checkKey(raw[0]);
    const value = raw[1] ?? null;
    const bytes = Buffer.byteLength(JSON.stringify(value));
    if (bytes > limits.kvMaxValueBytes) throw new HookdError("HOOKD_KV_LIMIT", [`value of ${key} is ${bytes} bytes, more than the limit of ${limits.kvMaxValueBytes}`]);
    return [key, value];
  },
};

export const kvDelete: HostCallSpec<"kv.delete"> = {
  check: (raw) => [checkKey(raw[0])],
};

export const kvList: HostCallSpec<"kv.list"> = {
  check: (raw) => [typeof raw[0] === "string" ? raw[0] : "", Math.min(Math.max(Number(raw[1]) || DEFAULT_LIST, 1), MAX_LIST)],
};

function checkKey(key: unknown): string {
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_CHARS) {
    throw new HookdError("HOOKD_KV_INVALID", [`keys are non-empty strings of at most ${MAX_KEY_CHARS} characters`]);
  }
  return key;
}
