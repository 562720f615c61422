/**
 * Starts the real daemon (`bin/hookd.js start`) as a child process on a free port, in a
 * temporary project folder, and reads its JSON log lines back for assertions. bin/hookd.js runs
 * the compiled build in dist/, so a start first makes sure that build is of the current sources.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { distProblem } from "../../scripts/dist-state.mjs";
import { Arrivals } from "./wait.ts";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = path.join(REPO, "bin/hookd.js");
export const FIXTURES = path.join(REPO, "test/fixtures");

/**
 * Throws when dist/ is missing or older than the sources: a test of the real daemon would
 * otherwise test yesterday's build. Checked once per test process (hashing the sources takes ms).
 */
export function assertFreshBuild(): void {
  distChecked ??= distProblem(REPO) ?? null;
  if (distChecked) throw new Error(`${distChecked} (tests and the bench start bin/hookd.js, which runs dist/)`);
}
let distChecked: string | null | undefined;

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** The default test config: the shipped catalog, a few routes, fast retries. */
export const DEFAULT_CONFIG = `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: { ...catalog, "test.ping": z.object({ n: z.number().int() }) },
  routes: [{ on: "user.operator_status.changed", run: "notify", input: { operator: "userId", status: "status", fixed: { value: 7 } } }],
  server: { bodyLimit: 64 * 1024 },
  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 3 },
  // ctx.fetch reaches a loopback address only through the config: the test's sink, if any.
  sandbox: { timeoutMs: 3000, fetchAllowHosts: process.env.SINK_URL ? [new URL(process.env.SINK_URL).host] : [] },
});
`;

export interface ProjectOptions {
  /** Fixture folder names under test/fixtures/plugins, copied into plugins/. */
  fixtures?: string[];
  /** Extra plugin files: relative path under plugins/ -> source. */
  files?: Record<string, string>;
  config?: string;
}

export class TestProject {
  readonly dir: string;
  readonly pluginsDir: string;

  constructor(options: ProjectOptions = {}) {
    this.dir = mkdtempSync(path.join(tmpdir(), "hookd-test-"));
    this.pluginsDir = path.join(this.dir, "plugins");
    mkdirSync(this.pluginsDir, { recursive: true });
    writeFileSync(path.join(this.dir, "events.config.ts"), options.config ?? DEFAULT_CONFIG);
    for (const fixture of options.fixtures ?? []) {
      cpSync(path.join(FIXTURES, "plugins", fixture), this.pluginsDir, { recursive: true });
    }
    for (const [file, source] of Object.entries(options.files ?? {})) this.write(file, source);
  }

  write(file: string, source: string): void {
    const target = path.join(this.pluginsDir, file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, source);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface StartOptions {
  env?: Record<string, string>;
  args?: string[];
  /** How long to wait for "hookd ready". */
  timeoutMs?: number;
}

export class TestDaemon {
  url = "";
  private readonly lines = new Arrivals<LogLine>();
  private child: ChildProcess | undefined;
  private stderr = "";
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(readonly project: TestProject) {}

  /** Every log line so far, in order (those of earlier starts too). */
  get logs(): LogLine[] {
    return this.lines.items;
  }

  async start(options: StartOptions = {}): Promise<this> {
    assertFreshBuild();
    const child = spawn(process.execPath, [BIN, "start", "--config", path.join(this.project.dir, "events.config.ts"), ...(options.args ?? [])], {
      cwd: this.project.dir,
      // HOOKD_EXIT_WITH_PARENT: a daemon whose test worker died stops by itself.
      env: { ...process.env, HOOKD_PORT: "0", HOOKD_HOST: "127.0.0.1", HOOKD_LOG_LEVEL: "debug", HOOKD_EXIT_WITH_PARENT: "1", NODE_OPTIONS: "", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    // A test file that ends without stop() (a failed hook, a timeout) must not leave it running.
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    child.once("exit", () => process.off("exit", killOnExit));
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: text, raw: true };
        }
        this.lines.push(line);
      }
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    const ready = await Promise.race([
      this.waitForLog((l) => l.msg === "hookd ready", options.timeoutMs ?? 30_000),
      this.exited.then((code) => {
        throw new Error(`daemon exited with ${code} before ready:\n${this.stderr}\n${this.logs.map((l) => JSON.stringify(l)).join("\n")}`);
      }),
    ]);
    this.url = String(ready.url);
    return this;
  }

  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    return this.lines.first(match, { timeoutMs, what: () => `a matching log line${this.stderr ? ` (stderr: ${this.stderr})` : ""}` });
  }

  /** Waits until `count` lines match. */
  waitForLogs(match: (line: LogLine) => boolean, count: number, timeoutMs = 30_000): Promise<LogLine[]> {
    return this.lines.count(match, count, { timeoutMs, what: () => `${count} matching log lines (${this.logs.filter(match).length} so far)` });
  }

  fetch(pathname: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.url}${pathname}`, init);
  }

  /** POSTs a JSON event; returns status and parsed body. */
  async post(name: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await this.fetch(`/events/${name}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json().catch(() => null) };
  }

  async getJson(pathname: string, headers: Record<string, string> = {}): Promise<any> {
    const response = await this.fetch(pathname, { headers });
    return response.json();
  }

  /** SIGTERM and wait (graceful); SIGKILL after the timeout. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return this.child?.exitCode ?? null;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** SIGKILL: the crash case. Kills the sandbox child too (it exits when its parent goes). */
  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
}

/**
 * A real daemon for one describe block: the project is written and the daemon started before
 * its tests, stopped and removed after them.
 */
export function useDaemon(projectOptions: ProjectOptions, startOptions: StartOptions = {}): { project: TestProject; daemon: TestDaemon } {
  const project = new TestProject(projectOptions);
  const daemon = new TestDaemon(project);
  beforeAll(async () => {
    await daemon.start(startOptions);
  });
  afterAll(async () => {
    await daemon.stop();
    project.remove();
  });
  return { project, daemon };
}

/** How many events the daemon has stored (up to 1,000): "nothing was stored" checks count before and after. */
export async function storedEventCount(daemon: TestDaemon, headers?: Record<string, string>): Promise<number> {
  const { events } = await daemon.getJson("/api/events?limit=1000", headers);
  return events.length;
}

