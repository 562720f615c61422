/**
 * The sandbox process: runs every plugin isolate, away from the process that accepts and stores
 * events. If an isolate takes V8 down with it (some out-of-memory paths abort the process), only
 * this process dies; the daemon's supervisor restarts it and reloads the plugins.
 */
import { MessageBatcher } from "./batching.ts";
import { IsolateHost } from "./isolate-host.ts";
import type { FromSandbox, RunError, ToSandbox } from "./protocol.ts";

if (typeof process.send !== "function") {
  console.error("sandbox/worker.ts is started by the hookd daemon, not by hand");
  process.exit(2);
}

const outbox = new MessageBatcher<FromSandbox>((batch) => {
  if (process.connected) process.send!(batch);
});
const hostCalls = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void }>();
let nextCallId = 1;

function callDaemon(plugin: string, op: "kv" | "emit", args: unknown[]): Promise<unknown> {
  const callId = nextCallId++;
  return new Promise((resolve, reject) => {
    hostCalls.set(callId, { resolve, reject });
    outbox.send({ t: "hostCall", callId, plugin, op, args });
  });
}

const host = new IsolateHost({
  services: {
    log: (record) => outbox.send({ t: "log", record }),
    kv: (plugin, op, args) => callDaemon(plugin, "kv", [op, ...args]),
    emit: (plugin, from, name, payload) => callDaemon(plugin, "emit", [from, name, payload]) as Promise<{ id: string }>,
  },
});

function handle(message: ToSandbox): void {
  switch (message.t) {
    case "init":
      host.setSecrets(message.secrets);
      return;
    case "load": {
      const { plugin, version } = message.spec;
      host.load(message.spec).then(
        (manifest) => outbox.send({ t: "loaded", plugin, version, manifest }),
        (error: unknown) => outbox.send({ t: "loadFailed", plugin, version, error: toRunError(error) }),
      );
      return;
    }
    case "unload":
      void host.unload(message.plugin, message.version).then(() =>
        outbox.send({ t: "unloaded", plugin: message.plugin, version: message.version }),
      );
      return;
    case "run":
      void host.run(message.request).then((outcome) => outbox.send({ t: "result", runId: message.request.runId, outcome }));
      return;
    case "hostReply": {
      const call = hostCalls.get(message.callId);
      hostCalls.delete(message.callId);
      if (!call) return;
      if (message.ok) call.resolve(message.value);
      else call.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
      return;
    }
  }
}

process.on("message", (batch: ToSandbox[]) => {
  for (const message of batch) handle(message);
});
// The daemon is gone: nothing is left to run for.
process.on("disconnect", () => {
  void host.close().finally(() => process.exit(0));
});

outbox.send({ t: "ready" });

function toRunError(error: unknown): RunError {
  const raw = error as { code?: unknown; message?: unknown; location?: unknown; stack?: unknown };
  return {
    code: typeof raw?.code === "string" ? raw.code : "HOOKD_PLUGIN_LOAD",
    message: typeof raw?.message === "string" ? raw.message : String(error),
    ...(typeof raw?.location === "string" ? { location: raw.location } : {}),
  };
}
