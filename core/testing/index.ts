/**
 * `hookd/testing`: test a plugin in a real isolate with the real limits, from vitest.
 *
 *   import { loadPlugin } from "hookd/testing";
 *
 *   const plugin = await loadPlugin("plugins/deal-alert.ts", { secrets: { CHAT_URL: "https://chat.example.com/hook" } });
 *   plugin.fetch.respond("https://chat.example.com/*", { status: 200 });
 *   const run = await plugin.send("deal.close", { did: 1, autor: 2, summa: "10.00", status: "won" });
 *   expect(run.ok).toBe(true);
 *   expect(run.fetches[0]?.url).toBe("https://chat.example.com/hook");
 *
 * Isolates need node's --no-node-snapshot flag: run vitest with `pool: "forks"` and
 * `execArgv: ["--no-node-snapshot"]` (the project `hookd init` writes does).
 */
export { loadPlugin, PluginHarness, type EmittedEvent, type LoadPluginOptions, type LogEntry, type RunReport, type SendOptions } from "./harness.ts";
export { FakeNetwork, type FakeReply, type FakeResponse, type OutboundCall, type RespondOptions } from "./fake-network.ts";
export { MemoryKv, type KvWrite } from "./memory-kv.ts";
export { FakeWorkstations, type WorkstationAnswer, type WorkstationCall } from "./fake-workstations.ts";
