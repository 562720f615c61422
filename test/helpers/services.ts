/**
 * Host services for tests that drive the sandbox directly (an IsolateHost or a sandbox process
 * without a daemon): the host-call table's daemon side with quiet defaults, and the calls a
 * test cares about replaced. `kv` serves all four kv calls with one function, by operation.
 */
import type { HostCaller, HostServices } from "../../sandbox/contract/host-calls.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { PluginLogRecord } from "../../sandbox/contract/run.ts";

export type KvOp = "get" | "set" | "delete" | "list";

export interface TestServicesOptions extends Partial<Omit<HostServices, "log">> {
  log?: (record: PluginLogRecord) => void;
  kv?: (op: KvOp, caller: HostCaller, args: unknown[]) => Promise<unknown>;
}

export function testServices(options: TestServicesOptions = {}): HostServices {
  const { kv, log, ...calls } = options;
  const kvCall = (op: KvOp, fallback: unknown) => (caller: HostCaller, ...args: unknown[]) => (kv ? kv(op, caller, args) : Promise.resolve(fallback));
  return {
    log: log ?? (() => undefined),
    "kv.get": kvCall("get", null) as HostServices["kv.get"],
    "kv.set": kvCall("set", undefined) as HostServices["kv.set"],
    "kv.delete": kvCall("delete", false) as HostServices["kv.delete"],
    "kv.list": kvCall("list", []) as HostServices["kv.list"],
    emit: async () => ({ id: "emitted" }),
    fetch: async () => ({ status: 200, statusText: "OK", headers: {}, body: "", url: "" }),
    oktell: async () => {
      throw new HookdError("HOOKD_OKTELL_UNAVAILABLE", ["no workstation bridge serves this host"]);
    },
    ...calls,
  };
}

/** `kv` for testServices that keeps each plugin's ctx.kv.set values in `stored` (key `plugin:key`) and reads nothing back. */
export function storingKv(stored: Map<string, unknown>): NonNullable<TestServicesOptions["kv"]> {
  return async (op, caller, args) => {
    if (op === "set") stored.set(`${caller.plugin}:${String(args[0])}`, args[1]);
    return op === "list" ? [] : null;
  };
}
