// The real daemon under a fake service manager: a unix datagram socket in NOTIFY_SOCKET receives
// what a Type=notify unit's systemd would (READY, WATCHDOG, RELOADING, STOPPING).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { FakeNotifySocket, notifySocketUnsupported } from "./notify-socket.ts";

const unsupported = notifySocketUnsupported();
if (unsupported) console.warn(`skipping the systemd notification tests: ${unsupported}`);

// Watching is off: only SIGHUP reloads here, so a reload is the signal's doing.
const config = (extra = "") => `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: { ...catalog, "test.ping": z.object({ n: z.number().int() }), ${extra} },
  plugins: { watch: false },
  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 3 },
});
`;

const pinger = (version: string) => `
import { on } from "hookd";
on("test.ping", (ping, ctx) => ctx.log.info({ n: ping.n, version: ${JSON.stringify(version)} }, "pinger ran"));
`;

describe.skipIf(unsupported !== undefined)("hookd under systemd (Type=notify)", () => {
  const project = new TestProject({ config: config(), files: { "pinger.ts": pinger("one") } });
  const daemon = new TestDaemon(project);
  let socket: FakeNotifySocket;

  beforeAll(async () => {
    socket = await FakeNotifySocket.open();
    // 600 ms watchdog: a ping every 300 ms.
    await daemon.start({ env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "600000" } });
  });
  afterAll(async () => {
    await daemon.kill();
    await socket?.close();
    project.remove();
  });

  it("says READY=1 once the store is open, the plugins are loaded and the port listens", async () => {
    const ready = await socket.waitFor((m) => m.READY === "1");
    // Nothing before it: the watchdog starts with readiness.
    expect(socket.notifications[0]).toBe(ready);
    expect(ready.MAINPID).toBe(String(daemon.pid));
    expect(ready.STATUS).toContain(daemon.url);
    expect(ready.STATUS).toContain("1 plugin loaded");
    expect(await daemon.getJson("/readyz")).toEqual({ status: "ready" });
  });

  it("keeps NOTIFY_SOCKET and WATCHDOG_USEC away from the sandbox process", () => {
    const children = childPids(daemon.pid!).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("sandbox/worker"));
    expect(children).toHaveLength(1);
    for (const pid of children) {
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      expect(environ.filter((v) => v.startsWith("NOTIFY_SOCKET=") || v.startsWith("WATCHDOG_"))).toEqual([]);
    }
  });

  it("pings WATCHDOG=1 from the event loop at half the interval", async () => {
    const on = await daemon.waitForLog((l) => l.msg === "systemd watchdog on");
    expect(on).toMatchObject({ component: "systemd", watchdogMs: 600, pingEveryMs: 300 });
    await until(() => socket.notifications.filter((m) => m.WATCHDOG === "1").length >= 3, "three WATCHDOG=1 pings");
  });

  it("turns /readyz to 503 and withholds the watchdog while the store cannot write", async () => {
    // Another process takes the database's write lock: the daemon's writes cannot commit.
    const locker = new Database(path.join(project.dir, "data", "hookd.db"));
    locker.pragma("busy_timeout = 5000");
    locker.exec("BEGIN IMMEDIATE");
    try {
      const notReady = await untilValue(async () => {
        const response = await daemon.fetch("/readyz");
        return response.status === 503 ? ((await response.json()) as { error: { code: string; message: string } }) : undefined;
      }, "/readyz answering 503");
      expect(notReady.error.code).toBe("HOOKD_HTTP_NOT_READY");
      expect(notReady.error.message).toContain("store is not writable");
      const withheld = await daemon.waitForLog((l) => l.msg?.startsWith("watchdog ping withheld") === true, 10_000);
      expect(String(withheld.reason)).toContain("store is not writable");
    } finally {
      locker.exec("ROLLBACK");
      locker.close();
    }
    await until(async () => (await daemon.fetch("/readyz")).status === 200, "/readyz answering 200 again");
    await daemon.waitForLog((l) => l.msg === "watchdog pings resumed", 10_000);
    const pings = socket.notifications.filter((m) => m.WATCHDOG === "1").length;
    await until(() => socket.notifications.filter((m) => m.WATCHDOG === "1").length > pings, "a WATCHDOG=1 ping after the store recovered");
  });

  it("sends RELOADING=1, then READY=1 once SIGHUP re-read the config and the plugins", async () => {
    expect((await daemon.post("test.added", { note: "x" })).status).toBe(404);
    project.write("pinger.ts", pinger("two"));
    await writeConfig(project, config(`"test.added": z.object({ note: z.string() })`));
    const from = socket.notifications.length;

    process.kill(daemon.pid!, "SIGHUP");
    const reloading = await socket.waitFor((m) => m.RELOADING === "1" && socket.notifications.indexOf(m) >= from);
    expect(reloading.MONOTONIC_USEC).toMatch(/^\d+$/);
    const ready = await socket.waitFor((m) => m.READY === "1" && socket.notifications.indexOf(m) > socket.notifications.indexOf(reloading));
    expect(ready.STATUS).toMatch(/^reloaded; /);
    await daemon.waitForLog((l) => l.msg === "reload done");

    // Both re-read: the new catalog event is accepted, the new plugin version runs.
    expect((await daemon.post("test.added", { note: "x" })).status).toBe(202);
    const { body } = await daemon.post("test.ping", { n: 5 });
    const ran = await daemon.waitForLog((l) => l.msg === "pinger ran" && l.eventId === body.id);
    expect(ran.version).toBe("two");
  });

  it("sends STOPPING=1 on SIGTERM, drains and exits 0", async () => {
    const code = await daemon.stop();
    expect(code).toBe(0);
    const stopping = await socket.waitFor((m) => m.STOPPING === "1");
    expect(stopping.STATUS).toContain("SIGTERM");
    const after = socket.notifications.slice(socket.notifications.indexOf(stopping) + 1);
    expect(after.filter((m) => m.READY === "1" || m.WATCHDOG === "1")).toEqual([]);
    expect(daemon.logs.some((l) => l.msg === "hookd stopped")).toBe(true);
  });
});

describe.skipIf(unsupported !== undefined)("hookd outside systemd", () => {
  const project = new TestProject({ config: config(), files: { "pinger.ts": pinger("one") } });
  const daemon = new TestDaemon(project);
  let socket: FakeNotifySocket;

  beforeAll(async () => {
    socket = await FakeNotifySocket.open();
    // No NOTIFY_SOCKET (empty is unset), though WATCHDOG_USEC is: nothing must reach the socket.
    await daemon.start({ env: { NOTIFY_SOCKET: "", WATCHDOG_USEC: "200000" } });
  });
  afterAll(async () => {
    await daemon.kill();
    await socket?.close();
    project.remove();
  });

  it("sends nothing, yet still reloads on SIGHUP and drains on SIGTERM", async () => {
    project.write("pinger.ts", pinger("two"));
    process.kill(daemon.pid!, "SIGHUP");
    await daemon.waitForLog((l) => l.msg === "reload done");
    const { body } = await daemon.post("test.ping", { n: 1 });
    expect((await daemon.waitForLog((l) => l.msg === "pinger ran" && l.eventId === body.id)).version).toBe("two");
    expect(await daemon.stop()).toBe(0);
    expect(daemon.logs.filter((l) => l.component === "systemd")).toEqual([]);
    expect(socket.messages).toEqual([]);
  });
});

/** Pids whose parent is `pid` (the sandbox process). */
function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name, which is in parentheses and may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return children;
}

async function writeConfig(project: TestProject, source: string): Promise<void> {
  writeFileSync(path.join(project.dir, "events.config.ts"), source);
}

/** The shared waitUntil, with this file's argument order, bound and pace. */
const until = async (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> => void (await waitUntil(check, { what, timeoutMs, intervalMs: 50 }));
const untilValue = <T>(read: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> => waitUntil(read, { what, timeoutMs, intervalMs: 50 });
