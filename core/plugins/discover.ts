/**
 * Which files in the plugins folder are plugins: `<name>.ts` / `<name>.js`, or a folder
 * `<name>/index.ts`. Files under `lib/`, names starting with `_`, declarations and tests are
 * shared modules or tooling, not plugins.
 *
 * One name, one source: `victim.ts` beside `victim/index.ts` (or `victim.ts` beside `victim.js`)
 * is an entry with every source listed, which the manager refuses (HOOKD_PLUGIN_AMBIGUOUS), never
 * a silent pick of one. A folder that is a symlink leading out of the plugins folder is not
 * looked into (the watcher does not follow it either); a file that is one is an entry, and its
 * compile refuses it (HOOKD_COMPILE_FORBIDDEN_IMPORT). Existence is `lstat`, which never opens
 * anything: a FIFO named like a plugin is an entry whose compile says what it is.
 */
import { readdir } from "node:fs/promises";
import { lstatSync, statSync } from "node:fs";
import path from "node:path";
import { realPathOrUndefined } from "../compile/source-file.ts";

export interface PluginEntry {
  name: string;
  /** Absolute path of the entry file (the first of `sources`). */
  file: string;
  /** Every source found for this name, when there is more than one. */
  sources?: string[];
}

const EXTENSIONS = [".ts", ".mts", ".js", ".mjs"];

export async function discoverPlugins(dir: string): Promise<PluginEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const entries: PluginEntry[] = [];
  for (const name of names.sort()) {
    const own = pluginEntryFor(dir, path.join(dir, name));
    if (!own || entries.some((e) => e.name === own.name)) continue;
    entries.push(findPluginEntry(dir, own.name) ?? own);
  }
  return entries;
}

/** The plugin a path in the plugins folder belongs to, if it is (part of) a plugin entry. */
export function pluginEntryFor(dir: string, file: string): PluginEntry | undefined {
  const relative = path.relative(dir, file);
  if (relative.startsWith("..") || path.isAbsolute(relative)) return undefined;
  const [first, second] = relative.split(path.sep);
  if (!first || isSharedName(first)) return undefined;
  if (second === undefined) {
    const ext = path.extname(first);
    if (EXTENSIONS.includes(ext) && !isToolingFile(first)) return { name: first.slice(0, -ext.length), file };
    // A folder plugin: its index file.
    const index = folderSources(dir, first)[0];
    return index === undefined ? undefined : { name: first, file: index };
  }
  return undefined;
}

/**
 * The entry of the plugin called `name` as the folder is now: `<name>.ts` (or .mts/.js/.mjs), or
 * `<name>/index.*`. Undefined when it is gone.
 */
export function findPluginEntry(dir: string, name: string): PluginEntry | undefined {
  if (isSharedName(name)) return undefined;
  const sources = [...EXTENSIONS.map((ext) => path.join(dir, `${name}${ext}`)).filter(isPresent), ...folderSources(dir, name)];
  if (sources.length === 0) return undefined;
  return { name, file: sources[0]!, ...(sources.length > 1 ? { sources } : {}) };
}

/** The index files of a folder plugin; none when the folder is a symlink that leads out. */
function folderSources(dir: string, name: string): string[] {
  const folder = path.join(dir, name);
  if (!isFolder(folder)) return [];
  const real = realPathOrUndefined(folder);
  const realDir = realPathOrUndefined(dir) ?? dir;
  if (real === undefined || path.dirname(real) !== realDir) return [];
  return EXTENSIONS.map((e) => path.join(folder, `index${e}`)).filter(isPresent);
}

/** Present as anything (a FIFO too): `lstat` looks without opening or following. */
function isPresent(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function isFolder(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/** `lib/` and `_name` are shared modules: they reload their importers but are not plugins. */
export function isSharedName(name: string): boolean {
  return name === "lib" || name.startsWith("_") || name.startsWith(".") || name === "node_modules";
}

function isToolingFile(name: string): boolean {
  return name.endsWith(".d.ts") || /\.(test|spec)\.[mc]?[jt]s$/.test(name);
}
