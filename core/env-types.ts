/**
 * `hookd-env.d.ts`: the declaration that registers a project's catalog with the `hookd` module,
 * so editors type `on("deal.close", e => e.summa)` and flag `on("deal.closed", ...)`. It imports
 * the config's type, so it stays right as the catalog changes; `hookd types` writes it, and
 * `hookd dev`, `hookd check` and `hookd init` make sure it is there. Kept apart from check.ts so
 * writing it does not load the TypeScript compiler.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { WEB_GLOBALS } from "./web-globals.ts";

/** The declaration file beside the config. */
export function envDeclarationPath(configFile: string): string {
  return path.join(path.dirname(configFile), "hookd-env.d.ts");
}

/**
 * The isolate's web globals (setTimeout, URL, crypto, ...), declared for a project without
 * Node's types: there they are all a plugin sees. A project with @types/node (its tests or
 * tooling run in Node) keeps Node's declarations of the same names, which are a superset:
 * declaring both in one program clashes (a timer id is a number here, a Timeout in Node).
 */
function webGlobals(configFile: string): string {
  try {
    createRequire(configFile).resolve("@types/node/package.json");
    return "";
  } catch {
    return `\ndeclare global {${WEB_GLOBALS}}\n`;
  }
}

/**
 * Writes the declaration unless it already says the same: `hookd dev` and `hookd check` call it
 * every time, and an unchanged file must not make editors or watchers re-read it.
 */
export async function writeEnvDeclaration(configFile: string): Promise<string> {
  const target = envDeclarationPath(configFile);
  const contents = `// Written by \`hookd types\`: gives editors the catalog's types for \`import ... from "hookd"\`.
import type config from "./${path.basename(configFile)}";

declare module "hookd" {
  interface Register {
    config: typeof config;
  }
}
${webGlobals(configFile)}`;
  const current = await readFile(target, "utf8").catch(() => undefined);
  if (current !== contents) {
    // Written beside and renamed into place: an editor or `tsc` reading it never sees half a file.
    const partial = `${target}.${process.pid}.tmp`;
    await writeFile(partial, contents);
    await rename(partial, target);
  }
  return target;
}
