// Hostile files in the plugins folder against the real daemon: a FIFO named like a plugin, a
// file that crashes the compiler, a second source for a plugin's name, a symlink to a big tree
// outside, an import of the daemon's environment. Each is a real file in a real temporary
// project; for each, the daemon becomes ready, the well-behaved plugin beside it keeps handling
// events, the hostile one is refused with its code, and SIGTERM still stops the daemon.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject, type LogLine } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const MARKER = "hookd-env-marker-5d1c";

function config(settings = ""): string {
  return `
import { defineConfig, z } from "hookd/config";
const n = z.object({ n: z.number().int() });
export default defineConfig({
  events: { "test.ping": n, "test.other": n, "test.bystander": n },
  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 2 },
  ${settings}
});
`;
}

function handler(event: string, tag: string): string {
  return `import { on } from "hookd";\non("${event}", (event, ctx) => { ctx.log.info({ n: event.n }, "${tag} handled"); });\n`;
}

/** The shared waitUntil, with this file's argument order and bound. */
const waitFor = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> => waitUntil(probe, { what, timeoutMs, intervalMs: 50 });

async function plugin(daemon: TestDaemon, name: string): Promise<any> {
  const { plugins } = await daemon.getJson("/api/plugins");
  return plugins.find((p: { name: string }) => p.name === name);
}

/** Waits until the plugin's last error carries this code. */
function failsWith(daemon: TestDaemon, name: string, code: string, timeoutMs?: number): Promise<any> {
  return waitFor(`plugin ${name} failing with ${code}`, async () => {
    const status = await plugin(daemon, name);
    return status?.lastError?.code === code ? status : undefined;
  }, timeoutMs);
}

/** Posts an event and waits for the run's `<tag> handled` line. */
async function handles(daemon: TestDaemon, event: string, tag: string, n: number): Promise<void> {
  const { status } = await daemon.post(event, { n });
  expect(status).toBe(202);
  await daemon.waitForLog((l: LogLine) => l.msg === `${tag} handled` && l.n === n, 10_000);
}

/** inotify watches the process holds, counted from /proc (what a symlinked tree would inflate). */
function inotifyWatches(pid: number): number {
  let watches = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (!target.includes("inotify")) continue;
    watches += readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8").split("\n").filter((line) => line.startsWith("inotify wd:")).length;
  }
  return watches;
}

describe("hostile files in the plugins folder at start and while running", () => {
  let project: TestProject;
  let daemon: TestDaemon;
  let outside: string;
  const OUTSIDE_DIRS = 400;

  beforeAll(async () => {
    // A big tree outside the project, with a plugin-looking index.ts at its top.
    outside = mkdtempSync(path.join(tmpdir(), "hookd-outside-tree-"));
    for (let i = 0; i < OUTSIDE_DIRS; i++) mkdirSync(path.join(outside, `d${i}`));
    writeFileSync(path.join(outside, "index.ts"), handler("test.other", "outsider"));

    project = new TestProject({
      config: config(),
      files: {
        "good.ts": handler("test.ping", "good"),
        // A second source for one name: both refused, neither silently "victim".
        "victim.ts": handler("test.other", "victim"),
        "victim/index.ts": handler("test.other", "impersonator"),
        // The daemon's environment, bundled at compile time.
        "environ.ts": `import env from "/proc/self/environ" with { type: "text" };\nimport { on } from "hookd";\non("test.other", (e, ctx) => ctx.log.info(env));\n`,
        // Two megabytes of nested brackets (kills esbuild's parser without plugins.maxNesting).
        "nested.ts": `export const x = ${"[".repeat(2 * 1024 * 1024)}`,
        "bystander.ts": handler("test.bystander", "bystander"),
      },
    });
    execFileSync("mkfifo", [path.join(project.pluginsDir, "fifo-1.ts")]);
    symlinkSync(outside, path.join(project.pluginsDir, "share"));
    daemon = await new TestDaemon(project).start({ env: { HOOKD_TEST_MARKER: MARKER }, timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await daemon?.stop();
    project?.remove();
    if (outside) rmSync(outside, { recursive: true, force: true });
  });

  it("becomes ready with the good plugin serving, whatever sits beside it", async () => {
    expect((await plugin(daemon, "good")).state).toBe("loaded");
    await handles(daemon, "test.ping", "good", 1);
  });

  it("refuses a FIFO named like a plugin without blocking (HOOKD_COMPILE_NOT_A_FILE)", async () => {
    const status = await failsWith(daemon, "fifo-1", "HOOKD_COMPILE_NOT_A_FILE");
    expect(status.state).toBe("failed");
  });

  it("refuses two sources for one name at start: neither becomes the plugin (HOOKD_PLUGIN_AMBIGUOUS)", async () => {
    const status = await failsWith(daemon, "victim", "HOOKD_PLUGIN_AMBIGUOUS");
    expect(status).toMatchObject({ state: "failed", version: null });
    expect(status.lastError.message).toContain("plugins/victim.ts");
    expect(status.lastError.message).toContain("plugins/victim/index.ts");
  });

  it("refuses a compile-time import of the daemon's environment, without quoting it", async () => {
    const status = await failsWith(daemon, "environ", "HOOKD_COMPILE_FORBIDDEN_IMPORT");
    expect(status.lastError.location).toBe("plugins/environ.ts:1:17");
    expect(JSON.stringify(status)).not.toContain(MARKER);
  });

  it("refuses a file of two megabytes of nested brackets before esbuild parses it", async () => {
    await failsWith(daemon, "nested", "HOOKD_COMPILE_TOO_LARGE");
  });

  it("does not follow a symlink to a big tree outside: not watched, not loaded", async () => {
    const { plugins } = await daemon.getJson("/api/plugins");
    expect(plugins.map((p: { name: string }) => p.name)).not.toContain("share");
    // The project needs a handful of watches; following the link would add one per folder.
    expect(inotifyWatches(daemon.pid!)).toBeLessThan(OUTSIDE_DIRS / 4);
  });

  it("hot reload: a FIFO dropped while running holds up neither the watcher nor the next plugin", async () => {
    execFileSync("mkfifo", [path.join(project.pluginsDir, "fifo-2.ts")]);
    await failsWith(daemon, "fifo-2", "HOOKD_COMPILE_NOT_A_FILE");
    project.write("later.ts", handler("test.other", "later"));
    await waitFor("plugin later loaded", async () => ((await plugin(daemon, "later"))?.state === "loaded" ? true : undefined));
    await handles(daemon, "test.other", "later", 2);
  });

  it("hot reload: a folder dropped beside a running plugin is refused loudly, the vetted version serves on", async () => {
    const before = await plugin(daemon, "bystander");
    expect(before.state).toBe("loaded");
    project.write("bystander/index.ts", handler("test.bystander", "bystander-impersonator"));
    const status = await failsWith(daemon, "bystander", "HOOKD_PLUGIN_AMBIGUOUS");
    expect(status.version).toBe(before.version);
    await handles(daemon, "test.bystander", "bystander", 3);
    expect(daemon.logs.some((l) => l.msg === "bystander-impersonator handled")).toBe(false);
    // One source again: the name loads normally.
    rmSync(path.join(project.pluginsDir, "bystander"), { recursive: true });
    await waitFor("bystander reloaded without an error", async () => {
      const now = await plugin(daemon, "bystander");
      return now.lastError === null && now.version > before.version ? now : undefined;
    });
  });

  it("still stops on SIGTERM (no libuv thread blocked on a FIFO)", async () => {
    expect(await daemon.stop(10_000)).toBe(0);
  });
});

describe("a plugin file that crashes the compiler", () => {
  let project: TestProject;
  let daemon: TestDaemon;

  beforeAll(async () => {
    // maxNesting 0: the nesting check is off, so the file reaches esbuild and kills its service.
    // A generous compile bound: growing a gigabyte of parser stack takes seconds on a busy machine.
    project = new TestProject({ config: config("plugins: { maxNesting: 0, compileTimeoutMs: 120000 },"), files: { "first.ts": handler("test.ping", "first") } });
    daemon = await new TestDaemon(project).start({ timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await daemon?.stop();
    project?.remove();
  });

  it("fails that file with HOOKD_COMPILE_CRASHED; the compiler restarts and the next plugin loads", async () => {
    project.write("crash.ts", `export const x = ${"[".repeat(2 * 1024 * 1024)}`);
    await failsWith(daemon, "crash", "HOOKD_COMPILE_CRASHED", 100_000);
    project.write("second.ts", handler("test.other", "second"));
    await waitFor("plugin second loaded", async () => ((await plugin(daemon, "second"))?.state === "loaded" ? true : undefined), 30_000);
    await handles(daemon, "test.other", "second", 1);
    await handles(daemon, "test.ping", "first", 2);
  }, 150_000);
});

describe("a plugin that takes long to load at start", () => {
  let project: TestProject;
  let daemon: TestDaemon;

  beforeAll(async () => {
    project = new TestProject({
      config: config("plugins: { startTimeoutMs: 300 },"),
      files: {
        // Two seconds of top-level work: within sandbox.loadTimeoutMs, far past plugins.startTimeoutMs.
        "slow.ts": `import { on } from "hookd";\nconst until = Date.now() + 2000;\nwhile (Date.now() < until) {}\non("test.other", (e, ctx) => ctx.log.info({ n: e.n }, "slow handled"));\n`,
      },
    });
    daemon = await new TestDaemon(project).start({ timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await daemon?.stop();
    project?.remove();
  });

  it("does not hold up readiness (HOOKD_PLUGIN_START_TIMEOUT), and serves once its load is done", async () => {
    const ready = daemon.logs.findIndex((l) => l.msg === "hookd ready");
    const late = daemon.logs.findIndex((l) => l.code === "HOOKD_PLUGIN_START_TIMEOUT" && l.plugin === "slow");
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(ready);
    await waitFor("plugin slow loaded after start", async () => ((await plugin(daemon, "slow"))?.state === "loaded" ? true : undefined), 30_000);
    await handles(daemon, "test.other", "slow", 1);
  });
});
