/**
 * The host-call table: every call a plugin's `ctx` (and the runtime's web globals) makes out of
 * its isolate, by name, with its arguments and its result. One table types every hop: the
 * in-isolate runtime (sandbox/runtime/bootstrap.ts), the isolate host's checks
 * (sandbox/host-calls/), the sandbox process's channel, the daemon's services
 * (core/host/services.ts) and the test kit's fakes (core/testing/fake-services.ts).
 *
 * Adding a host call: one entry here, one file in sandbox/host-calls/ with its checks and limits
 * (and, for a call the daemon serves, its implementation in core/host/services.ts and the fake).
 */
import type { FetchPolicy, PluginFetchInit, PluginFetchReply } from "./fetch.ts";
import type { PluginLogRecord, RunMeta } from "./run.ts";

/** Calls the daemon serves: the arguments are those the host's checks let through. */
export interface DaemonCalls {
  "kv.get": { args: [key: string]; result: unknown };
  "kv.set": { args: [key: string, value: unknown]; result: void };
  "kv.delete": { args: [key: string]; result: boolean };
  "kv.list": { args: [prefix: string, limit: number]; result: string[] };
  /** `options`: ctx.emit's third argument as the plugin gave it (`{ delay }` or `{ at }`), checked by the daemon. */
  emit: { args: [name: string, payload: unknown, options?: unknown]; result: { id: string } };
  fetch: { args: [url: string, init: PluginFetchInit]; result: PluginFetchReply };
  /** ctx.oktell: a telephony workstation's method, answered when its bridge answers (core/integrations/oktell/bridge.ts checks user and argument). */
  oktell: { args: [method: string, user: unknown, argument: unknown]; result: unknown };
}

/** Calls the isolate host answers itself: bytes travel as base64. */
export interface LocalCalls {
  "crypto.digest": { args: [hash: string, data: string]; result: string };
  "crypto.hmac": { args: [hash: string, key: string, data: string]; result: string };
  "crypto.aesgcm": { args: [op: "encrypt" | "decrypt", key: string, iv: string, additionalData: string, tagBits: number, data: string]; result: string };
}

export type HostCalls = DaemonCalls & LocalCalls;
export type HostCallName = keyof HostCalls;
export type DaemonCallName = keyof DaemonCalls;
export type LocalCallName = keyof LocalCalls;
export type HostCallArgs<K extends HostCallName> = HostCalls[K]["args"];
export type HostCallResult<K extends HostCallName> = HostCalls[K]["result"];

/** The daemon's calls by name (the channel and the daemon check names against it). */
export const DAEMON_CALLS: readonly DaemonCallName[] = ["kv.get", "kv.set", "kv.delete", "kv.list", "emit", "fetch", "oktell"];

export function isDaemonCall(name: unknown): name is DaemonCallName {
  return typeof name === "string" && (DAEMON_CALLS as readonly string[]).includes(name);
}

/**
 * Who makes a call, as the trusted side's own records say: the run it belongs to, the version's
 * limits and fetch policy. Never what the isolate or the sandbox process claims.
 */
export interface HostCaller {
  plugin: string;
  version: number;
  runId: string;
  meta: RunMeta;
  /** The most keys the plugin may hold (`kvMaxKeys`): the store checks it with the write. */
  kvMaxKeys: number;
  /** What the version may fetch, worked out once when it loaded. */
  fetchPolicy: FetchPolicy;
  /** Aborts when the run ends. */
  signal?: AbortSignal | undefined;
}

/** The daemon's side of the table (one implementation in the daemon, one fake in the test kit). */
export type HostServices = {
  /** A plugin's log line, already bounded and attributed by the isolate host. */
  log(record: PluginLogRecord): void;
} & { [K in DaemonCallName]: (caller: HostCaller, ...args: HostCallArgs<K>) => Promise<HostCallResult<K>> };

/** Serves one daemon call by name, with its arguments typed by the table. */
export function serveDaemonCall<K extends DaemonCallName>(services: HostServices, name: K, caller: HostCaller, args: HostCallArgs<K>): Promise<HostCallResult<K>> {
  const serve = services[name] as (caller: HostCaller, ...args: HostCallArgs<K>) => Promise<HostCallResult<K>>;
  return serve(caller, ...args);
}
