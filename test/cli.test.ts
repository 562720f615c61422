// The hookd command as a user runs it: check, emit, run, runs.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, TestProject, useDaemon } from "./helpers/daemon.ts";
import { runHookd } from "./helpers/run.ts";

function hookd(args: string[], options: { cwd?: string; input?: string; env?: Record<string, string> } = {}) {
  // stdin is a pipe, empty unless the test feeds it (as `hookd emit` reads it).
  return runHookd(args, { cwd: options.cwd ?? REPO, input: options.input ?? "", ...(options.env ? { env: options.env } : {}), timeoutMs: 60_000 });
}

describe("hookd check", () => {
  it("passes on the shipped project and lists what handles what", async () => {
    const { code, stdout, stderr } = await hookd(["check"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/deal-forwarder\s+on deal\.close/);
    expect(stdout).toMatch(/chat-leads\s+on session\.created, on session\.closed, action create-lead/);
    expect(stdout).toMatch(/\(route\)\s+on user\.operator_status\.changed -> action notify-supervisor/);
    expect(stdout).toContain("no problems");
  });

  it("fails with the location of a type error, an unknown event and a Node built-in", async () => {
    const project = new TestProject({
      fixtures: ["uses-fs"],
      files: {
        "typo.ts": `import { on } from "hookd";\n\non("deal.closed", () => undefined);\n`,
        "wrong-field.ts": `import { on } from "hookd";\non("deal.close", (e) => {\n  const n: number = e.summa;\n  void n;\n});\n`,
      },
    });
    try {
      const { code, stdout } = await hookd(["check", "--config", path.join(project.dir, "events.config.ts")], { cwd: project.dir });
      expect(code).toBe(1);
      expect(stdout).toMatch(/plugins\/typo\.ts:3:4: HOOKD_PLUGIN_TYPECHECK: TS2345/);
      expect(stdout).toMatch(/plugins\/wrong-field\.ts:3:9: HOOKD_PLUGIN_TYPECHECK: TS2322/);
      expect(stdout).toMatch(/plugins\/uses-fs\.ts: HOOKD_PLUGIN_NODE_BUILTIN: .*plugins\/uses-fs\.ts:1:\d+.*"node:fs"/);
      expect(stdout).toMatch(/plugins\/typo\.ts: HOOKD_PLUGIN_UNKNOWN_EVENT/);
    } finally {
      project.remove();
    }
  });
});

describe("hookd emit and run", () => {
  const { project, daemon } = useDaemon({ fixtures: ["basic"] }, { env: { HOOKD_TOKEN: "cli-token" } });
  const env = () => ({ HOOKD_URL: daemon.url, HOOKD_TOKEN: "cli-token" });

  it("sends an event from an argument, a file and standard input", async () => {
    const fromArg = await hookd(["emit", "deal.close", '{"did":"41","autor":1,"summa":"2","status":"won"}'], { env: env() });
    expect(fromArg.code).toBe(0);
    const { id } = JSON.parse(fromArg.stdout) as { id: string };
    const line = await daemon.waitForLog((l) => l.msg === "recorder handled" && l.eventId === id);
    expect((line.payload as { did: number }).did).toBe(41);

    const file = path.join(project.dir, "deal.json");
    writeFileSync(file, JSON.stringify({ did: 42, autor: 1, summa: "2", status: "won" }));
    const fromFile = await hookd(["emit", "deal.close", `@${file}`], { env: env() });
    expect(fromFile.code).toBe(0);
    const fromStdin = await hookd(["emit", "deal.close", "-"], { env: env(), input: JSON.stringify({ did: 43, autor: 1, summa: "2", status: "won" }) });
    expect(fromStdin.code).toBe(0);
    await daemon.waitForLog((l) => l.msg === "recorder handled" && (l.payload as { did?: number })?.did === 43);
  });

  it("prints the daemon's error and exits 1 for an invalid event or a wrong token", async () => {
    const invalid = await hookd(["emit", "deal.close", '{"did":"x"}'], { env: env() });
    expect(invalid.code).toBe(1);
    expect(JSON.parse(invalid.stderr).error.code).toBe("HOOKD_EVENT_INVALID");
    const unauthorized = await hookd(["emit", "deal.close", "{}"], { env: { ...env(), HOOKD_TOKEN: "nope" } });
    expect(unauthorized.code).toBe(1);
    expect(JSON.parse(unauthorized.stderr).error.code).toBe("HOOKD_HTTP_UNAUTHORIZED");
    const notJson = await hookd(["emit", "deal.close", "{did:1}"], { env: env() });
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toContain("HOOKD_CLI_USAGE");
  });

  it("starts an action by hand and lists its run", async () => {
    const started = await hookd(["run", "notify", '{"operator":"op-9","status":"away","fixed":3}'], { env: env() });
    expect(started.code).toBe(0);
    const { id } = JSON.parse(started.stdout) as { id: string };
    await daemon.waitForLog((l) => l.msg === "notify ran" && l.eventId === id);
    const runs = await hookd(["runs", "--plugin", "action:notify"], { env: env() });
    expect(runs.code).toBe(0);
    expect(runs.stdout).toMatch(/done\s+action:notify/);
  });

  it("says so when no daemon answers, and explains its usage", async () => {
    const unreachable = await hookd(["emit", "deal.close", "{}"], { env: { HOOKD_URL: "http://127.0.0.1:9" } });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("HOOKD_CLI_DAEMON_UNREACHABLE");
    const usage = await hookd(["frobnicate"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("Usage:");
  });
});
