// The compiled build as the daemon runs it: bin/hookd.js and its sandbox process load dist/'s
// JavaScript and never a TypeScript loader; the package's exports point at dist/ with types.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { BUILD_STAMP, distProblem, sourceFingerprint } from "../scripts/dist-state.mjs";
import { FIXTURES, REPO, TestDaemon, TestProject } from "./helpers/daemon.ts";
import { processTree } from "./helpers/run.ts";

const TRACE = path.join(FIXTURES, "build/trace-modules.mjs");

describe("the compiled build", () => {
  const traceDir = mkdtempSync(path.join(tmpdir(), "hookd-trace-"));
  const project = new TestProject({
    files: { "ping.ts": `import { on } from "hookd";\non("test.ping", async (event, ctx) => { ctx.log.info({ n: event.n }, "pinged"); });\n` },
  });
  const daemon = new TestDaemon(project);
  afterAll(async () => {
    await daemon.stop();
    project.remove();
    rmSync(traceDir, { recursive: true, force: true });
  });

  it("is current: dist/ was built from these sources", () => {
    expect(distProblem(REPO)).toBeUndefined();
  });

  it("runs the daemon and its sandbox process from dist/, with no TypeScript loader loaded", async () => {
    await daemon.start({ env: { NODE_OPTIONS: `--import=${pathToFileURL(TRACE).href}`, HOOKD_TRACE_DIR: traceDir } });
    const posted = await daemon.post("test.ping", { n: 1 });
    expect(posted.status).toBe(202);
    await daemon.waitForLog((line) => line.msg === "pinged" && line.n === 1);

    // The sandbox process is up (it ran the plugin): it runs dist/'s worker, plain JavaScript.
    const tree = processTree(daemon.pid!);
    const sandbox = tree.find((p) => p.cmd.includes("sandbox/worker."));
    expect(sandbox?.cmd).toContain(path.join(REPO, "dist/sandbox/worker.js"));
    expect(tree.filter((p) => /tsx/.test(p.cmd))).toEqual([]);

    // Every module the daemon resolved (and the sandbox process's too, when it inherits the
    // preload): hookd's from dist/, none of tsx, no TypeScript source.
    const traces = readdirSync(traceDir).map((name) => readFileSync(path.join(traceDir, name), "utf8").split("\n").filter(Boolean));
    const daemonTrace = traces.find((lines) => lines[0]!.includes("bin/hookd.js"));
    expect(daemonTrace).toBeDefined();
    expect(daemonTrace).toContain(pathToFileURL(path.join(REPO, "dist/core/daemon.js")).href);
    for (const lines of traces) {
      expect(lines.filter((line) => /\/tsx\//.test(line) || /\.ts$/.test(line) && !line.includes("/plugins/") && !line.endsWith("events.config.ts"))).toEqual([]);
    }
  });

  it("loads the daemon's modules without Node's fetch implementation, which only a plugin's fetch needs", () => {
    // An ES import of node:http builds its facade, which reads the lazy exports and loads undici
    // at every start-up (core/fetch/guarded-transport.ts takes node:http another way).
    const script = `await import(${JSON.stringify(pathToFileURL(path.join(REPO, "dist/core/daemon.js")).href)}); process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => m.includes("undici"))));`;
    const loaded = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(JSON.parse(loaded)).toEqual([]);
  });

  it("tells a missing build and a stale one apart from a current one", () => {
    // A folder shaped like the repository: what dist/ is built from, and dist/ itself.
    const repo = mkdtempSync(path.join(tmpdir(), "hookd-dist-state-"));
    try {
      for (const dir of ["core", "sandbox", "scripts", "dist"]) mkdirSync(path.join(repo, dir));
      for (const file of ["core/a.ts", "sandbox/b.ts", "tsconfig.json", "tsconfig.build.json", "scripts/build.mjs"]) writeFileSync(path.join(repo, file), `// ${file}\n`);
      expect(distProblem(repo)).toMatch(/not built.*npm run build/);
      writeFileSync(path.join(repo, "dist", BUILD_STAMP), JSON.stringify({ sources: sourceFingerprint(repo) }));
      expect(distProblem(repo)).toBeUndefined();
      writeFileSync(path.join(repo, "core/a.ts"), "// edited after the build\n");
      expect(distProblem(repo)).toMatch(/older than the sources.*npm run build/);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it("exports JavaScript with declarations for hookd, hookd/config, hookd/catalog and hookd/testing", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { name: string; exports: Record<string, { types?: string; default?: string }> };
    expect(pkg.name).toBe("hookd-daemon");
    for (const name of [".", "./config", "./catalog", "./testing"]) {
      const target = pkg.exports[name]!;
      expect(target.default, name).toMatch(/^\.\/dist\/.*\.js$/);
      expect(target.types, name).toMatch(/^\.\/dist\/.*\.d\.ts$/);
      expect(existsSync(path.join(REPO, target.default!)), target.default).toBe(true);
      expect(existsSync(path.join(REPO, target.types!)), target.types).toBe(true);
    }
  });
});
