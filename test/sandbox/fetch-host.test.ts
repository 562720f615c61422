// ctx.fetch from the real sandbox process: the process forwards it as a host call and the daemon
// performs it, under the plugin's patterns and limits as the daemon recorded them, and aborts it
// when the run ends. The sandbox process itself carries no network code at all.
import { createServer, type IncomingMessage, type Server } from "node:http";
import path from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../../core/compile/compile-plugin.ts";
import { FetchService } from "../../core/fetch/fetch-service.ts";
import type { FetchCall } from "../../sandbox/contract/fetch.ts";
import type { RunOutcome } from "../../core/store/types.ts";
import type { PluginLogRecord, PluginSpec, RunRequest } from "../../sandbox/contract/run.ts";
import { testServices } from "../helpers/services.ts";
import type { SandboxProcess } from "../../sandbox/sandbox-process.ts";
import { SandboxSupervisor } from "../../sandbox/supervisor.ts";
import { FIXTURES, REPO } from "../helpers/daemon.ts";
import { runRequest } from "../helpers/run-request.ts";

const DIR = path.join(FIXTURES, "plugins", "fetch-daemon");
const LIMITS = { memoryMb: 64, timeoutMs: 10_000, maxConcurrentRuns: 4 };

describe("ctx.fetch in the daemon", () => {
  let server: Server;
  let localUrl = "";
  let sandbox: SandboxSupervisor;
  const logs: PluginLogRecord[] = [];
  const calls: FetchCall[] = [];
  /** The /hang request the local server holds, once it arrived. */
  let hangArrived!: (request: IncomingMessage) => void;
  const hang = new Promise<IncomingMessage>((resolve) => (hangArrived = resolve));
  let forgedWhileInFlight: Promise<unknown> | undefined;
  let runs = 0;

  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url === "/hang") return hangArrived(request); // never answered
      response.end(`page ${request.url}`);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    localUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const fetchService = new FetchService({ allowHosts: () => [new URL(localUrl).host] });
    sandbox = new SandboxSupervisor({
      secrets: { LOCAL_URL: localUrl },
      services: testServices({
        log: (record) => logs.push(record),
        kv: async (_op, caller, args) => {
          if (args[0] !== "hang-arrived") return undefined;
          await hang;
          // While forgetful's run is in flight: a fetch that names it, claimed for another plugin.
          forgedWhileInFlight = serveFetch("caller", [currentRunId(caller.plugin), `${localUrl}/ok/forged`, {}]);
          forgedWhileInFlight.catch(() => undefined);
          return "yes";
        },
        fetch: (caller, url, init) => {
          const call: FetchCall = { plugin: caller.plugin, runId: caller.runId, url, init, policy: caller.fetchPolicy, signal: caller.signal };
          calls.push(call);
          return fetchService.fetch(call);
        },
      }),
    });
    await sandbox.start();
    for (const name of ["caller", "forgetful"]) await sandbox.load(await specOf(name));
  }, 60_000);

  afterAll(async () => {
    await sandbox?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  const inFlight = new Map<string, string>();
  function currentRunId(plugin: string): string {
    return inFlight.get(plugin)!;
  }

  function process(): SandboxProcess {
    return (sandbox as unknown as { current: SandboxProcess }).current;
  }

  /** What the process would do with a host call the sandbox sent (the channel, minus the wire). */
  /** What the daemon's side does with a fetch host call the sandbox process sends: [runId, url, init]. */
  function serveFetch(plugin: string, [runId, ...args]: unknown[]): Promise<unknown> {
    type Served = { serveHostCall: (name: string, plugin: string, runId: unknown, args: unknown[]) => Promise<unknown> };
    return (async () => (process() as unknown as Served).serveHostCall("fetch", plugin, runId, args))();
  }

  function run(plugin: string, event: string): Promise<RunOutcome> {
    const runId = `run-${++runs}`;
    inFlight.set(plugin, runId);
    return sandbox.run(runRequest(plugin, event, { runId, eventId: `event-${runs}` }));
  }

  it("performs a plugin's fetch in the daemon, under the patterns and limits it holds for that version", async () => {
    const outcome = await run("caller", "t.call");
    expect(outcome, JSON.stringify(outcome)).toMatchObject({ ok: true });
    expect(logs.find((l) => l.msg === "called")?.fields).toEqual({ status: 200, body: "page /ok/1" });
    const call = calls.find((c) => c.plugin === "caller")!;
    expect(call).toMatchObject({ runId: `run-${runs}`, url: `${localUrl}/ok/1` });
    // From the spec the daemon sent and the manifest the load reported; nothing else travelled.
    expect(call.policy).toEqual({ patterns: ["http://127.0.0.1:*/ok/*"], secretNames: ["LOCAL_URL"], maxResponseBytes: 4096, timeoutMs: 1234 });
  });

  it("refuses a fetch the sandbox process claims for a run it was not sent, or for another plugin's run", async () => {
    await expect(serveFetch("caller", ["run-never-sent", `${localUrl}/ok/2`, {}])).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    await expect(serveFetch("caller", [`run-${runs}`, `${localUrl}/ok/3`, {}])).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
    expect(calls.some((c) => c.url.includes("/ok/2") || c.url.includes("/ok/3"))).toBe(false);
  });

  it("aborts a fetch when its run ends, long before the fetch's own time limit", async () => {
    const outcome = await run("forgetful", "t.forget");
    const ended = performance.now();
    expect(outcome, JSON.stringify(outcome)).toMatchObject({ ok: true });
    const request = await hang;
    if (!request.socket.destroyed) await new Promise((resolve) => request.socket.once("close", resolve));
    // The fetch's own limit is the run's 10 s; the run's end closed it at once.
    expect(performance.now() - ended).toBeLessThan(5000);
    await expect(forgedWhileInFlight).rejects.toMatchObject({ code: "HOOKD_FETCH_NOT_ALLOWED" });
  });

  it("leaves every network module out of the sandbox process", async () => {
    const bundle = await build({
      entryPoints: [path.join(REPO, "sandbox/worker.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.some((file) => file.includes("sandbox/isolate-host.ts"))).toBe(true);
    expect(inputs.filter((file) => /core\/fetch\/(guarded-transport|plugin-fetch|fetch-service)\.ts$/.test(file))).toEqual([]);
    const modules = Object.values(bundle.metafile.inputs).flatMap((input) => input.imports.map((imported) => imported.path));
    expect(modules.filter((name) => /^(node:)?(http|https|http2|dns|tls|dgram)$|^undici/.test(name))).toEqual([]);
  });
});

async function specOf(name: string): Promise<PluginSpec> {
  const compiled = await compilePlugin(path.join(DIR, `${name}.ts`), { root: FIXTURES });
  return { plugin: name, version: 1, file: `plugins/${name}.ts`, code: compiled.code, sourceMap: compiled.sourceMap, limits: LIMITS };
}
