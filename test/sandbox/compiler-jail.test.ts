// The compiler as a way into the host: each attack is a real plugin file in a real temporary
// project, compiled the way the daemon compiles it. A plugin must never bundle a file outside
// its own file or folder, plugins/lib/, plugins/_* modules and node_modules, whatever the import
// syntax; the refusal is a compile error with its own code, naming the import and its line.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compilePlugin, type CompileOptions } from "../../core/compile/compile-plugin.ts";
import { HookdError, type HookdErrorCode } from "../../sandbox/contract/errors.ts";

// Outside the project: what an attacker wants (stands in for /etc/passwd and friends).
const outside = mkdtempSync(path.join(tmpdir(), "hookd-outside-"));
const SECRET = "HOOKD_TOKEN=outside-secret-3f9a";
writeFileSync(path.join(outside, "secret.txt"), SECRET);
writeFileSync(path.join(outside, "secret.json"), JSON.stringify({ token: SECRET }));
writeFileSync(path.join(outside, "secret.ts"), `export default ${JSON.stringify(SECRET)};`);
mkdirSync(path.join(outside, "pkg"));
writeFileSync(path.join(outside, "pkg/package.json"), JSON.stringify({ name: "linked-pkg", main: "index.js" }));
writeFileSync(path.join(outside, "pkg/index.js"), `module.exports = ${JSON.stringify(SECRET)};`);

const root = mkdtempSync(path.join(tmpdir(), "hookd-jail-"));
const pluginsDir = path.join(root, "plugins");
mkdirSync(path.join(pluginsDir, "lib"), { recursive: true });
writeFileSync(path.join(root, "events.config.ts"), `export default { secret: ${JSON.stringify(SECRET)} };`);
mkdirSync(path.join(root, "data"));
writeFileSync(path.join(root, "data/hookd.db"), SECRET);
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const options: CompileOptions = {
  root,
  pluginsDir,
  protectedPaths: [path.join(root, "events.config.ts"), path.join(root, "data")],
};

function write(file: string, source: string): string {
  const target = path.join(pluginsDir, file);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, source);
  return target;
}

async function refused(entry: string, code: HookdErrorCode | HookdErrorCode[] = "HOOKD_COMPILE_FORBIDDEN_IMPORT"): Promise<HookdError> {
  let compiled: { code: string } | undefined;
  try {
    compiled = await compilePlugin(entry, options);
  } catch (error) {
    expect(error).toBeInstanceOf(HookdError);
    expect([code].flat(), (error as Error).message).toContain((error as HookdError).code);
    expect((error as Error).message).not.toContain(SECRET);
    return error as HookdError;
  }
  throw new Error(`expected ${code}; it compiled${compiled.code.includes(SECRET) ? " WITH THE SECRET" : ""}`);
}

const rel = (file: string) => path.relative(root, file);

describe("compile jail: imports that leave the plugin's files", () => {
  const vectors: Array<[name: string, source: string]> = [
    ["absolute text import", `import s from "${outside}/secret.txt" with { type: "text" };`],
    ["absolute bytes import", `import s from "${outside}/secret.txt" with { type: "bytes" };`],
    ["absolute json import", `import s from "${outside}/secret.json";`],
    ["/proc/self/environ as text", `import s from "/proc/self/environ" with { type: "text" };`],
    ["/etc/passwd as text", `import s from "/etc/passwd" with { type: "text" };`],
    ["climbing out with ..", `import s from "../../${path.basename(outside)}/secret.ts";`],
    ["the config file", `import s from "../events.config.ts";`],
    ["the store's database", `import s from "../data/hookd.db" with { type: "text" };`],
    ["an attribute asking for the file loader", `import s from "${outside}/secret.txt" with { type: "file" };`],
    ["require()", `const s = require("${outside}/secret.json");`],
    ["dynamic import of a constant", `const s = await import("${outside}/secret.ts");`],
  ];
  for (const [name, source] of vectors) {
    it(`refuses ${name}, naming the import and its line`, async () => {
      const file = write(`${name.replace(/\W+/g, "-")}.ts`, `import { on } from "hookd";\n${source}\non("deal.close", (e, ctx) => ctx.log.info(String(s)));\n`);
      const error = await refused(file);
      expect(error.message).toContain(`${rel(file)}:2:`);
    });
  }

  it("turns on no loader through attributes for the plugin's own files either (file, copy, dataurl)", async () => {
    write("loaders/notes.txt", "plain notes");
    for (const type of ["file", "copy", "dataurl", "base64"]) {
      const error = await refused(write("loaders/index.ts", `import s from "./notes.txt" with { type: "${type}" };\nconsole.log(s);\n`), "HOOKD_PLUGIN_COMPILE");
      expect(error.message).toContain("plugins/loaders/");
    }
  });

  it("refuses a glob import that climbs out (esbuild expands it without asking onResolve)", async () => {
    const file = write("glob.ts", `import { on } from "hookd";\nconst name = String(Date.now());\nconst s = require("../../${path.basename(outside)}/" + name);\non("deal.close", (e, ctx) => ctx.log.info(String(s)));\n`);
    await refused(file);
  });

  it("refuses a CSS @import and url() out of the tree", async () => {
    write("styled/look.css", `@import "${outside}/secret.txt";\n`);
    await refused(write("styled/index.ts", `import "./look.css";\n`));
  });

  it("refuses a symlink inside the plugin's folder that leads out (checked on the real path)", async () => {
    mkdirSync(path.join(pluginsDir, "linker"), { recursive: true });
    symlinkSync(path.join(outside, "secret.txt"), path.join(pluginsDir, "linker/notes.txt"));
    const error = await refused(write("linker/index.ts", `import s from "./notes.txt";\nconsole.log(s);\n`));
    expect(error.message).toContain("plugins/linker/index.ts:1:");
  });

  it("refuses a plugin file that is itself a symlink out, and a lib/ that is one", async () => {
    symlinkSync(path.join(outside, "secret.ts"), path.join(pluginsDir, "alias.ts"));
    await refused(path.join(pluginsDir, "alias.ts"));
    const other = mkdtempSync(path.join(tmpdir(), "hookd-jail-lib-"));
    try {
      mkdirSync(path.join(other, "plugins"));
      symlinkSync(outside, path.join(other, "plugins/lib"));
      writeFileSync(path.join(other, "plugins/uses-lib.ts"), `import s from "./lib/secret.ts";\nconsole.log(s);\n`);
      await expect(compilePlugin(path.join(other, "plugins/uses-lib.ts"), { root: other })).rejects.toMatchObject({ code: "HOOKD_COMPILE_FORBIDDEN_IMPORT" });
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("refuses another plugin's folder: a plugin reads its own files only", async () => {
    write("neighbour/private.ts", `export default "neighbour";`);
    write("neighbour/index.ts", `import p from "./private.ts"; console.log(p);`);
    await refused(write("nosy.ts", `import p from "./neighbour/private.ts";\nconsole.log(p);\n`));
  });

  it("reads no tsconfig.json from the plugin's folder (paths, extends)", async () => {
    write("configured/evil.ts", `export default "mapped";`);
    write("configured/tsconfig.json", JSON.stringify({ extends: path.join(outside, "secret.json"), compilerOptions: { baseUrl: ".", paths: { "secret-alias": [`${outside}/secret.ts`] } } }));
    const error = await refused(write("configured/index.ts", `import s from "secret-alias";\nconsole.log(s);\n`), "HOOKD_PLUGIN_COMPILE");
    expect(error.message).toContain("secret-alias");
  });

  it("bundles nothing through package.json `imports` that map out of the tree", async () => {
    // esbuild itself refuses targets that are absolute or climb; the jail would refuse the rest.
    write("mapped/package.json", JSON.stringify({ name: "mapped", imports: { "#secret": `${outside}/secret.ts`, "#climb": `./../../../${path.basename(outside)}/secret.ts` } }));
    await refused(write("mapped/index.ts", `import s from "#secret";\nconsole.log(s);\n`), ["HOOKD_PLUGIN_COMPILE", "HOOKD_COMPILE_FORBIDDEN_IMPORT"]);
    await refused(write("mapped/index.ts", `import s from "#climb";\nconsole.log(s);\n`), ["HOOKD_PLUGIN_COMPILE", "HOOKD_COMPILE_FORBIDDEN_IMPORT"]);
  });

  it("quotes nothing of a package.json that is a symlink out (esbuild reads it outside onLoad)", async () => {
    mkdirSync(path.join(pluginsDir, "quoted"), { recursive: true });
    symlinkSync(path.join(outside, "secret.txt"), path.join(pluginsDir, "quoted/package.json"));
    write("quoted/helper.ts", `export default 1;`);
    const error = await refused(write("quoted/index.ts", `import h from "./helper.ts";\nconsole.log(h);\n`));
    expect(error.message).not.toContain("HOOKD_TOKEN");
  });

  it("refuses a package in node_modules that is a symlink out of the project (npm link)", async () => {
    mkdirSync(path.join(root, "node_modules"), { recursive: true });
    symlinkSync(path.join(outside, "pkg"), path.join(root, "node_modules/linked-pkg"));
    await refused(write("linked.ts", `import s from "linked-pkg";\nconsole.log(s);\n`));
  });

  it("leaves new URL(..., import.meta.url) and require.resolve alone: nothing is read or bundled", async () => {
    const compiled = await compilePlugin(
      write("url.ts", `const u = new URL("${outside}/secret.txt", import.meta.url);\nconst r = require.resolve("${outside}/secret.txt");\nconsole.log(String(u), r);\n`),
      options,
    );
    expect(compiled.code).not.toContain(SECRET);
  });

  it("still bundles what a plugin may read: its folder, lib/, _modules, packages, with attributes", async () => {
    write("lib/money.ts", `export const money = (s: string) => s + " RUB";`);
    write("_shared.ts", `export const shared = "from-underscore";`);
    write("good/notes.txt", "from-text-file");
    write("good/data.json", JSON.stringify({ from: "json-file" }));
    mkdirSync(path.join(root, "node_modules/real-pkg"), { recursive: true });
    writeFileSync(path.join(root, "node_modules/real-pkg/package.json"), JSON.stringify({ name: "real-pkg", main: "index.js" }));
    writeFileSync(path.join(root, "node_modules/real-pkg/index.js"), `module.exports = "from-package";`);
    const entry = write(
      "good/index.ts",
      `import { on } from "hookd";
import { money } from "../lib/money.ts";
import { shared } from "../_shared.ts";
import notes from "./notes.txt" with { type: "text" };
import bytes from "./notes.txt" with { type: "bytes" };
import data from "./data.json";
import pkg from "real-pkg";
on("deal.close", (e, ctx) => ctx.log.info([money("1"), shared, notes, bytes.length, data.from, pkg].join()));
`,
    );
    const compiled = await compilePlugin(entry, options);
    for (const text of ["RUB", "from-underscore", "from-text-file", "json-file", "from-package"]) expect(compiled.code).toContain(text);
  });
});

describe("compile jail: files that are not plain source", () => {
  it("refuses an import of a FIFO in the plugin's own folder without blocking", async () => {
    mkdirSync(path.join(pluginsDir, "piped"), { recursive: true });
    execFileSync("mkfifo", [path.join(pluginsDir, "piped/data.txt")]);
    await refused(write("piped/index.ts", `import s from "./data.txt";\nconsole.log(s);\n`), "HOOKD_COMPILE_NOT_A_FILE");
  });

  it("bounds a compile stuck on a FIFO esbuild opens itself (package.json), then compiles the next plugin", async () => {
    mkdirSync(path.join(pluginsDir, "stuck"), { recursive: true });
    execFileSync("mkfifo", [path.join(pluginsDir, "stuck/package.json")]);
    write("stuck/helper.ts", `export default 1;`);
    const stuck = write("stuck/index.ts", `import h from "./helper.ts";\nconsole.log(h);\n`);
    await expect(compilePlugin(stuck, { ...options, limits: { timeoutMs: 1500 } })).rejects.toMatchObject({ code: "HOOKD_COMPILE_TIMEOUT" });
    const next = await compilePlugin(write("after-stuck.ts", `console.log("after stuck");\n`), options);
    expect(next.code).toContain("after stuck");
  });

  it("refuses a source file over plugins.maxSourceBytes, and files over plugins.maxBundleBytes together", async () => {
    const file = write("big.ts", `export const x = "${"a".repeat(64 * 1024)}";\n`);
    await expect(compilePlugin(file, { ...options, limits: { maxSourceBytes: 16 * 1024 } })).rejects.toMatchObject({ code: "HOOKD_COMPILE_TOO_LARGE" });
    for (let i = 0; i < 8; i++) write(`many/part${i}.ts`, `export const p${i} = "${String(i).repeat(8 * 1024)}";\n`);
    const many = write("many/index.ts", Array.from({ length: 8 }, (_, i) => `import { p${i} } from "./part${i}.ts";\nconsole.log(p${i});\n`).join(""));
    expect((await compilePlugin(many, { ...options, limits: { maxSourceBytes: 16 * 1024 } })).code).toContain("7777");
    await expect(compilePlugin(many, { ...options, limits: { maxSourceBytes: 16 * 1024, maxBundleBytes: 32 * 1024 } })).rejects.toMatchObject({ code: "HOOKD_COMPILE_TOO_LARGE" });
  });
});

describe("compiler survival: a file that kills esbuild's service", () => {
  it("cuts a compile past its time bound (HOOKD_COMPILE_TIMEOUT) and compiles the next one on a fresh service", async () => {
    const slow = write("slow.ts", `import { on, z } from "hookd";\nconst s = z.object({ a: z.string() });\non("deal.close", (e, ctx) => ctx.log.info(s.parse({ a: "x" }).a));\n`);
    // One millisecond: no esbuild build of zod finishes in it, on any machine.
    await expect(compilePlugin(slow, { ...options, limits: { timeoutMs: 1 } })).rejects.toMatchObject({ code: "HOOKD_COMPILE_TIMEOUT" });
    expect((await compilePlugin(slow, options)).code).toContain("__hookd");
  });

  it("refuses deep nesting by default, before esbuild parses it (HOOKD_COMPILE_TOO_LARGE)", async () => {
    const file = write("deep.ts", `export const x = ${"[".repeat(2 * 1024 * 1024)}`);
    await refused(file, "HOOKD_COMPILE_TOO_LARGE");
  });

  it("with the check off: fails the culprit with HOOKD_COMPILE_CRASHED, and the plugins compiled beside it and after it compile", async () => {
    const crasher = write("crasher.ts", `export const x = ${"[".repeat(2 * 1024 * 1024)}`);
    const good = (n: number) => write(`fine-${n}.ts`, `import { on } from "hookd";\non("deal.close", (e, ctx) => ctx.log.info("fine ${n}"));\n`);
    // A generous time bound: growing a gigabyte of parser stack takes seconds on a busy machine.
    const off = { ...options, limits: { maxNesting: 0, timeoutMs: 120_000 } };
    // In flight together: the service dies under all of them, and only the culprit may fail.
    const [crashed, ...beside] = await Promise.allSettled([compilePlugin(crasher, off), compilePlugin(good(1), off), compilePlugin(good(2), off)]);
    expect(crashed).toMatchObject({ status: "rejected", reason: { code: "HOOKD_COMPILE_CRASHED" } });
    for (const result of beside) expect(result.status, String((result as PromiseRejectedResult).reason)).toBe("fulfilled");
    const after = await compilePlugin(good(3), off);
    expect(after.code).toContain("fine 3");
  }, 120_000);
});
