// `hookd init` as a plugin author uses it: scaffold a project in an empty folder outside this
// repository, install hookd the way the project says (the packed tarball init put in vendor/,
// not this working tree; no network), then `hookd check`, `hookd types`, `hookd dev` and the
// project's own tests, run with hookd's own vitest, all of it from the installed package.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertFreshBuild, BIN, REPO } from "../helpers/daemon.ts";
import { processTree as processTreeOf, runProcess, type Ran } from "../helpers/run.ts";
import { waitUntil } from "../helpers/wait.ts";

const HOOKD_PACKAGE = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { name: string; version: string; bin: unknown; engines: unknown; dependencies: Record<string, string> };
const TARBALL = `vendor/${HOOKD_PACKAGE.name}-${HOOKD_PACKAGE.version}.tgz`;

/**
 * A lockfile for the project: hookd from its tarball, hookd's dependencies at the versions this
 * repository is locked to. `npm ci --offline` then takes them from npm's cache, so the install
 * needs no registry, and the tarball is unpacked as npm would unpack it for any user.
 */
function writeLockfile(project: string, name: string): void {
  const repoLock = JSON.parse(readFileSync(path.join(REPO, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
  const packages: Record<string, unknown> = {
    "": { name, dependencies: { hookd: `file:${TARBALL}` } },
    "node_modules/hookd": {
      name: HOOKD_PACKAGE.name,
      version: HOOKD_PACKAGE.version,
      resolved: `file:${TARBALL}`,
      integrity: `sha512-${createHash("sha512").update(readFileSync(path.join(project, TARBALL))).digest("base64")}`,
      dependencies: HOOKD_PACKAGE.dependencies,
      bin: HOOKD_PACKAGE.bin,
      engines: HOOKD_PACKAGE.engines,
    },
  };
  for (const [key, entry] of Object.entries(repoLock.packages)) if (key.startsWith("node_modules/") && !entry.dev) packages[key] = entry;
  writeFileSync(path.join(project, "package-lock.json"), JSON.stringify({ name, lockfileVersion: 3, requires: true, packages }, null, 2));
}

/** The command lines of a process and all its descendants. */
function processTree(pid: number): string[] {
  return processTreeOf(pid).map((member) => member.cmd);
}

/** Every file under a folder, relative to it. */
function filesUnder(dir: string, prefix = ""): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(dir, path.join(prefix, entry.name)) : [path.join(prefix, entry.name)],
  );
}

const VITEST = path.join(REPO, "node_modules/.bin/vitest");

/** Runs a command to its end (bounded), with an environment free of this test run's own vitest. */
function run(command: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Ran> {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: "", NO_COLOR: "1", FORCE_COLOR: "0" };
  for (const key of Object.keys(env)) if (key.startsWith("VITEST") || key === "TEST") delete env[key];
  return runProcess(command, args, { cwd, env, timeoutMs });
}

const hookd = (args: string[], cwd: string) => run(process.execPath, [BIN, ...args], cwd);

// npm, TypeScript and vitest in child processes: slower than a unit test, bounded all the same.
describe("hookd init", { timeout: 120_000 }, () => {
  let root: string;
  let project: string;
  const file = (name: string) => path.join(project, name);
  beforeAll(() => {
    // hookd init runs bin/hookd.js, which runs dist/: it must be the build of these sources.
    assertFreshBuild();
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
      "hookd-globals.d.ts",
      "plugins/tsconfig.json",
      "deploy/hookd.service",
      ".gitignore",
      "README.md",
      TARBALL,
    ]) {
      expect(existsSync(file(name)), name).toBe(true);
    }
    const pkg = JSON.parse(readFileSync(file("package.json"), "utf8"));
    expect(pkg).toMatchObject({
      name: "sales-hooks",
      type: "module",
      scripts: { dev: "hookd dev", check: "hookd check", test: "vitest run", types: "hookd types" },
      // The package is hookd-daemon; until it is on npm the project depends on the packed copy.
      dependencies: { hookd: `file:${TARBALL}` },
      devDependencies: { vitest: expect.any(String) },
      engines: { node: ">=24" },
    });
    // The tarball holds the compiled build, the CLI, the templates and the types; no sources, no tests.
    const packed = execFileSync("tar", ["-tzf", file(TARBALL)], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const name of [
      "package/package.json",
      "package/README.md",
      "package/bin/hookd.js",
      "package/dist/core/cli.js",
      "package/dist/sandbox/worker.js",
      "package/dist/sandbox/runtime/bootstrap.bundle.js",
      "package/dist/sandbox/runtime/api.d.ts",
      "package/dist/core/testing/index.d.ts",
      "package/dist/core/console/assets/index.html",
      "package/templates/project/events.config.ts",
    ]) {
      expect(packed, name).toContain(name);
    }
    expect(packed.filter((name) => /^package\/(test|bench|core|sandbox|scripts|plugins)\//.test(name) || name.endsWith(".ts") && !name.endsWith(".d.ts") && !name.startsWith("package/templates/"))).toEqual([]);
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

  it("installs hookd from the packed tarball, without the network", async () => {
    // The project's devDependencies (vitest, @types/node) would come from the registry; this test
    // runs its tests with hookd's own vitest instead. --offline proves that nothing is fetched.
    const pkg = JSON.parse(readFileSync(file("package.json"), "utf8"));
    delete pkg.devDependencies;
    writeFileSync(file("package.json"), JSON.stringify(pkg, null, 2));
    writeLockfile(project, pkg.name);
    const installed = await run("npm", ["ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"], project);
    expect(installed.stderr.replace(/^npm warn.*\n/gim, "")).toBe("");
    expect(installed.code).toBe(0);
    // A copy unpacked from the tarball, under the alias: not a link to this working tree.
    expect(lstatSync(file("node_modules/hookd")).isSymbolicLink()).toBe(false);
    expect(JSON.parse(readFileSync(file("node_modules/hookd/package.json"), "utf8"))).toMatchObject({ name: "hookd-daemon", version: HOOKD_PACKAGE.version });
    const installedFiles = filesUnder(file("node_modules/hookd"));
    expect(installedFiles).toContain(path.join("dist", "core", "cli.js"));
    expect(installedFiles.filter((name) => name.startsWith("test") || name.startsWith("core"))).toEqual([]);
    // No TypeScript loader anywhere in the project: what runs below runs compiled JavaScript.
    expect(existsSync(file("node_modules/tsx"))).toBe(false);
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
    expect(typed.stdout).toBe("wrote hookd-env.d.ts, hookd-globals.d.ts, plugins/tsconfig.json\n");
    expect(existsSync(file("hookd-env.d.ts"))).toBe(true);

    unlinkSync(file("hookd-env.d.ts"));
    const dev = spawn(file("node_modules/.bin/hookd"), ["dev"], {
      cwd: project,
      env: { ...process.env, NODE_OPTIONS: "", HOOKD_PORT: "0", HOOKD_DATA_DIR: path.join(root, "data") },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => dev.once("exit", resolve));
    try {
      await waitUntil(() => existsSync(file("hookd-env.d.ts")), { timeoutMs: 30_000, intervalMs: 50, what: "hookd dev to write hookd-env.d.ts" });
      expect(readFileSync(file("hookd-env.d.ts"), "utf8")).toContain('import type config from "./events.config.ts"');

      // The running hookd, its sandbox process included, is the installed package's JavaScript,
      // with no TypeScript loader on any command line (and none installed to load in-process).
      const tree = await waitUntil(
        () => {
          const found = processTree(dev.pid!);
          return found.some((cmd) => cmd.includes("dist/sandbox/worker.js")) && found;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: () => `a sandbox process under hookd dev: ${JSON.stringify(processTree(dev.pid!))}` },
      );
      expect(tree.find((cmd) => cmd.includes("dist/sandbox/worker.js"))).toContain(path.join(project, "node_modules/hookd/dist/sandbox/worker.js"));
      expect(tree.filter((cmd) => /tsx/.test(cmd))).toEqual([]);
    } finally {
      dev.kill("SIGTERM");
      const timer = setTimeout(() => dev.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
  });
});
