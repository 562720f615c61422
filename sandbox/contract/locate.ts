/**
 * Where hookd's own files are, whether this code runs from the TypeScript sources (vitest, the
 * bench harness) or from the compiled build in dist/ (bin/hookd.js, an installed package). In
 * dist, a source file `x.ts` is `x.js` with its types in `x.d.ts`, and the package root (with
 * package.json and templates/) is one folder further up, so no caller spells `../..` itself.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** True when this module was loaded from dist/ (compiled JavaScript) rather than from source. */
export const COMPILED = import.meta.url.endsWith(".js");

/** The package's name on npm (the product and the CLI are `hookd`). */
export const PACKAGE_NAME = "hookd-daemon";

/**
 * A sibling of the calling module, named as in the sources (`"./worker.ts"`): the `.js` file
 * when the caller itself runs compiled.
 */
export function ownFile(base: string, relative: string): string {
  const file = fileURLToPath(new URL(relative, base));
  return base.endsWith(".js") ? file.replace(/\.ts$/, ".js") : file;
}

/** The type declarations of a source file: the file itself from source, its `.d.ts` compiled. */
export function ownTypes(base: string, relative: string): string {
  const file = fileURLToPath(new URL(relative, base));
  return base.endsWith(".js") ? file.replace(/\.ts$/, ".d.ts") : file;
}

const FOUND = findPackage(path.dirname(fileURLToPath(import.meta.url)));

/** The folder with hookd's package.json: walks up, so it is right from core/ and dist/core/ alike. */
export const PACKAGE_ROOT: string = FOUND.dir;

/** hookd's package.json, read once. */
export const PACKAGE_JSON: { name: string; version: string; devDependencies?: Record<string, string> } = FOUND.json;

function findPackage(from: string): { dir: string; json: typeof PACKAGE_JSON } {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    // Only hookd's own: a package.json of some other name on the way up is not ours.
    if (existsSync(file)) {
      const json = JSON.parse(readFileSync(file, "utf8")) as typeof PACKAGE_JSON;
      if (json.name === PACKAGE_NAME) return { dir, json };
    }
    if (path.dirname(dir) === dir) throw new Error(`hookd: no package.json named ${PACKAGE_NAME} above ${from}`);
  }
}
