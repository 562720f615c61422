/**
 * Which files in the plugins folder are plugins: `<name>.ts` / `<name>.js`, or a folder
 * `<name>/index.ts`. Files under `lib/`, names starting with `_`, declarations and tests are
 * shared modules or tooling, not plugins.
 */
import { readdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";

export interface PluginEntry {
  name: string;
  /** Absolute path of the entry file. */
  file: string;
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
    const entry = pluginEntryFor(dir, path.join(dir, name));
    if (entry && !entries.some((e) => e.name === entry.name)) entries.push(entry);
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
    for (const candidate of EXTENSIONS.map((e) => path.join(dir, first, `index${e}`))) {
      if (existsSync(candidate)) return { name: first, file: candidate };
    }
    return undefined;
  }
  return undefined;
}

/**
 * The entry of the plugin called `name` as the folder is now: `<name>.ts` (or .mts/.js/.mjs), or
 * `<name>/index.*`. Undefined when it is gone.
 */
export function findPluginEntry(dir: string, name: string): PluginEntry | undefined {
  if (isSharedName(name)) return undefined;
  for (const ext of EXTENSIONS) {
    const file = path.join(dir, `${name}${ext}`);
    if (existsSync(file)) return { name, file };
  }
  return pluginEntryFor(dir, path.join(dir, name));
}

/** `lib/` and `_name` are shared modules: they reload their importers but are not plugins. */
export function isSharedName(name: string): boolean {
  return name === "lib" || name.startsWith("_") || name.startsWith(".") || name === "node_modules";
}

function isToolingFile(name: string): boolean {
  return name.endsWith(".d.ts") || /\.(test|spec)\.[mc]?[jt]s$/.test(name);
}
