// The second wall around the sandbox process (sandbox/wall.ts): code that runs in the process's
// own realm, as native code past an isolate escape would, reads no file but hookd's own, writes
// none, sees neither the daemon nor its environment, starts no process and reaches no network.
// test/sandbox/wall-probe.ts plays that code, started exactly as the sandbox process is.
// Where bubblewrap is unavailable only Node's permission model stands: the asserts that need
// the kernel are skipped with a warning (CI installs bubblewrap).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../../core/compile/compile-plugin.ts";
import { loadConfig } from "../../core/config/load.ts";
import { type DaemonStatus, formatStatus } from "../../core/ops/status.ts";
import type { PluginLogRecord } from "../../sandbox/contract/run.ts";
import { testServices } from "../helpers/services.ts";
import { SandboxProcess } from "../../sandbox/sandbox-process.ts";
import { sandboxCommand, wallStatus } from "../../sandbox/wall.ts";
import { FIXTURES, REPO, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { runProcess } from "../helpers/run.ts";
import { runRequest } from "../helpers/run-request.ts";

const PROBE = path.join(REPO, "test/sandbox/wall-probe.ts");
const wall = wallStatus("auto");
if (!wall.kernel) console.warn(`test/sandbox/wall.test.ts: no kernel wall here, its asserts are skipped: ${wall.missing}`);

describe("the sandbox process's wall", () => {
  let dir: string;
  let server: Server;
  let port: number;
  const connections: number[] = [];
  const marker = `hookd-wall-${process.pid}-${Date.now()}`;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hookd-wall-"));
    writeFileSync(path.join(dir, "hookd.db"), "SQLite format 3\0 the store");
    writeFileSync(path.join(dir, "events.config.ts"), `export default { secrets: { TOKEN: "s3cret" } };`);
    server = createServer((socket) => {
      connections.push(1);
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Files the probe must not read: the system's, the store and config in a data folder, and the checkout's own config. */
  const secretFiles = () => ["/etc/passwd", path.join(dir, "hookd.db"), path.join(dir, "events.config.ts"), path.join(REPO, "events.config.ts")];

  /** Starts the probe with the sandbox process's wall (optionally without the permission model) and returns what it got. */
  async function probe(options: { withoutPermission?: boolean; bwrapCandidates?: string[]; mode?: "auto" | "off" } = {}): Promise<Record<string, string>> {
    const targets = {
      files: secretFiles(),
      writes: [path.join(REPO, `${marker}.txt`), path.join(dir, "escape.txt"), path.join("/tmp", `${marker}.txt`)],
      port,
      daemonPid: process.pid,
    };
    const command = sandboxCommand({ worker: PROBE, mode: options.mode ?? "auto", env: { HOOKD_WALL_PROBE: JSON.stringify(targets) }, ...options });
    // The daemon's own environment holds secrets; none of it may reach the probe.
    const { code, stdout, stderr } = await runProcess(command.command, command.args, { env: { ...command.env }, timeoutMs: 60_000 });
    expect(code, stderr).toBe(0);
    if (process.env.HOOKD_WALL_TEST_VERBOSE) console.log(stdout);
    return JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, string>;
  }

  function expectNothingLeaked(): void {
    expect(existsSync(path.join(REPO, `${marker}.txt`))).toBe(false);
    expect(existsSync(path.join(dir, "escape.txt"))).toBe(false);
    expect(existsSync(path.join("/tmp", `${marker}.txt`))).toBe(false);
  }

  it("denies reads, writes, the daemon's environment, processes and (with the kernel wall) the network", async () => {
    process.env.HOOKD_TOKEN_FOR_WALL_TEST = "daemon-secret";
    let results: Record<string, string>;
    try {
      results = await probe();
    } finally {
      delete process.env.HOOKD_TOKEN_FOR_WALL_TEST;
    }
    for (const file of secretFiles()) expect(results[`read ${file}`], file).toMatch(/^denied/);
    expect(results["read daemon environ"]).toMatch(/^denied/);
    for (const [name, result] of Object.entries(results)) if (name.startsWith("write ")) expect(result, name).toMatch(/^denied/);
    expect(results["spawn /bin/sh"]).toMatch(/^denied/);
    expect(results["spawn node"]).toMatch(/^denied/);
    // Only the locale, the time zone, the working folder (bubblewrap sets PWD) and the harness's own variable.
    for (const name of results.env!.split(",").filter(Boolean)) expect(["TZ", "LANG", "LC_ALL", "PWD", "HOOKD_WALL_PROBE"]).toContain(name);
    expectNothingLeaked();
    if (!wall.kernel) return console.warn(`network assert skipped: ${wall.missing}`);
    expect(results["connect 127.0.0.1"]).toMatch(/^denied/);
    expect(connections).toHaveLength(0);
  }, 30_000);

  it.skipIf(!wall.kernel)("holds by the kernel alone, for code that got past Node's permission model", async () => {
    const results = await probe({ withoutPermission: true });
    for (const file of secretFiles()) expect(results[`read ${file}`], file).toBe("denied: ENOENT");
    // The daemon's PID is not in the process's PID namespace.
    expect(results["read daemon environ"]).toBe("denied: ENOENT");
    // hookd's files are mounted read-only, and so is the rest of the root; the data folder is not there at all.
    // A checkout under /tmp (a CI clone) hangs below the process's private /tmp: the folders that
    // carry its mounts are then on that tmpfs, and a write there lands in it, never on the host
    // (expectNothingLeaked below).
    const repoWrite = results[`write ${path.join(REPO, `${marker}.txt`)}`];
    if (REPO.startsWith("/tmp/")) expect(repoWrite).toMatch(/^ok$|^denied: EROFS$/);
    else expect(repoWrite).toBe("denied: EROFS");
    expect(results[`write ${path.join(dir, "escape.txt")}`]).toBe("denied: ENOENT");
    // No capability left, even where hookd runs as root (or /proc is absent, where the kernel refused one).
    expect(results.capabilities).toMatch(/^ok: 0000000000000000$|^denied: ENOENT$/);
    // bubblewrap's arguments say the rest: no further user namespaces where it can refuse them.
    const { command, args } = sandboxCommand({ worker: PROBE, mode: "auto" });
    const newer = spawnSync(command, ["--help"], { encoding: "utf8" }).stdout.includes("--disable-userns");
    if (newer && args.includes("--unshare-user")) expect(args).toContain("--disable-userns");
    // There is no shell to start; /tmp is the process's own, gone with it.
    expect(results["spawn /bin/sh"]).toBe("denied: ENOENT");
    expectNothingLeaked();
    // A network namespace of its own: its loopback is not the daemon's.
    expect(results["connect 127.0.0.1"]).toMatch(/^denied: (ENETUNREACH|ECONNREFUSED|EACCES|EPERM)/);
    expect(connections).toHaveLength(0);
  }, 30_000);

  it("without bubblewrap, starts with Node's permission model only and says what is missing; refuses when the wall is required", async () => {
    const command = sandboxCommand({ worker: PROBE, mode: "auto", bwrapCandidates: ["/nonexistent/bwrap"] });
    expect(command.command).toBe(process.execPath);
    expect(command.wall).toMatchObject({ kernel: false, permission: true });
    expect(command.wall.missing).toMatch(/apt-get install bubblewrap/);
    const results = await probe({ bwrapCandidates: ["/nonexistent/bwrap"] });
    for (const file of secretFiles()) expect(results[`read ${file}`], file).toMatch(/^denied: ERR_ACCESS_DENIED/);
    expect(results["read daemon environ"]).toMatch(/^denied/);
    expect(results["spawn /bin/sh"]).toMatch(/^denied/);
    expectNothingLeaked();
    expect(() => sandboxCommand({ worker: PROBE, mode: "required", bwrapCandidates: ["/nonexistent/bwrap"] })).toThrow(
      expect.objectContaining({ code: "HOOKD_SANDBOX_WALL_UNAVAILABLE" }),
    );
    expect(sandboxCommand({ worker: PROBE, mode: "off" }).wall).toMatchObject({ kernel: false, permission: true, mode: "off" });
  }, 30_000);

  it("runs plugins in the walled process, which holds only the secrets a plugin declared", async () => {
    const logs: PluginLogRecord[] = [];
    const sandbox = new SandboxProcess({
      secrets: { DECLARED_KEY: "declared-value", UNDECLARED_KEY: "undeclared-value" },
      services: testServices({ log: (record) => logs.push(record) }),
      onExit: () => undefined,
      onCatastrophe: () => undefined,
    });
    try {
      await sandbox.ready;
      expect(sandbox.wall.kernel).toBe(wall.kernel);
      const compiled = await compilePlugin(path.join(FIXTURES, "plugins/wall/secretive.ts"), { root: FIXTURES });
      const spec = { plugin: "secretive", version: 1, file: "plugins/wall/secretive.ts", code: compiled.code, sourceMap: compiled.sourceMap, limits: { memoryMb: 32, timeoutMs: 5000, maxConcurrentRuns: 1 } };
      const manifest = await sandbox.load(spec);
      expect(manifest.options.secrets).toEqual(["DECLARED_KEY"]);
      const outcome = await sandbox.run(runRequest("secretive", "test.ping", { runId: "r1", eventId: "e1" }));
      expect(outcome.ok).toBe(true);
      expect(logs.find((record) => record.msg === "secrets seen")?.fields).toEqual({ names: ["DECLARED_KEY"], value: "declared-value" });
      // What a sandbox process taken over by an escape could ask for: the daemon answers with the
      // names the version declared first and nothing else, and for versions it hosts only.
      const ask = (plugin: string, names: string[]) =>
        (sandbox as unknown as { declaredSecretValues(plugin: string, version: number, names: string[]): Record<string, string | undefined> }).declaredSecretValues(plugin, 1, names);
      expect(ask("secretive", ["UNDECLARED_KEY", "DECLARED_KEY", "HOOKD_TOKEN"])).toEqual({ DECLARED_KEY: "declared-value" });
      expect(() => ask("other", ["UNDECLARED_KEY"])).toThrow(expect.objectContaining({ code: "HOOKD_HOST_CALL_INVALID" }));
      if (!wall.kernel) return;
      // The node process inside bubblewrap: its environment and its network namespace.
      const inner = descendants(sandbox.pid!).find((pid) => readlinkSync(`/proc/${pid}/exe`) === readlinkSync("/proc/self/exe"));
      expect(inner).toBeDefined();
      expect(readFileSync(`/proc/${inner}/status`, "utf8")).toMatch(/^CapEff:\s*0+$/m);
      expect(readFileSync(`/proc/${inner}/status`, "utf8")).toMatch(/^CapBnd:\s*0+$/m);
      const environ = readFileSync(`/proc/${inner}/environ`, "utf8");
      expect(environ).not.toMatch(/HOOKD_|declared-value|undeclared-value/);
      expect(readlinkSync(`/proc/${inner}/ns/net`)).not.toBe(readlinkSync("/proc/self/ns/net"));
      expect(readlinkSync(`/proc/${inner}/ns/pid`)).not.toBe(readlinkSync("/proc/self/ns/pid"));
    } finally {
      await sandbox.close();
    }
  }, 60_000);
});

/** Every process below `pid`, from /proc/<pid>/task/<tid>/children. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
    for (const child of children ? children.split(/\s+/).map(Number) : []) found.push(child, ...descendants(child));
  }
  return found;
}

describe("esbuild's service", () => {
  it("starts with an empty environment, whatever the daemon's holds", async () => {
    // A process of its own: this test worker's esbuild service runs already.
    const code = `
      import { readdirSync, readFileSync } from "node:fs";
      import * as esbuild from "esbuild";
      import { startEsbuildService } from "./core/ops/child-env.ts";
      process.env.HOOKD_TOKEN = "daemon-token";
      process.env.PLUGIN_SECRET = "plugin-secret";
      await startEsbuildService();
      await esbuild.transform("let a: number = 1", { loader: "ts" });
      const children = readdirSync("/proc/self/task").flatMap((tid) => readFileSync("/proc/self/task/" + tid + "/children", "utf8").trim().split(/\\s+/).filter(Boolean));
      const service = children.find((pid) => readFileSync("/proc/" + pid + "/cmdline", "utf8").includes("--service="));
      process.stdout.write(JSON.stringify({ found: service !== undefined, environ: readFileSync("/proc/" + service + "/environ", "utf8"), own: process.env.HOOKD_TOKEN }));
      await esbuild.stop();
    `;
    const ran = await runProcess(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: REPO, timeoutMs: 30_000 });
    expect(ran.code, ran.stderr).toBe(0);
    const result = JSON.parse(ran.stdout) as { found: boolean; environ: string; own: string };
    expect(result.found).toBe(true);
    expect(result.environ).toBe("");
    // The daemon keeps its own environment.
    expect(result.own).toBe("daemon-token");
  }, 30_000);
});

describe("a daemon without the kernel wall", () => {
  const project = new TestProject({ files: { "pinger.ts": `import { on } from "hookd";\non("deal.close", (deal, ctx) => ctx.log.info({ did: deal.did }, "pinged"));\n` } });
  afterAll(() => project.remove());

  it("starts, warns once with what is missing and how to get it, and shows it in /readyz and /api/status", async () => {
    const daemon = new TestDaemon(project);
    await daemon.start({ env: { HOOKD_SANDBOX_BWRAP: "/nonexistent/bwrap" } });
    try {
      const warnings = daemon.logs.filter((line) => line.code === "HOOKD_SANDBOX_WALL_UNAVAILABLE");
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/apt-get install bubblewrap/);
      const ready = await daemon.getJson("/readyz");
      expect(ready.status).toBe("ready");
      expect(ready.warnings[0]).toMatch(/kernel wall/);
      const status = await daemon.getJson("/api/status");
      expect(status.sandbox.wall).toMatchObject({ mode: "auto", kernel: false, permission: true });
      // Plugins still run.
      const { body } = await daemon.post("deal.close", { did: 7, autor: 1, summa: "1", status: "won" });
      await daemon.waitForLog((line) => line.msg === "pinged" && line.eventId === body.id);
    } finally {
      await daemon.stop();
    }
  }, 60_000);

  it("refuses to start when sandbox.wall is required", async () => {
    const daemon = new TestDaemon(project);
    await expect(daemon.start({ env: { HOOKD_SANDBOX_BWRAP: "/nonexistent/bwrap", HOOKD_SANDBOX_WALL: "required" } })).rejects.toThrow(/HOOKD_SANDBOX_WALL_UNAVAILABLE/);
  }, 60_000);
});

describe("sandbox.wall and what shows it", () => {
  it("is auto by default, set by the config or HOOKD_SANDBOX_WALL, and names the key when invalid", async () => {
    const project = new TestProject();
    try {
      const file = path.join(project.dir, "events.config.ts");
      expect((await loadConfig({ configFile: file, env: {} })).sandbox.wall).toBe("auto");
      expect((await loadConfig({ configFile: file, env: { HOOKD_SANDBOX_WALL: "required" } })).sandbox.wall).toBe("required");
      await expect(loadConfig({ configFile: file, env: { HOOKD_SANDBOX_WALL: "sometimes" } })).rejects.toMatchObject({
        code: "HOOKD_CONFIG_INVALID",
        message: expect.stringContaining("sandbox.wall"),
      });
    } finally {
      project.remove();
    }
  });

  it("hookd status prints the wall, and a warning with what is missing", () => {
    const status = (wall: NonNullable<DaemonStatus["sandbox"]>["wall"]): DaemonStatus => ({
      version: "0.1.0",
      pid: 1,
      startedAt: new Date(0).toISOString(),
      uptimeSeconds: 1,
      ready: true,
      sandbox: { running: true, restarts: 0, wall },
      queue: { pending: 0, running: 0, dead: 0, done: 0, oldestPendingAgeSeconds: null },
      plugins: [],
      recentErrors: [],
    });
    expect(formatStatus(status({ mode: "auto", kernel: true, permission: true }), "http://x")).toContain("sandbox wall: bubblewrap + Node permission model");
    expect(formatStatus(status({ mode: "auto", kernel: false, permission: true, missing: "bubblewrap is not installed: apt-get install bubblewrap" }), "http://x")).toContain(
      "sandbox wall: WARNING no kernel wall (bubblewrap is not installed: apt-get install bubblewrap)",
    );
  });
});
