// `hookd init` as a plugin author uses it: scaffold a project in an empty folder outside this
// repository, install hookd from the working tree (a link; no network), then `hookd check`,
// `hookd types`, `hookd dev` and the project's own tests, run with hookd's own vitest.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, REPO } from "../helpers/daemon.ts";

const VITEST = path.join(REPO, "node_modules/.bin/vitest");

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (bounded), with an environment free of this test run's own vitest. */
function run(command: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Ran> {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: "", NO_COLOR: "1", FORCE_COLOR: "0" };
  for (const key of Object.keys(env)) if (key.startsWith("VITEST") || key === "TEST") delete env[key];
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const hookd = (args: string[], cwd: string) => run(process.execPath, [BIN, ...args], cwd);

// npm, TypeScript and vitest in child processes: slower than a unit test, bounded all the same.
describe("hookd init", { timeout: 120_000 }, () => {
  let root: string;
  let project: string;
  const file = (name: string) => path.join(project, name);
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), "hookd-init-"));
    project = path.join(root, "Sales Hooks");
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("scaffolds a ready project in a new folder, and never overwrites one", async () => {
    const created = await hookd(["init", "Sales Hooks"], root);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(created.stdout).toContain('cd "Sales Hooks"');
    for (const name of [
      "events.config.ts",
      "plugins/deal-alert.ts",
      "plugins/deal-alert.test.ts",
      "tsconfig.json",
      "vitest.config.ts",
      "hookd-env.d.ts",
      "deploy/hookd.service",
      ".gitignore",
      "README.md",
    ]) {
      expect(existsSync(file(name)), name).toBe(true);
    }
    const pkg = JSON.parse(readFileSync(file("package.json"), "utf8"));
    expect(pkg).toMatchObject({
      name: "sales-hooks",
      type: "module",
      scripts: { dev: "hookd dev", check: "hookd check", test: "vitest run", types: "hookd types" },
      dependencies: { hookd: expect.stringMatching(/^\^\d+\.\d+\.\d+$/) },
      devDependencies: { vitest: expect.any(String) },
    });
    expect(readFileSync(file("events.config.ts"), "utf8")).toMatch(/\.\.\.catalog,[\s\S]*"shop\.order\.paid": z\.object/);
    expect(readFileSync(file("hookd-env.d.ts"), "utf8")).toContain('import type config from "./events.config.ts"');
    expect(readFileSync(file("deploy/hookd.service"), "utf8")).toContain(
      "ExecStart=/usr/bin/node /opt/sales-hooks/node_modules/hookd/bin/hookd.js start --config /opt/sales-hooks/events.config.ts",
    );

    const config = readFileSync(file("events.config.ts"), "utf8");
    const again = await hookd(["init", "Sales Hooks"], root);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^HOOKD_INIT_CONFLICT: .*events\.config\.ts/);
    expect(readFileSync(file("events.config.ts"), "utf8")).toBe(config);
  });

  it("installs hookd from the working tree without the network", async () => {
    // The project's devDependencies (vitest, @types/node) would come from the registry; this test
    // runs its tests with hookd's own vitest instead. A registry that cannot answer proves that
    // nothing is fetched.
    const pkg = JSON.parse(readFileSync(file("package.json"), "utf8"));
    delete pkg.devDependencies;
    writeFileSync(file("package.json"), JSON.stringify(pkg, null, 2));
    const installed = await run("npm", ["install", "--offline", "--registry=http://127.0.0.1:9/", "--no-audit", "--no-fund", "--loglevel=error", REPO], project);
    expect(installed.stderr.replace(/^npm warn.*\n/gim, "")).toBe("");
    expect(installed.code).toBe(0);
    expect(realpathSync(file("node_modules/hookd"))).toBe(realpathSync(REPO));
  });

  it("passes hookd check, which lists what the example plugin handles", async () => {
    const checked = await run(file("node_modules/.bin/hookd"), ["check"], project);
    expect(checked.stderr).toBe("");
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/deal-alert\s+on deal\.close, on shop\.order\.paid/);
    expect(checked.stdout).toContain("no problems");
  });

  it("fails hookd check with the file and line of a handler for an event the catalog lacks", async () => {
    writeFileSync(file("plugins/typo.ts"), `import { on } from "hookd";\n\non("deal.closed", () => undefined);\n`);
    try {
      const checked = await run(file("node_modules/.bin/hookd"), ["check"], project);
      expect(checked.code).toBe(1);
      expect(checked.stdout).toMatch(/plugins\/typo\.ts:3:4: HOOKD_PLUGIN_TYPECHECK: TS2345/);
    } finally {
      unlinkSync(file("plugins/typo.ts"));
    }
  });

  it("passes its own tests, which run the example plugin in real isolates", async () => {
    const tested = await run(VITEST, ["run"], project);
    expect(tested.code, tested.stdout + tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/plugins\/deal-alert\.test\.ts \(4 tests\)/);
    expect(tested.stdout).toMatch(/Tests\s+4 passed/);
  });

  it("and those tests fail when the plugin stops doing what they expect", async () => {
    const source = readFileSync(file("plugins/deal-alert.ts"), "utf8");
    writeFileSync(file("plugins/deal-alert.ts"), source.replace("const BIG_DEAL = 10_000;", "const BIG_DEAL = 100_000;"));
    try {
      const tested = await run(VITEST, ["run"], project);
      expect(tested.code).toBe(1);
      expect(tested.stdout + tested.stderr).toMatch(/tells the chat about a big deal/);
    } finally {
      writeFileSync(file("plugins/deal-alert.ts"), source);
    }
  });

  it("writes the editor types with hookd types, and hookd dev keeps them there", async () => {
    unlinkSync(file("hookd-env.d.ts"));
    const typed = await run(file("node_modules/.bin/hookd"), ["types"], project);
    expect(typed.code).toBe(0);
    expect(typed.stdout).toBe("wrote hookd-env.d.ts\n");
    expect(existsSync(file("hookd-env.d.ts"))).toBe(true);

    unlinkSync(file("hookd-env.d.ts"));
    const dev = spawn(file("node_modules/.bin/hookd"), ["dev"], {
      cwd: project,
      env: { ...process.env, NODE_OPTIONS: "", HOOKD_PORT: "0", HOOKD_DATA_DIR: path.join(root, "data") },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => dev.once("exit", resolve));
    try {
      const deadline = Date.now() + 30_000;
      while (!existsSync(file("hookd-env.d.ts"))) {
        if (Date.now() > deadline) throw new Error("hookd dev did not write hookd-env.d.ts");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(readFileSync(file("hookd-env.d.ts"), "utf8")).toContain('import type config from "./events.config.ts"');
    } finally {
      dev.kill("SIGTERM");
      const timer = setTimeout(() => dev.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
  });
});
