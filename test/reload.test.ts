// Hot reload against the real daemon: plugin files are added, edited, broken, renamed and deleted
// in a temporary folder while events flow, and the daemon must swap versions without losing one.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { openSync, renameSync, rmSync, writeSync, closeSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, TestDaemon, TestProject, useDaemon, type LogLine } from "./helpers/daemon.ts";
import { pause, waitUntil } from "./helpers/wait.ts";

const EVENTS = ["t.add", "t.change", "t.delete", "t.delete.witness", "t.rename", "t.broken", "t.throws", "t.rapid", "t.stream", "t.shared", "t.atomic", "t.dev"];

/** The test catalog; `extra` adds event names, `settings` is pasted into the config object. */
function configSource(options: { extra?: string[]; settings?: string } = {}): string {
  const events = [...EVENTS, ...(options.extra ?? [])].map((name) => `"${name}": n`).join(", ");
  return `
import { defineConfig, z } from "hookd/config";
const n = z.object({ n: z.number().int() });
export default defineConfig({
  events: { ${events} },
  // Slow retries, so a failed run stays pending long enough to see where it waits.
  delivery: { backoffMs: 1500, maxBackoffMs: 3000, maxAttempts: 5 },
  // The gate plugins fetch listens on a loopback port of its own (the daemon's is refused anyway).
  sandbox: { timeoutMs: 3000, fetchAllowHosts: ["127.0.0.1"] },
  ${options.settings ?? ""}
});
`;
}

/** A plugin that logs `<tag> handled` with its version constant for every event it receives. */
function handlerSource(event: string, tag: string, version: number): string {
  return `import { on } from "hookd";

const V = ${version};

on("${event}", (event, ctx) => {
  ctx.log.info({ rev: V, n: event.n }, "${tag} handled");
});
`;
}

function isSwap(plugin: string, version?: number) {
  return (l: LogLine) =>
    l.component === "plugins" &&
    l.plugin === plugin &&
    (l.msg === "plugin loaded" || l.msg === "plugin reloaded") &&
    (version === undefined || l.version === version);
}

function isFailure(plugin: string) {
  return (l: LogLine) => l.component === "plugins" && l.plugin === plugin && typeof l.code === "string" && l.level === 50;
}

async function pluginStatus(daemon: TestDaemon, name: string): Promise<any> {
  const { plugins } = await daemon.getJson("/api/plugins");
  return plugins.find((p: { name: string }) => p.name === name);
}

/** Posts an event and waits for the line `<tag> handled` of its run. */
async function postHandled(daemon: TestDaemon, event: string, n: number, tag: string): Promise<LogLine> {
  const { status, body } = await daemon.post(event, { n });
  expect(status).toBe(202);
  return daemon.waitForLog((l) => l.msg === `${tag} handled` && l.eventId === body.id);
}

describe("hot reload", () => {
  const { project, daemon } = useDaemon({ fixtures: ["reload"], config: configSource() });
  const file = (name: string) => path.join(project.pluginsDir, name);

  it("loads a plugin file dropped into the running daemon", async () => {
    project.write("added.ts", handlerSource("t.add", "added", 1));
    await daemon.waitForLog(isSwap("added", 1));
    const line = await postHandled(daemon, "t.add", 1, "added");
    expect(line).toMatchObject({ plugin: "added", rev: 1 });
    expect(await pluginStatus(daemon, "added")).toMatchObject({ state: "loaded", version: 1, events: ["t.add"], lastError: null, pendingRuns: 0 });
  });

  it("runs new events on the new version after a file changes", async () => {
    project.write("changed.ts", handlerSource("t.change", "changed", 1));
    await daemon.waitForLog(isSwap("changed", 1));
    expect((await postHandled(daemon, "t.change", 1, "changed")).rev).toBe(1);

    project.write("changed.ts", handlerSource("t.change", "changed", 2));
    const swap = await daemon.waitForLog(isSwap("changed", 2));
    expect(swap).toMatchObject({ msg: "plugin reloaded", previousVersion: 1 });
    expect((await postHandled(daemon, "t.change", 2, "changed")).rev).toBe(2);
    expect(await pluginStatus(daemon, "changed")).toMatchObject({ state: "loaded", version: 2 });
  });

  it("stops sending new events to a deleted plugin and keeps its pending runs until it returns", async () => {
    // Fails its first attempt, so the run is pending (waiting for its retry) when the file goes.
    const source = `import { on } from "hookd";
on("t.delete", (event, ctx) => {
  if (ctx.event.attempt === 1) throw new Error("not yet");
  ctx.log.info({ attempt: ctx.event.attempt, n: event.n }, "gone handled");
});
`;
    project.write("gone.ts", source);
    await daemon.waitForLog(isSwap("gone", 1));
    const first = await daemon.post("t.delete", { n: 1 });
    await daemon.waitForLog((l) => l.msg?.startsWith("run failed, will retry") === true && l.eventId === first.body.id);

    rmSync(file("gone.ts"));
    await daemon.waitForLog((l) => l.component === "plugins" && l.plugin === "gone" && l.msg === "plugin removed");
    expect(await pluginStatus(daemon, "gone")).toMatchObject({ state: "removed", version: null, pendingRuns: 1 });

    // A new event finds no subscriber: nothing is created for the removed plugin.
    const later = await daemon.post("t.delete", { n: 2 });
    expect(later.status).toBe(202);
    expect((await daemon.getJson(`/api/runs?eventId=${later.body.id}`)).runs).toHaveLength(0);

    // Past the retry time the run still waits: it is neither run, nor failed, nor dropped. The
    // signals: the retry is due, and the dispatcher has claimed and run a live plugin's event since.
    const [due] = (await daemon.getJson(`/api/runs?eventId=${first.body.id}`)).runs;
    await waitUntil(() => Date.now() > due.nextAt, { what: "the removed plugin's retry to be due" });
    project.write("witness.ts", handlerSource("t.delete.witness", "witness", 1));
    await daemon.waitForLog(isSwap("witness", 1));
    await postHandled(daemon, "t.delete.witness", 1, "witness");
    const [waiting] = (await daemon.getJson(`/api/runs?eventId=${first.body.id}`)).runs;
    expect(waiting).toMatchObject({ plugin: "gone", status: "pending", attempts: 1 });
    expect(daemon.logs.some((l) => l.msg === "gone handled")).toBe(false);

    project.write("gone.ts", source);
    const ran = await daemon.waitForLog((l) => l.msg === "gone handled" && l.eventId === first.body.id);
    expect(ran.attempt).toBe(2);
    expect(await pluginStatus(daemon, "gone")).toMatchObject({ state: "loaded", lastError: null });
  });

  it("lets a run started on the old version finish there while new events go to the new one", async () => {
    // The old version's handler waits on this server until the swap is done.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let arrived: () => void = () => undefined;
    const inFlight = new Promise<void>((resolve) => (arrived = resolve));
    const gate = createServer((_request, response) => {
      arrived();
      void held.then(() => response.end("open"));
    });
    await new Promise<void>((resolve) => gate.listen(0, "127.0.0.1", resolve));
    const gateUrl = `http://127.0.0.1:${(gate.address() as AddressInfo).port}/gate`;
    try {
      project.write(
        "inflight.ts",
        `import { on, plugin } from "hookd";
plugin({ fetch: ["http://127.0.0.1:*/*"] });
on("t.change", async (event, ctx) => {
  if (event.n !== 100) return;
  await ctx.fetch("${gateUrl}");
  ctx.log.info({ rev: 1 }, "inflight done");
});
`,
      );
      await daemon.waitForLog(isSwap("inflight", 1));
      const first = await daemon.post("t.change", { n: 100 });
      await inFlight;

      project.write("inflight.ts", handlerSource("t.change", "inflight", 2));
      await daemon.waitForLog(isSwap("inflight", 2));
      const second = await daemon.post("t.change", { n: 101 });
      expect((await daemon.waitForLog((l) => l.msg === "inflight handled" && l.eventId === second.body.id)).rev).toBe(2);

      release();
      const done = await daemon.waitForLog((l) => l.msg === "inflight done" && l.eventId === first.body.id);
      expect(done.rev).toBe(1);
      const runs = (await daemon.getJson(`/api/runs?eventId=${first.body.id}`)).runs.filter((r: { plugin: string }) => r.plugin === "inflight");
      expect(runs).toMatchObject([{ attempts: 1 }]);
      expect(daemon.logs.some((l) => l.msg === "inflight handled" && l.eventId === first.body.id)).toBe(false);
    } finally {
      release();
      gate.closeAllConnections();
      await new Promise((resolve) => gate.close(resolve));
    }
  });

  it("reloads a folder plugin when any of its files changes, and unloads it with its folder", async () => {
    project.write("folder/greeting.ts", `export const GREETING = "hello";\n`);
    project.write(
      "folder/index.ts",
      `import { on } from "hookd";
import { GREETING } from "./greeting.ts";
on("t.add", (event, ctx) => ctx.log.info({ greeting: GREETING }, "folder handled"));
`,
    );
    await daemon.waitForLog(isSwap("folder", 1));
    project.write("folder/greeting.ts", `export const GREETING = "good morning";\n`);
    await daemon.waitForLog(isSwap("folder", 2));
    const { body } = await daemon.post("t.add", { n: 50 });
    expect((await daemon.waitForLog((l) => l.msg === "folder handled" && l.eventId === body.id)).greeting).toBe("good morning");

    rmSync(file("folder"), { recursive: true });
    await daemon.waitForLog((l) => l.component === "plugins" && l.plugin === "folder" && l.msg === "plugin removed");
    expect(await pluginStatus(daemon, "folder")).toMatchObject({ state: "removed" });
  });

  it("treats a rename as an unload of the old name and a load of the new one", async () => {
    project.write("old-name.ts", handlerSource("t.rename", "renamed", 1));
    await daemon.waitForLog(isSwap("old-name", 1));
    renameSync(file("old-name.ts"), file("new-name.ts"));
    await daemon.waitForLog((l) => l.component === "plugins" && l.plugin === "old-name" && l.msg === "plugin removed");
    await daemon.waitForLog(isSwap("new-name", 1));
    const line = await postHandled(daemon, "t.rename", 1, "renamed");
    expect(line.plugin).toBe("new-name");
    expect(await pluginStatus(daemon, "old-name")).toMatchObject({ state: "removed", version: null });
    const runs = (await daemon.getJson(`/api/runs?eventId=${line.eventId}`)).runs;
    expect(runs.map((r: { plugin: string }) => r.plugin)).toEqual(["new-name"]);
  });

  it("keeps the last good version serving after a syntax error, reports where it is, and recovers on a fix", async () => {
    project.write("broken.ts", handlerSource("t.broken", "broken", 1));
    await daemon.waitForLog(isSwap("broken", 1));
    project.write(
      "broken.ts",
      `import { on } from "hookd";

on("t.broken", (event, ctx) => {
  ctx.log.info({ rev: 2 }, "broken handled");
  const = 5;
});
`,
    );
    const failure = await daemon.waitForLog(isFailure("broken"));
    expect(failure).toMatchObject({ code: "HOOKD_PLUGIN_COMPILE", location: "plugins/broken.ts:5:9", servingVersion: 1 });
    expect(failure.msg).toContain("plugins/broken.ts:5:9");
    expect(failure.msg).toContain('Expected identifier but found "="');
    const status = await pluginStatus(daemon, "broken");
    expect(status).toMatchObject({ state: "loaded", version: 1 });
    expect(status.lastError).toMatchObject({ code: "HOOKD_PLUGIN_COMPILE", location: "plugins/broken.ts:5:9", version: 2 });
    expect((await postHandled(daemon, "t.broken", 1, "broken")).rev).toBe(1);

    project.write("broken.ts", handlerSource("t.broken", "broken", 3));
    await daemon.waitForLog(isSwap("broken", 3));
    expect(await pluginStatus(daemon, "broken")).toMatchObject({ state: "loaded", version: 3, lastError: null });
    expect((await postHandled(daemon, "t.broken", 2, "broken")).rev).toBe(3);
  });

  it("keeps the last good version serving when the new one throws while loading, with the TypeScript location", async () => {
    project.write("throws.ts", handlerSource("t.throws", "throws", 1));
    await daemon.waitForLog(isSwap("throws", 1));
    // Type-correct code that fails only when it runs: the plugin's top level throws.
    project.write(
      "throws.ts",
      `import { on } from "hookd";

function readLimit(): number {
  throw new Error("limit is not configured");
}
const limit: number = readLimit();

on("t.throws", (event, ctx) => {
  ctx.log.info({ rev: 2, limit }, "throws handled");
});
`,
    );
    const failure = await daemon.waitForLog(isFailure("throws"));
    expect(failure).toMatchObject({ code: "HOOKD_PLUGIN_LOAD", location: "plugins/throws.ts:4:9", servingVersion: 1 });
    expect(failure.msg).toContain("limit is not configured");
    expect((await pluginStatus(daemon, "throws")).lastError).toMatchObject({ code: "HOOKD_PLUGIN_LOAD", location: "plugins/throws.ts:4:9" });
    expect((await postHandled(daemon, "t.throws", 1, "throws")).rev).toBe(1);

    project.write("throws.ts", handlerSource("t.throws", "throws", 3));
    await daemon.waitForLog(isSwap("throws", 3));
    expect((await pluginStatus(daemon, "throws")).lastError).toBeNull();
    expect((await postHandled(daemon, "t.throws", 2, "throws")).rev).toBe(3);
  });

  it("ends 100 rapid saves of one file with the last content loaded and no error", async () => {
    project.write("rapid.ts", handlerSource("t.rapid", "rapid", 0));
    await daemon.waitForLog(isSwap("rapid", 1));
    for (let v = 1; v <= 100; v++) {
      writeFileSync(file("rapid.ts"), handlerSource("t.rapid", "rapid", v));
      // Bursts with short pauses: some saves land while a reload is compiling or loading.
      if (v % 10 === 0) await pause(15);
    }
    let n = 0;
    let handled: LogLine | undefined;
    await waitUntil(
      async () => {
        handled = await postHandled(daemon, "t.rapid", n++, "rapid");
        return handled.rev === 100;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: () => `a run on the last save (the last ran on rev ${String(handled?.rev)})` },
    ).catch(() => undefined);
    expect(handled?.rev).toBe(100);
    const swaps = daemon.logs.filter(isSwap("rapid"));
    expect(swaps.length).toBeGreaterThan(1);
    // Coalesced: a reload reads the latest save, not one reload per write.
    expect(swaps.length).toBeLessThan(50);
    expect(daemon.logs.filter(isFailure("rapid"))).toEqual([]);
    expect(await pluginStatus(daemon, "rapid")).toMatchObject({ state: "loaded", lastError: null });
  });

  it("produces one reload for an editor's save through a temporary file and for a save in several writes", async () => {
    project.write("atomic.ts", handlerSource("t.atomic", "atomic", 1));
    await daemon.waitForLog(isSwap("atomic", 1));

    // Save through a temporary file renamed over the plugin (vim's and many IDEs' way).
    writeFileSync(file("atomic.ts.tmp~"), handlerSource("t.atomic", "atomic", 2));
    renameSync(file("atomic.ts.tmp~"), file("atomic.ts"));
    await daemon.waitForLog(isSwap("atomic", 2));
    expect((await postHandled(daemon, "t.atomic", 1, "atomic")).rev).toBe(2);

    // A save in several writes: the first half alone would not compile.
    const source = handlerSource("t.atomic", "atomic", 3);
    const fd = openSync(file("atomic.ts"), "w");
    writeSync(fd, source.slice(0, source.length / 2));
    await pause(5);
    writeSync(fd, source.slice(source.length / 2));
    closeSync(fd);
    await daemon.waitForLog(isSwap("atomic", 3));
    expect((await postHandled(daemon, "t.atomic", 2, "atomic")).rev).toBe(3);
    // A bounded watch that no fourth reload follows (an absence has no signal to wait on).
    await pause(300);
    expect(daemon.logs.filter(isSwap("atomic")).map((l) => l.version)).toEqual([1, 2, 3]);
    expect(daemon.logs.filter(isFailure("atomic"))).toEqual([]);
  });

  it("runs every event posted during 20 reloads exactly once, on some version", async () => {
    project.write("stream.ts", handlerSource("t.stream", "stream", 0));
    await daemon.waitForLog(isSwap("stream", 1));
    const posted: string[] = [];
    let posting = true;
    const poster = (async () => {
      for (let n = 0; posting; n++) {
        const { status, body } = await daemon.post("t.stream", { n });
        expect(status).toBe(202);
        posted.push(body.id);
      }
    })();
    for (let v = 1; v <= 20; v++) {
      project.write("stream.ts", handlerSource("t.stream", "stream", v));
      await daemon.waitForLog(isSwap("stream", v + 1));
    }
    posting = false;
    await poster;

    const handled = (l: LogLine) => l.msg === "stream handled";
    await daemon.waitForLogs(handled, posted.length, 20_000);
    // Every run recorded as done: no retry can still add a second handling.
    await waitUntil(
      async () => {
        const { runs } = await daemon.getJson("/api/runs?plugin=stream&status=pending&limit=10");
        const { runs: running } = await daemon.getJson("/api/runs?plugin=stream&status=running&limit=10");
        return runs.length === 0 && running.length === 0;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    ).catch(() => undefined); // the counts below say what is wrong
    const lines = daemon.logs.filter(handled);
    const counts = new Map<string, number>();
    for (const line of lines) counts.set(String(line.eventId), (counts.get(String(line.eventId)) ?? 0) + 1);
    expect(posted.length).toBeGreaterThan(20);
    expect(new Set(counts.keys())).toEqual(new Set(posted));
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
    // The events really spread over the versions being swapped.
    expect(new Set(lines.map((l) => l.rev)).size).toBeGreaterThan(5);
  });

  it("reloads the importers of an edited shared module, and only them", async () => {
    for (const name of ["importer-one", "importer-two", "importer-three", "bystander"]) {
      expect(await pluginStatus(daemon, name)).toMatchObject({ state: "loaded", version: 1 });
    }
    const names = (await daemon.getJson("/api/plugins")).plugins.map((p: { name: string }) => p.name);
    expect(names).not.toContain("lib");
    expect(names).not.toContain("label");
    expect(names).not.toContain("_format");

    project.write("lib/label.ts", `export const LABEL = "two";\n`);
    await daemon.waitForLog(isSwap("importer-one", 2));
    await daemon.waitForLog(isSwap("importer-two", 2));
    const { body } = await daemon.post("t.shared", { n: 5 });
    const one = await daemon.waitForLog((l) => l.msg === "importer-one handled" && l.eventId === body.id);
    expect(one.label).toBe("two");
    await daemon.waitForLog((l) => l.msg === "bystander handled" && l.eventId === body.id);
    expect(await pluginStatus(daemon, "importer-three")).toMatchObject({ version: 1 });
    expect(await pluginStatus(daemon, "bystander")).toMatchObject({ version: 1 });

    project.write("_format.ts", `export function format(n: number): string {\n  return \`no. \${n}\`;\n}\n`);
    await daemon.waitForLog(isSwap("importer-three", 2));
    const second = await daemon.post("t.shared", { n: 6 });
    const three = await daemon.waitForLog((l) => l.msg === "importer-three handled" && l.eventId === second.body.id);
    expect(three.label).toBe("no. 6");
    await daemon.waitForLog((l) => l.msg === "bystander handled" && l.eventId === second.body.id);
    const versions = Object.fromEntries(
      await Promise.all(["importer-one", "importer-two", "importer-three", "bystander"].map(async (name) => [name, (await pluginStatus(daemon, name)).version])),
    );
    expect(versions).toEqual({ "importer-one": 2, "importer-two": 2, "importer-three": 2, bystander: 1 });
  });

  it("recovers the importers of a broken shared module once it is fixed", async () => {
    project.write("lib/label.ts", `export const LABEL = ;\n`);
    const failure = await daemon.waitForLog(isFailure("importer-one"));
    expect(failure).toMatchObject({ code: "HOOKD_PLUGIN_COMPILE", location: expect.stringMatching(/^plugins\/lib\/label\.ts:1:\d+$/), servingVersion: 2 });
    project.write("lib/label.ts", `export const LABEL = "three";\n`);
    await daemon.waitForLog(isSwap("importer-one", 4));
    await daemon.waitForLog(isSwap("importer-two", 4));
    const { body } = await daemon.post("t.shared", { n: 7 });
    expect((await daemon.waitForLog((l) => l.msg === "importer-two handled" && l.eventId === body.id)).label).toBe("three");
  });

  it("keeps the old config when an edit makes it invalid, and applies a valid edit with its new events", async () => {
    // A plugin for an event the catalog does not have yet fails with its code...
    project.write("late.ts", handlerSource("t.late", "late", 1));
    expect((await daemon.waitForLog(isFailure("late"))).code).toBe("HOOKD_PLUGIN_UNKNOWN_EVENT");

    writeFileSync(path.join(project.dir, "events.config.ts"), configSource({ extra: ["t.late"], settings: `delivery: { maxAttempts: "many" },` }));
    const refused = await daemon.waitForLog((l) => l.component === "config" && l.level === 50);
    expect(refused.code).toBe("HOOKD_CONFIG_INVALID");
    expect(refused.msg).toContain("delivery.maxAttempts");
    expect(Object.keys((await daemon.getJson("/api/catalog")).events)).not.toContain("t.late");
    expect((await daemon.post("t.late", { n: 1 })).status).toBe(404);
    expect((await postHandled(daemon, "t.add", 9, "added")).rev).toBe(1);

    // ...and loads once a valid edit adds that event.
    writeFileSync(path.join(project.dir, "events.config.ts"), configSource({ extra: ["t.late"] }));
    const applied = await daemon.waitForLog((l) => l.component === "config" && l.msg === "config reloaded");
    expect(applied.changed).toContain("events");
    await daemon.waitForLog(isSwap("late"));
    expect(Object.keys((await daemon.getJson("/api/catalog")).events)).toContain("t.late");
    expect((await postHandled(daemon, "t.late", 1, "late")).rev).toBe(1);
    expect(await pluginStatus(daemon, "late")).toMatchObject({ state: "loaded", lastError: null });
  });
});

describe("hot reload switched off", () => {
  it("does not load a plugin dropped in while plugins.watch is false", async () => {
    const project = new TestProject({ config: configSource({ settings: "plugins: { watch: false }," }) });
    const daemon = new TestDaemon(project);
    try {
      await daemon.start();
      project.write("ignored.ts", handlerSource("t.add", "ignored", 1));
      // A bounded watch that the new file is not loaded (an absence has no signal to wait on).
      await pause(500);
      expect(await pluginStatus(daemon, "ignored")).toBeUndefined();
      expect(daemon.logs.some((l) => l.component === "plugins" && l.plugin === "ignored")).toBe(false);
    } finally {
      await daemon.stop();
      project.remove();
    }
  });
});

describe("hookd dev", () => {
  it("prints one readable line per reload: version and times, or the error and what still serves", async () => {
    const project = new TestProject({ config: configSource() });
    const child = spawn(process.execPath, [BIN, "dev", "--config", path.join(project.dir, "events.config.ts")], {
      cwd: project.dir,
      env: { ...process.env, HOOKD_PORT: "0", HOOKD_HOST: "127.0.0.1", NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: string[] = [];
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
    });
    const waitForLine = (pattern: RegExp): Promise<string> =>
      waitUntil(() => lines.find((line) => pattern.test(line)), { timeoutMs: 10_000, intervalMs: 50, what: () => `a line matching ${pattern}:\n${lines.join("\n")}` });
    try {
      await waitForLine(/hookd ready/);
      project.write("hello.ts", handlerSource("t.dev", "hello", 1));
      expect(await waitForLine(/hello v1/)).toMatch(/^↻ hello v1 loaded {2}compile \d+\.\d ms {2}load \d+\.\d ms$/);
      project.write("hello.ts", `import { on } from "hookd";\non("t.dev", (event, ctx) => {\n  ctx.log.info({}, "hi"\n});\n`);
      expect(await waitForLine(/hello v2/)).toBe('✗ hello v2 failed: plugins/hello.ts:4:1 HOOKD_PLUGIN_COMPILE Expected ")" but found "}" — v1 still serves');
      rmSync(path.join(project.pluginsDir, "hello.ts"));
      await waitForLine(/^− hello removed/);
      // One line per reload: the logger does not repeat them.
      expect(lines.filter((line) => line.includes("hello"))).toHaveLength(3);

      writeFileSync(path.join(project.dir, "events.config.ts"), configSource({ settings: "log: { level: \"loud\" }," }));
      expect(await waitForLine(/^✗ config/)).toMatch(/^✗ config HOOKD_CONFIG_INVALID .*log\.level.* — the previous config stays in force$/);
      // The refusal is that one line, not repeated by the logger.
      expect(lines.filter((line) => line.includes("log.level"))).toHaveLength(1);
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once("exit", resolve)));
      project.remove();
    }
  });
});
