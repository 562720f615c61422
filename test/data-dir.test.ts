// The data folder (`--data DIR`, HOOKD_DATA_DIR) is where the store lives, also when the config
// names a relative store file (as the shipped events.config.ts used to); an absolute store url
// and HOOKD_STORE_URL stay where they say.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../core/config/load.ts";
import { TestDaemon, TestProject } from "./helpers/daemon.ts";

const configWithStore = (url: string) => `
import { defineConfig } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({ events: catalog, store: { url: ${JSON.stringify(url)} } });
`;

describe("the data folder decides where the store lives", () => {
  const folders: string[] = [];
  const folder = () => {
    const dir = mkdtempSync(path.join(tmpdir(), "hookd-data-"));
    folders.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  });

  async function storeUrl(url: string, options: { dataDir?: string; env?: NodeJS.ProcessEnv }) {
    const dir = folder();
    const file = path.join(dir, "events.config.ts");
    writeFileSync(file, configWithStore(url));
    return { dir, url: (await loadConfig({ configFile: file, dataDir: options.dataDir, env: options.env ?? {} })).store.url };
  }

  it("a relative sqlite file goes into --data DIR or HOOKD_DATA_DIR; without one it is beside the config", async () => {
    const elsewhere = folder();
    expect((await storeUrl("sqlite:./data/hookd.db", { dataDir: elsewhere })).url).toBe(`sqlite:${path.join(elsewhere, "hookd.db")}`);
    expect((await storeUrl("sqlite:./data/hookd.db", { env: { HOOKD_DATA_DIR: elsewhere } })).url).toBe(`sqlite:${path.join(elsewhere, "hookd.db")}`);
    const plain = await storeUrl("sqlite:./data/hookd.db", {});
    expect(plain.url).toBe(`sqlite:${path.join(plain.dir, "data", "hookd.db")}`);
  });

  it("an absolute store file and HOOKD_STORE_URL stay where they say", async () => {
    const elsewhere = folder();
    expect((await storeUrl("sqlite:/srv/hookd/main.db", { dataDir: elsewhere })).url).toBe("sqlite:/srv/hookd/main.db");
    const fromEnv = await storeUrl("sqlite:./data/hookd.db", { dataDir: elsewhere, env: { HOOKD_STORE_URL: "sqlite:./env.db" } });
    expect(fromEnv.url).toBe(`sqlite:${path.join(fromEnv.dir, "env.db")}`);
  });

  it("hookd start --data DIR with the config's sqlite:./data/hookd.db writes to DIR, not the project's data/", async () => {
    const project = new TestProject({ config: configWithStore("sqlite:./data/hookd.db") });
    const elsewhere = folder();
    const daemon = new TestDaemon(project);
    try {
      await daemon.start({ args: ["--data", elsewhere] });
      expect((await daemon.post("deal.close", { did: 1, autor: 1, summa: "1", status: "won" })).status).toBe(202);
      expect(existsSync(path.join(elsewhere, "hookd.db"))).toBe(true);
      expect(existsSync(path.join(project.dir, "data", "hookd.db"))).toBe(false);
    } finally {
      await daemon.stop();
      project.remove();
    }
  });
});
