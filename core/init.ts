/**
 * `hookd init [dir]`: a ready project from templates/project — the config with the shipped
 * catalog, an example plugin with its tests, editor types, npm scripts and a systemd unit. It
 * writes nothing when any file it would write is already there, so it never clobbers work.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeEnvDeclaration } from "./env-types.ts";
import { HookdError } from "./errors.ts";

const TEMPLATE_DIR = fileURLToPath(new URL("../templates/project", import.meta.url));
const HOOKD_PACKAGE = JSON.parse(readFileSync(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8")) as {
  version: string;
  devDependencies?: Record<string, string>;
};

/** Template files whose name npm would drop or misread when hookd is published. */
const RENAMED: Record<string, string> = { gitignore: ".gitignore" };

export interface InitResult {
  dir: string;
  /** Written files, relative to `dir`. */
  files: string[];
}

export async function initProject(target: string): Promise<InitResult> {
  const dir = path.resolve(target);
  const name = packageName(path.basename(dir));
  const files = new Map<string, string>();
  for (const relative of await listFiles(TEMPLATE_DIR)) {
    const source = await readFile(path.join(TEMPLATE_DIR, relative), "utf8");
    const destination = path.join(path.dirname(relative), RENAMED[path.basename(relative)] ?? path.basename(relative));
    files.set(destination, source.replaceAll("{{name}}", name));
  }
  files.set("package.json", `${JSON.stringify(packageJson(name), null, 2)}\n`);

  const existing = [...files.keys(), "hookd-env.d.ts"].filter((file) => existsSync(path.join(dir, file)));
  if (existing.length > 0) throw new HookdError("HOOKD_INIT_CONFLICT", [dir, existing.sort().join(", ")]);

  for (const [relative, contents] of files) {
    await mkdir(path.dirname(path.join(dir, relative)), { recursive: true });
    await writeFile(path.join(dir, relative), contents, { flag: "wx" });
  }
  await writeEnvDeclaration(path.join(dir, "events.config.ts"));
  return { dir, files: [...files.keys(), "hookd-env.d.ts"].sort() };
}

/** What `hookd init` prints: what was written and what to run next. */
export function describeInit(result: InitResult, cwd: string): string {
  const where = path.relative(cwd, result.dir) || ".";
  const lines = [`created a hookd project in ${where}/:`, ...result.files.map((file) => `  ${file}`), "", "next:"];
  if (where !== ".") lines.push(`  cd ${/^[\w./-]+$/.test(where) ? where : JSON.stringify(where)}`);
  lines.push(
    "  npm install",
    "  npm run check      compile and type-check the config and plugins",
    "  npm test           the example plugin's tests, in real isolates",
    "  npm run dev        the daemon with hot reload; the console is at http://127.0.0.1:8711/",
  );
  return `${lines.join("\n")}\n`;
}

function packageJson(name: string) {
  const dev = HOOKD_PACKAGE.devDependencies ?? {};
  return {
    name,
    private: true,
    type: "module",
    scripts: {
      dev: "hookd dev",
      start: "hookd start",
      check: "hookd check",
      types: "hookd types",
      test: "vitest run",
    },
    dependencies: { hookd: `^${HOOKD_PACKAGE.version}` },
    // The same majors hookd itself is tested with.
    devDependencies: { "@types/node": dev["@types/node"] ?? "^20.0.0", vitest: dev.vitest ?? "^4.0.0" },
    engines: { node: ">=20" },
  };
}

/** A folder name as an npm package name: lowercase, no spaces or odd characters. */
function packageName(folder: string): string {
  const cleaned = folder
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[._-]+|[-]+$/g, "");
  return cleaned || "hookd-project";
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(dir, relative)));
    else files.push(relative);
  }
  return files;
}
