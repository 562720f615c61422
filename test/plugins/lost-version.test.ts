/**
 * A version the sandbox lost (it did not load again after a sandbox restart) must not be left
 * "serving": its runs would come back "not loaded" for good. The manager drops it and loads the
 * plugin anew, with backoff, on a real isolate host and a real plugin file.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createLogger } from "../../core/base/log.ts";
import { PluginManager } from "../../core/plugins/manager.ts";
import { IsolateHost } from "../../sandbox/isolate-host.ts";
import { testServices } from "../helpers/services.ts";
import { runRequest } from "../helpers/run-request.ts";
import { waitUntil } from "../helpers/wait.ts";

const PLUGIN = `import { on } from "hookd";
on("test.ping", async (event, ctx) => { ctx.log.info({ n: event.n }, "pinged"); });
`;

describe("a version the sandbox lost", () => {
  let dir: string;
  let host: IsolateHost;
  let manager: PluginManager;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hookd-lost-"));
    writeFileSync(path.join(dir, "pinger.ts"), PLUGIN);
    host = new IsolateHost({
      environmentSecrets: false,
      services: testServices(),
    });
    manager = new PluginManager({
      sandbox: host,
      dir,
      root: dir,
      limits: () => ({ timeoutMs: 5000, memoryMb: 64, maxConcurrentRuns: 4 }),
      catalog: () => ({ "test.ping": z.object({ n: z.number() }) }),
      logger: createLogger({ level: "silent" }),
    });
    const [result] = await manager.loadAll();
    expect(result).toMatchObject({ plugin: "pinger", ok: true });
  });

  afterAll(async () => {
    manager?.stop();
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stops routing runs to it and loads the plugin again until a version serves", async () => {
    const lost = manager.currentVersion("pinger")!;
    // What a sandbox restart that could not load it again leaves behind.
    await host.unload("pinger", lost);
    manager.versionLost("pinger", lost, { code: "HOOKD_RUN_TIMEOUT", message: "top-level code ran out of time" });
    // At once: nothing is routed to the lost version (its runs wait in the store).
    expect(manager.currentVersion("pinger")).toBeUndefined();
    expect(manager.claimKeys()).not.toContain("pinger");
    expect(manager.list().find((p) => p.name === "pinger")?.lastError?.code).toBe("HOOKD_RUN_TIMEOUT");

    const again = await waitUntil(() => {
      const version = manager.currentVersion("pinger");
      return version !== undefined && version > lost ? version : undefined;
    }, { timeoutMs: 60_000, what: "pinger loaded again after its version was lost" });
    expect(manager.claimKeys()).toContain("pinger");
    const outcome = await host.run(runRequest("pinger", "test.ping", { version: again, payload: { n: 1 }, runId: "r1", eventId: "e1" }));
    expect(outcome.ok).toBe(true);
  });
});
