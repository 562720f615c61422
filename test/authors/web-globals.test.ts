// Issue 20 for plugin authors: the isolate's web globals are the same in the test kit, in the
// types `hookd types` writes (checked with the real tsc), and in `hookd check`. The plugin is
// test/fixtures/plugins/web-signer/signer.ts, which the daemon test runs too.
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlugin } from "hookd/testing";
import { checkProject } from "../../core/check.ts";
import { writeEnvDeclaration } from "../../core/env-types.ts";
import { FIXTURES, REPO, assertFreshBuild } from "../helpers/daemon.ts";

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: { "web.go": z.object({ base: z.string() }) },
  sandbox: { timeoutMs: 5000 },
});
`;
const SIGNER = path.join(FIXTURES, "plugins", "web-signer", "signer.ts");
const NODE_AND_DOM = `import { on } from "hookd";
on("web.go", async () => {
  const home: string | undefined = process.env.HOME;
  document.title = "x";
  console.log(home, Buffer.from("x"));
});
`;

let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "hookd-webglobals-"));
  mkdirSync(file("plugins"));
  mkdirSync(file("node_modules"));
  writeFileSync(file("events.config.ts"), CONFIG);
  copyFileSync(SIGNER, file("plugins/signer.ts"));
  // As in an installed project: hookd from its package (the compiled build), and Node's types
  // present (the project's tests use them), which plugin files must still not see.
  symlinkSync(REPO, file("node_modules/hookd"), "dir");
  symlinkSync(path.join(REPO, "node_modules/@types"), file("node_modules/@types"), "dir");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the test kit", () => {
  it("runs the web-globals plugin: HMAC, setTimeout, URLSearchParams, btoa, Request/Response, AbortSignal.timeout", async () => {
    const plugin = await loadPlugin(file("plugins/signer.ts"), { config: file("events.config.ts"), secrets: { SIGNING_KEY: "s3cr3t-key", API_USER: "ops:pa:ss" } });
    try {
      plugin.fetch.respond("https://api.example.com/hook*", { status: 200, headers: { "content-type": "text/plain" }, body: "signed ok" });
      // Answers after the plugin's 100 ms timeout: the plugin's signal gives up first.
      plugin.fetch.respond("https://api.example.com/slow", () => new Promise((resolve) => setTimeout(() => resolve({ status: 200, body: "late" }), 1500).unref()));
      const run = await plugin.send("web.go" as never, { base: "https://api.example.com" } as never);
      expect(run.ok, JSON.stringify(run)).toBe(true);
      const body = JSON.stringify({ deal: 42, note: "naïve 💸" });
      const signature = createHmac("sha256", "s3cr3t-key").update(body).digest("hex");
      const done = plugin.logs.find((line) => line.msg === "web done")!;
      expect(done.fields).toMatchObject({ signature, isResponse: true, status: 200, contentType: "text/plain", legacyHeader: "text/plain", answer: "signed ok", aborted: "TimeoutError" });
      expect(done.fields!.waited as number).toBeGreaterThanOrEqual(45);
      const hook = plugin.fetch.calls.find((call) => call.url.includes("/hook"))!;
      expect(hook).toMatchObject({ method: "POST", url: `https://api.example.com/hook?sig=${signature}&q=a+b%26c`, body });
      expect(hook.headers.authorization).toBe(`Basic ${Buffer.from("ops:pa:ss").toString("base64")}`);
    } finally {
      await plugin.close();
    }
  }, 30_000);
});

/** The real tsc on the plugins' tsconfig.json that `hookd types` wrote. */
function tsc(): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, "node_modules/typescript/bin/tsc"), "-p", file("plugins/tsconfig.json")], { cwd: dir, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe("editor types and hookd check know the isolate's globals, not Node's or the DOM's", () => {
  beforeAll(async () => {
    assertFreshBuild();
    const written = await writeEnvDeclaration(file("events.config.ts"));
    expect(written.map((name) => path.relative(dir, name))).toEqual(["hookd-env.d.ts", "hookd-globals.d.ts", path.join("plugins", "tsconfig.json")]);
  });

  it("writes a plugins tsconfig with ES2023 and no types, and a globals file with Request and Response", () => {
    const tsconfig = readFileSync(file("plugins/tsconfig.json"), "utf8");
    expect(tsconfig).toContain('"types": []');
    expect(tsconfig).toContain('"ES2023"');
    expect(readFileSync(file("hookd-globals.d.ts"), "utf8")).toMatch(/class Response \{[\s\S]*class Request|class Request \{[\s\S]*class Response/);
  });

  it("tsc passes the plugin that uses the globals and fails one that uses process or document", async () => {
    const good = await tsc();
    expect(good.output).toBe("");
    expect(good.code).toBe(0);
    writeFileSync(file("plugins/node-and-dom.ts"), NODE_AND_DOM);
    try {
      const bad = await tsc();
      expect(bad.code).not.toBe(0);
      expect(bad.output).toMatch(/node-and-dom\.ts\(3,[0-9]+\): error TS\d+: Cannot find name 'process'/);
      expect(bad.output).toMatch(/node-and-dom\.ts\(4,[0-9]+\): error TS\d+: Cannot find name 'document'/);
      expect(bad.output).toMatch(/Cannot find name 'Buffer'/);
      expect(bad.output).not.toContain("signer.ts");
    } finally {
      unlinkSync(file("plugins/node-and-dom.ts"));
    }
  }, 120_000);

  it("hookd check passes the plugin and reports process and document in the other", async () => {
    const check = async () => {
      let text = "";
      const out = new Writable({ write: (chunk, _encoding, done) => ((text += String(chunk)), done()) });
      const code = await checkProject({ configFile: file("events.config.ts"), cwd: dir }, out);
      return { code, text };
    };
    const good = await check();
    expect(good.text).toContain("no problems");
    expect(good.code).toBe(0);
    writeFileSync(file("plugins/node-and-dom.ts"), NODE_AND_DOM);
    try {
      const bad = await check();
      expect(bad.code).toBe(1);
      expect(bad.text).toMatch(/node-and-dom\.ts:3:\d+: HOOKD_PLUGIN_TYPECHECK: TS\d+: Cannot find name 'process'/);
      expect(bad.text).toMatch(/node-and-dom\.ts:4:\d+: HOOKD_PLUGIN_TYPECHECK: TS\d+: Cannot find name 'document'/);
      expect(bad.text).not.toMatch(/signer\.ts:\d+/);
    } finally {
      unlinkSync(file("plugins/node-and-dom.ts"));
    }
  }, 120_000);
});
