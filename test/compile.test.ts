// Plugins compile with esbuild into one script for an isolate: hookd maps to the runtime,
// npm packages are bundled, Node built-ins are refused with a message naming the file.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../core/compile/compile-plugin.ts";
import { HookdError } from "../sandbox/contract/errors.ts";

const root = mkdtempSync(path.join(tmpdir(), "hookd-compile-"));
mkdirSync(path.join(root, "plugins/lib"), { recursive: true });
const write = (file: string, source: string) => {
  writeFileSync(path.join(root, file), source);
  return path.join(root, file);
};
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function compileError(file: string): Promise<HookdError> {
  try {
    await compilePlugin(file, { root });
  } catch (error) {
    expect(error).toBeInstanceOf(HookdError);
    return error as HookdError;
  }
  throw new Error("expected a compile error");
}

describe("compilePlugin", () => {
  it("bundles shared modules and zod, and lists the inputs for hot reload", async () => {
    write("plugins/lib/format.ts", `export const money = (s: string) => s + " RUB";`);
    const entry = write(
      "plugins/uses-lib.ts",
      `import { on, z } from "hookd"; import { money } from "./lib/format.ts";
       const schema = z.object({ a: z.string() });
       on("deal.close", (e, ctx) => ctx.log.info(money(e.summa) + schema.parse({ a: "x" }).a));`,
    );
    const compiled = await compilePlugin(entry, { root });
    expect(compiled.code).toContain("RUB");
    expect(compiled.code).toContain("__hookd");
    expect(compiled.inputs).toEqual(expect.arrayContaining([entry, path.join(root, "plugins/lib/format.ts")]));
    expect(JSON.parse(compiled.sourceMap).sources).toContain("plugins/uses-lib.ts");
  });

  it("leaves zod out of a plugin that does not use it", async () => {
    const compiled = await compilePlugin(write("plugins/small.ts", `import { on } from "hookd"; on("deal.close", () => {});`), { root });
    expect(compiled.code.length).toBeLessThan(2000);
  });

  it("refuses Node built-ins, naming the file, line and module", async () => {
    for (const module of ["fs", "node:child_process", "fs/promises", "net"]) {
      const error = await compileError(write("plugins/bad.ts", `\nimport * as m from "${module}";\nconsole.log(m);`));
      expect(error.code).toBe("HOOKD_PLUGIN_NODE_BUILTIN");
      expect(error.message).toContain(`plugins/bad.ts:2:`);
      expect(error.message).toContain(`"${module}"`);
    }
  });

  it("reports syntax errors with file:line:column", async () => {
    const error = await compileError(write("plugins/syntax.ts", `import { on } from "hookd";\non("deal.close", (e) => {\n  const x = ;\n});`));
    expect(error.code).toBe("HOOKD_PLUGIN_COMPILE");
    expect(error.message).toMatch(/plugins\/syntax\.ts:3:\d+/);
    expect(error.issues).toEqual([expect.objectContaining({ file: "plugins/syntax.ts", line: 3 })]);
  });
});
