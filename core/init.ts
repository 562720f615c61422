/**
 * `hookd init [dir]`: a ready project from templates/project — the config with the shipped
 * catalog, an example plugin with its tests, editor types, npm scripts and a systemd unit. It
 * writes nothing when any file it would write is already there, so it never clobbers work.
 *
 * The project depends on hookd as `"hookd"` (so imports stay `hookd`, `hookd/testing`), an alias
 * of the npm package hookd-daemon. Until that is published, the alias would not resolve on the
 * user's machine, so init packs the running hookd (`npm pack`) into the project's vendor/ folder
 * and depends on that tarball: `npm install` then works anywhere the project is copied.
 */
import { existsSync } from "node:fs";
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { writeEnvDeclaration } from "./env-types.ts";
import { HookdError } from "../sandbox/contract/errors.ts";
import { PACKAGE_JSON, PACKAGE_NAME, PACKAGE_ROOT } from "../sandbox/contract/locate.ts";

const TEMPLATE_DIR = path.join(PACKAGE_ROOT, "templates/project");
const HOOKD_PACKAGE = PACKAGE_JSON;

/**
 * Whether hookd-daemon of this version is on the npm registry. While false, projects get a packed
 * copy of the running hookd in vendor/ instead of `npm:hookd-daemon@^<version>`.
 */
const PUBLISHED = false;

/** What writeEnvDeclaration adds: the catalog's types, the isolate's globals, the plugins' tsconfig. */
const EDITOR_TYPES = ["hookd-env.d.ts", "hookd-globals.d.ts", path.join("plugins", "tsconfig.json")];

/** Where the packed hookd goes in a project, relative to it. */
const VENDOR_DIR = "vendor";

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
  const tarball = PUBLISHED ? undefined : path.join(VENDOR_DIR, `${PACKAGE_NAME}-${HOOKD_PACKAGE.version}.tgz`);
  files.set("package.json", `${JSON.stringify(packageJson(name, tarball), null, 2)}\n`);

  const existing = [...files.keys(), ...EDITOR_TYPES, ...(tarball ? [tarball] : [])].filter((file) => existsSync(path.join(dir, file)));
  if (existing.length > 0) throw new HookdError("HOOKD_INIT_CONFLICT", [dir, existing.sort().join(", ")]);
  // First, so a failed pack leaves no half project behind.
  if (tarball) await packHookd(path.join(dir, tarball));

  for (const [relative, contents] of files) {
    await mkdir(path.dirname(path.join(dir, relative)), { recursive: true });
    await writeFile(path.join(dir, relative), contents, { flag: "wx" });
  }
  await writeEnvDeclaration(path.join(dir, "events.config.ts"));
  return { dir, files: [...files.keys(), ...EDITOR_TYPES, ...(tarball ? [tarball] : [])].sort() };
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

/**
 * `npm pack` of the running hookd (its package.json `files`: dist/, bin/, templates/, README),
 * without lifecycle scripts: the running hookd is already built, and an installed copy has no
 * build tools to run `prepare` with.
 */
async function packHookd(target: string): Promise<void> {
  const destination = path.dirname(target);
  await mkdir(destination, { recursive: true });
  const args = ["pack", "--ignore-scripts", "--json", "--pack-destination", destination, PACKAGE_ROOT];
  const packed = await new Promise<string>((resolve, reject) => {
    execFile("npm", args, { cwd: destination, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new HookdError("HOOKD_INIT_PACK", [PACKAGE_ROOT, destination, (stderr || error.message).trim()], { cause: error })) : resolve(stdout),
    );
  });
  const [result] = JSON.parse(packed) as Array<{ filename: string }>;
  if (path.join(destination, result?.filename ?? "") !== target) {
    throw new HookdError("HOOKD_INIT_PACK", [PACKAGE_ROOT, destination, `npm wrote ${result?.filename ?? "nothing"}, expected ${path.basename(target)}`]);
  }
}

function packageJson(name: string, tarball: string | undefined) {
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
    // The name `hookd` on npm is another project's: hookd is the package hookd-daemon, under its own name.
    dependencies: { hookd: tarball ? `file:${tarball.split(path.sep).join("/")}` : `npm:${PACKAGE_NAME}@^${HOOKD_PACKAGE.version}` },
    // The same majors hookd itself is tested with.
    devDependencies: { "@types/node": dev["@types/node"] ?? "^24.0.0", vitest: dev.vitest ?? "^4.0.0" },
    engines: { node: ">=24" },
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
