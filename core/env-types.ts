/**
 * `hookd-env.d.ts`: the declaration that registers a project's catalog with the `hookd` module,
 * so editors type `on("deal.close", e => e.summa)` and flag `on("deal.closed", ...)`. It imports
 * the config's type, so it stays right as the catalog changes; `hookd types` writes it, and
 * `hookd dev`, `hookd check` and `hookd init` make sure it is there. Beside it go the isolate's
 * globals (hookd-globals.d.ts) and the plugins' own tsconfig.json, which uses them. Kept apart
 * from check.ts so writing them does not load the TypeScript compiler.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { WEB_GLOBALS } from "./web-globals.ts";

/** The declaration file beside the config. */
export function envDeclarationPath(configFile: string): string {
  return path.join(path.dirname(configFile), "hookd-env.d.ts");
}

/** The isolate's globals for plugin files, beside hookd-env.d.ts. */
export function globalsDeclarationPath(configFile: string): string {
  return path.join(path.dirname(configFile), "hookd-globals.d.ts");
}

/** The first line of a plugins/tsconfig.json that hookd wrote (and may rewrite). */
const TSCONFIG_MARK = "// Written by `hookd types`";

/**
 * Plugin files get a project of their own (plugins/tsconfig.json): ES2023 and exactly the
 * isolate's globals (hookd-globals.d.ts), no `types` (so not Node's, even when the project has
 * @types/node for its tests), no DOM. Test files stay in the project's root tsconfig.json, with
 * Node's types: they run in Node.
 */
function pluginTsconfig(configFile: string, pluginsDir: string): string {
  const relative = (file: string) => path.relative(pluginsDir, file).split(path.sep).join("/");
  const options = {
    compilerOptions: {
      target: "ES2022",
      lib: ["ES2023"],
      types: [],
      module: "ESNext",
      moduleResolution: "Bundler",
      allowImportingTsExtensions: true,
      noEmit: true,
      strict: true,
      isolatedModules: true,
      verbatimModuleSyntax: true,
      skipLibCheck: true,
    },
    include: ["**/*.ts", relative(envDeclarationPath(configFile)), relative(globalsDeclarationPath(configFile))],
    exclude: ["**/*.test.ts"],
  };
  return `${TSCONFIG_MARK}: plugin files see the isolate's globals (hookd-globals.d.ts), not Node's or the DOM's.
// Delete this line to keep your own edits; hookd then leaves the file alone.
${JSON.stringify(options, null, 2)}
`;
}

/** Writes `contents` unless the file already says it: an unchanged file must not make editors or watchers re-read it. */
async function writeIfChanged(target: string, contents: string): Promise<boolean> {
  const current = await readFile(target, "utf8").catch(() => undefined);
  if (current === contents) return false;
  // Written beside and renamed into place: an editor or `tsc` reading it never sees half a file.
  const partial = `${target}.${process.pid}.tmp`;
  await writeFile(partial, contents);
  await rename(partial, target);
  return true;
}

/**
 * Writes the editor types: hookd-env.d.ts (the catalog), hookd-globals.d.ts (the isolate's
 * globals) and, unless the project has its own, plugins/tsconfig.json. `hookd dev` and
 * `hookd check` call it every time; it returns the three paths.
 */
export async function writeEnvDeclaration(configFile: string, pluginsDir = path.join(path.dirname(configFile), "plugins")): Promise<string[]> {
  const target = envDeclarationPath(configFile);
  await writeIfChanged(
    target,
    `// Written by \`hookd types\`: gives editors the catalog's types for \`import ... from "hookd"\`.
import type config from "./${path.basename(configFile)}";

declare module "hookd" {
  interface Register {
    config: typeof config;
  }
}
`,
  );
  const globals = globalsDeclarationPath(configFile);
  await writeIfChanged(globals, `// Written by \`hookd types\`: the globals inside a plugin's isolate (plugins/tsconfig.json includes it).
export {};

declare global {${WEB_GLOBALS}}
`);
  const tsconfig = path.join(pluginsDir, "tsconfig.json");
  const existing = await readFile(tsconfig, "utf8").catch(() => undefined);
  if (existing === undefined || existing.startsWith(TSCONFIG_MARK)) {
    await mkdir(pluginsDir, { recursive: true });
    await writeIfChanged(tsconfig, pluginTsconfig(configFile, pluginsDir));
  }
  return [target, globals, tsconfig];
}
