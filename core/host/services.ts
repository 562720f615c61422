/**
 * The daemon's side of the host-call table (sandbox/contract/host-calls.ts): what a plugin's
 * ctx reaches once the sandbox checked the call. The caller is the trusted side's record of the
 * run (plugin, run meta, limits, fetch policy), never what the isolate said of itself.
 */
import type { HostServices } from "../../sandbox/contract/host-calls.ts";
import type { FetchService } from "../fetch/fetch-service.ts";
import type { EventIntake } from "../ingress/intake.ts";
import type { Logger } from "../base/log.ts";
import type { OktellBridge } from "../integrations/oktell/bridge.ts";
import type { Store } from "../store/types.ts";
import type { Calendar } from "../time/calendar.ts";
import { deliverAtFromOptions } from "../time/delay.ts";

export interface DaemonServicesOptions {
  store: Store;
  /** The intake, built after the sandbox that these services serve. */
  intake: () => Pick<EventIntake, "accept">;
  fetchService: FetchService;
  /** The daemon's log, component "plugin". */
  pluginLog: Logger;
  /** The config's business-hours calendars by name, for ctx.emit's `within`. */
  calendars: (name: string) => Calendar | undefined;
  /** The telephony workstation bridge (core/integrations/oktell/), built after the sandbox. */
  oktell: () => Pick<OktellBridge, "call">;
}

export function daemonServices({ store, intake, fetchService, pluginLog, calendars, oktell }: DaemonServicesOptions): HostServices {
  return {
    log: (record) => {
      const fields = { ...record.fields, plugin: record.plugin, event: record.event, eventId: record.eventId, runId: record.runId };
      pluginLog[record.level](fields, record.msg);
    },
    "kv.get": (caller, key) => store.kvGet(caller.plugin, key),
    // The key limit goes with the write: the store counts and writes in one step.
    "kv.set": (caller, key, value) => store.kvSet(caller.plugin, key, value, { maxKeys: caller.kvMaxKeys }),
    "kv.delete": (caller, key) => store.kvDelete(caller.plugin, key),
    "kv.list": (caller, prefix, limit) => store.kvList(caller.plugin, prefix, limit),
    emit: async (caller, name, payload, options) => {
      // ctx.emit(name, payload, { delay } | { at }): checked before anything is stored.
      const deliverAt = deliverAtFromOptions(options, Date.now(), calendars);
      const { id } = await intake().accept({ name, body: payload, source: "emit", parent: { eventId: caller.meta.eventId, depth: caller.meta.depth }, deliverAt });
      return { id };
    },
    fetch: (caller, url, init) => fetchService.fetch({ plugin: caller.plugin, runId: caller.runId, url, init, policy: caller.fetchPolicy, signal: caller.signal }),
    // ctx.oktell: the bridge checks the capability, the user and the argument, and waits for the answer.
    oktell: (caller, method, user, argument) => oktell().call({ plugin: caller.plugin, runId: caller.runId, method, user, argument, signal: caller.signal }),
  };
}
