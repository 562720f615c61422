// events.config.ts is bundled with esbuild and works from any folder; bad configs name the key and file.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../core/config/load.ts";
import { HookdError } from "../sandbox/contract/errors.ts";

const folders: string[] = [];
function project(source: string, name = "events.config.ts"): string {
  const dir = mkdtempSync(path.join(tmpdir(), "hookd-config-"));
  folders.push(dir);
  writeFileSync(path.join(dir, name), source);
  return path.join(dir, name);
}

async function loadError(file: string, env: NodeJS.ProcessEnv = {}): Promise<HookdError> {
  try {
    await loadConfig({ configFile: file, env });
  } catch (error) {
    expect(error).toBeInstanceOf(HookdError);
    return error as HookdError;
  }
  throw new Error("expected loadConfig to fail");
}

afterEach(() => {
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("loadConfig", () => {
  it("loads a config outside the repository, with hookd/config, hookd/catalog and its own imports", async () => {
    const file = project(`
      import { defineConfig, z } from "hookd/config";
      import { catalog } from "hookd/catalog";
      import { extra } from "./extra.ts";
      export default defineConfig({ events: { ...catalog, ...extra }, server: { port: 9999 } });
    `);
    writeFileSync(path.join(path.dirname(file), "extra.ts"), `import { z } from "zod"; export const extra = { "shop.paid": z.object({ total: z.number() }) };`);
    const config = await loadConfig({ configFile: file, env: {} });
    expect(Object.keys(config.events)).toContain("deal.close");
    expect(config.events["shop.paid"]!.safeParse({ total: 3 }).success).toBe(true);
    expect(config.server).toMatchObject({ host: "127.0.0.1", port: 9999, bodyLimit: 1024 * 1024 });
    expect(config.plugins.dir).toBe(path.join(path.dirname(file), "plugins"));
    expect(config.store.url).toBe(`sqlite:${path.join(path.dirname(file), "data", "hookd.db")}`);
    expect(config.inputs).toEqual(expect.arrayContaining([file, path.join(path.dirname(file), "extra.ts")]));
  });

  it("lets environment variables override settings", async () => {
    const file = project(`import { defineConfig, z } from "hookd/config"; export default defineConfig({ events: {} });`);
    const config = await loadConfig({
      configFile: file,
      env: { HOOKD_PORT: "1234", HOOKD_HOST: "0.0.0.0", HOOKD_TOKEN: "t", HOOKD_DATA_DIR: "/var/lib/x", HOOKD_PLUGINS_DIR: "/srv/plugins", HOOKD_LOG_LEVEL: "warn" },
    });
    expect(config.server).toMatchObject({ port: 1234, host: "0.0.0.0", token: "t" });
    expect(config.plugins.dir).toBe("/srv/plugins");
    expect(config.store.url).toBe("sqlite:/var/lib/x/hookd.db");
    expect(config.log.level).toBe("warn");
  });

  it("names the key and the file of an invalid setting", async () => {
    const file = project(`import { defineConfig } from "hookd/config"; export default { events: {}, server: { port: "eighty" }, sandbox: { memoryMb: 1 } };`);
    const error = await loadError(file);
    expect(error.code).toBe("HOOKD_CONFIG_INVALID");
    expect(error.message).toContain(file);
    expect(error.message).toContain("server.port");
    expect(error.message).toContain("sandbox.memoryMb");
  });

  it("rejects an event that is not a zod schema, and routes to unknown events", async () => {
    const notSchema = await loadError(project(`export default { events: { "a.b": { type: "object" } } };`));
    expect(notSchema.code).toBe("HOOKD_CONFIG_INVALID");
    expect(notSchema.message).toContain("events.a.b");
    const route = await loadError(project(`import { z } from "hookd/config"; export default { events: { "a.b": z.object({}) }, routes: [{ on: "a.c", run: "x" }] };`));
    expect(route.message).toContain("routes.0.on");
  });

  it("a route input path the event schema does not have is a config error at load", async () => {
    const events = `{ "a.b": z.object({ userId: z.string(), client: z.object({ id: z.number() }), meta: z.record(z.string(), z.unknown()) }), "a.free": z.looseObject({}) }`;
    const bad = await loadError(project(`import { z } from "hookd/config"; export default { events: ${events}, routes: [{ on: "a.b", run: "x", input: { operator: "userid", client: "client.name" } }] };`));
    expect(bad.code).toBe("HOOKD_CONFIG_INVALID");
    expect(bad.message).toContain(`routes.0.input.operator: event "a.b" has no field "userid"`);
    expect(bad.message).toContain(`routes.0.input.client: event "a.b" has no field "name"`);
    // Paths that are there, into free-shaped fields, constants, and undescribed events load.
    const ok = project(`import { z } from "hookd/config"; export default { events: ${events}, routes: [
      { on: "a.b", run: "x", input: { operator: "userId", client: "client.id", tag: "meta.anything", fixed: { value: 1 } } },
      { on: "a.free", run: "x", input: { any: "what.ever" } } ] };`);
    await expect(loadConfig({ configFile: ok, env: {} })).resolves.toBeDefined();
  });

  it("the shipped catalog: a route to a CRM or seed 000 field that is not there fails at load", async () => {
    const bad = await loadError(project(`import { catalog } from "hookd/catalog"; export default { events: catalog, routes: [{ on: "user.operator_status.changed", run: "notify-supervisor", input: { operator: "operatorId" } }] };`));
    expect(bad.message).toContain(`has no field "operatorId"`);
    const ok = project(`import { catalog } from "hookd/catalog"; export default { events: catalog, routes: [{ on: "oktell.tminterfaceconfirm", run: "x", input: { task: "idtask" } }, { on: "person.add", run: "x", input: { pid: "pid" } }] };`);
    await expect(loadConfig({ configFile: ok, env: {} })).resolves.toBeDefined();
  });

  it("says what is wrong with a config that does not export an object or does not compile", async () => {
    expect((await loadError(project(`export const config = {};`))).code).toBe("HOOKD_CONFIG_EXPORT");
    const broken = await loadError(project(`export default { events: { ; }`));
    expect(broken.code).toBe("HOOKD_CONFIG_COMPILE");
    expect(broken.message).toMatch(/events\.config\.ts:1:\d+/);
    expect((await loadError(path.join(tmpdir(), "no-such-hookd-config.ts"))).code).toBe("HOOKD_CONFIG_NOT_FOUND");
  });
});
