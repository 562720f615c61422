/**
 * The sandbox process: runs every plugin isolate, away from the process that accepts and stores
 * events. If an isolate takes V8 down with it, only this process dies; the daemon's supervisor
 * restarts it and reloads the plugins.
 *
 * The out-of-memory paths isolated-vm cannot recover from are caught before they abort the
 * process: the isolate is abandoned (its runs fail with HOOKD_RUN_MEMORY) and the supervisor is
 * asked to replace this process, which keeps finishing the other plugins' runs meanwhile. Such a
 * process cannot exit normally any more (Node waits for the lost isolate's thread), so it ends
 * itself with SIGKILL.
 */
import { fstatSync } from "node:fs";
import { Socket } from "node:net";
import { LineChannel, sandboxCodec } from "./channel.ts";
import { IsolateHost } from "./isolate-host.ts";
import type { PluginFetchReply } from "../core/fetch/policy.ts";
import type { FromSandbox, RunError, ToSandbox } from "./protocol.ts";

if (!isSocket(3)) {
  console.error("sandbox/worker.ts is started by the hookd daemon (with a socket on fd 3), not by hand");
  process.exit(2);
}
const socket = new Socket({ fd: 3, readable: true, writable: true });

/** Set once an isolate was lost: from then on the process ends only by SIGKILL. */
let isolateLost = false;

function exitNow(code: number): never {
  if (isolateLost) process.kill(process.pid, "SIGKILL");
  process.exit(code);
}

const outbox = new LineChannel<ToSandbox, FromSandbox>(
  socket,
  sandboxCodec,
  (message) => handle(message),
  (message, error) => {
    // A result that cannot travel still has to end its run on the daemon's side.
    if (message.t === "result") {
      outbox.send({
        t: "result",
        runId: message.runId,
        outcome: { ok: false, retriable: true, durationMs: message.outcome.durationMs, error: { code: "HOOKD_RUN_FAILED", message: `the run's result could not be sent: ${String(error)}` } },
      });
    }
  },
);
// The runtime comes bundled from the daemon with "init", always the first message.
let receiveRuntime!: (code: string) => void;
const runtimeCode = new Promise<string>((resolve) => (receiveRuntime = resolve));
/** Declared secrets per plugin version, asked for once: an isolate rebuilt after a kill reuses them. */
const secretsAsked = new Map<string, Promise<Record<string, string | undefined>>>();

const hostCalls = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void }>();
let nextCallId = 1;

function callDaemon(plugin: string, op: "kv" | "emit" | "fetch" | "secrets" | "oktell", args: unknown[]): Promise<unknown> {
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
    // The daemon fetches: it knows the run, so only the run and the request travel (its own
    // records say what the plugin may reach), and it aborts the fetch when the run's result arrives.
    fetch: (call) => callDaemon(call.plugin, "fetch", [call.runId, call.url, call.init]) as Promise<PluginFetchReply>,
    // ctx.oktell: the daemon waits for the workstation's answer, bounded by the run it knows.
    oktell: (call) => callDaemon(call.plugin, "oktell", [call.runId, call.method, call.user, call.argument]),
  },
  bootstrapCode: () => runtimeCode,
  secretsFor: (plugin, version, names) => {
    const key = `${plugin}@${version}`;
    let asked = secretsAsked.get(key);
    if (!asked) {
      asked = callDaemon(plugin, "secrets", [version, names]) as Promise<Record<string, string | undefined>>;
      asked.catch(() => secretsAsked.delete(key));
      secretsAsked.set(key, asked);
    }
    return asked;
  },
  onCatastrophe: ({ plugin, version, message }) => {
    isolateLost = true;
    outbox.send({ t: "catastrophe", plugin, version, message });
  },
});

function handle(message: ToSandbox): void {
  switch (message.t) {
    case "init":
      receiveRuntime(message.bootstrapCode);
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
      secretsAsked.delete(`${message.plugin}@${message.version}`);
      void host.unload(message.plugin, message.version).then(() =>
        outbox.send({ t: "unloaded", plugin: message.plugin, version: message.version }),
      );
      return;
    case "heap":
      void host.heapUsage().then(
        (usage) => outbox.send({ t: "heap", requestId: message.requestId, usage }),
        () => outbox.send({ t: "heap", requestId: message.requestId, usage: [] }),
      );
      return;
    case "ping":
      // Answered from the event loop: a loop blocked by anything gives no answer (sandbox/heartbeat.ts).
      outbox.send({ t: "pong", seq: message.seq, rss: process.memoryUsage.rss() });
      return;
    case "run":
      if (TEST_BLOCK_PLUGIN !== undefined && message.request.plugin === TEST_BLOCK_PLUGIN) blockEventLoop();
      void host.run({ ...message.request, payload: undefined }, message.payload).then((outcome) => outbox.send({ t: "result", runId: message.request.runId, outcome }));
      return;
    case "hostReply": {
      const call = hostCalls.get(message.callId);
      hostCalls.delete(message.callId);
      if (!call) return;
      if (message.ok) call.resolve(message.value);
      else call.reject(Object.assign(new Error(message.error.message), { code: message.error.code, issues: message.error.issues }));
      return;
    }
  }
}

/**
 * TEST-ONLY: `HOOKD_TEST_BLOCK_SANDBOX_PLUGIN=<plugin>` in the environment the daemon spawns this
 * process with makes a run of that plugin busy-loop this process's main thread, the way host-side
 * code spinning on a hostile input would; test/sandbox/heartbeat.test.ts stages a hung sandbox
 * process with it. Never set in production; without it nothing here changes.
 */
const TEST_BLOCK_PLUGIN = process.env.HOOKD_TEST_BLOCK_SANDBOX_PLUGIN || undefined;

function blockEventLoop(): void {
  // Bounded, so that a test whose heartbeat failed leaves no spinning process behind for long.
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    // spin: no I/O, no timers, no answers
  }
}

// The daemon closed the socket, or is gone: nothing is left to run for.
socket.on("close", () => {
  if (isolateLost) exitNow(0);
  void host.close().finally(() => exitNow(0));
});
process.on("uncaughtException", (error) => {
  console.error("hookd sandbox process: uncaught exception", error);
  exitNow(70);
});

outbox.send({ t: "ready" });

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

function toRunError(error: unknown): RunError {
  const raw = error as { code?: unknown; message?: unknown; location?: unknown; stack?: unknown };
  return {
    code: typeof raw?.code === "string" ? raw.code : "HOOKD_PLUGIN_LOAD",
    message: typeof raw?.message === "string" ? raw.message : String(error),
    ...(typeof raw?.location === "string" ? { location: raw.location } : {}),
  };
}
