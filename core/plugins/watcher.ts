/**
 * Hot reload: chokidar watches the plugins folder; a new file loads, a changed one reloads, a
 * deleted one unloads, a rename is both. Changes are coalesced per plugin for a short quiet
 * period, so an editor's temp-file-and-rename save or a burst of writes is one reload. A shared
 * module (`lib/`, `_name.ts`) reloads exactly the plugins that bundle it.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "../base/log.ts";
import { MissedChangeCheck } from "../watch/missed-change.ts";
import { findPluginEntry, isSharedName, pluginEntryFor, type PluginEntry } from "./discover.ts";
import type { PluginManager } from "./manager.ts";

/** The chokidar events the watcher acts on; anything else (raw, ready, error) is not a change. */
const CHANGE_EVENTS = {
  add: "add",
  change: "change",
  unlink: "unlink",
  addDir: "addDir",
  unlinkDir: "unlinkDir",
} as const;
type ChangeEvent = (typeof CHANGE_EVENTS)[keyof typeof CHANGE_EVENTS];

/** When a new folder (or a file in one that is no plugin yet) is looked at again (see lookAgainAtFolder). */
const FOLDER_RECHECK_MS = 150;

/** Files a plugin can consist of; editors' temp and backup files (`x.ts~`, `x.ts.swp`) are not. */
const SOURCE_FILE = /\.(m?[jt]s|json)$/;

export interface PluginWatcherOptions {
  plugins: PluginManager;
  logger: Logger;
  /** Quiet time after the last change before a plugin reloads. */
  debounceMs?: number;
}

export class PluginWatcher {
  private watcher: FSWatcher | undefined;
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; files: Set<string> }>();
  private readonly folderChecks = new Set<NodeJS.Timeout>();
  // Plugins whose change is being applied (between the quiet period's end and the manager taking it).
  private readonly applying = new Set<string>();
  private readonly missed = new MissedChangeCheck((file) => this.onChange("change", file));
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly options: PluginWatcherOptions) {
    this.log = options.logger.child({ component: "watch" });
  }

  async start(): Promise<void> {
    const dir = this.options.plugins.dir;
    this.watcher = watch(dir, {
      ignoreInitial: true,
      // A symlink to a folder outside (`plugins/share` -> /usr/share) would add a watch per
      // folder of that tree; discovery does not look into such a link and the compiler does not
      // read through it, so the watcher does not follow links at all.
      followSymlinks: false,
      ignored: (file) => file.includes(`${path.sep}node_modules${path.sep}`) || path.basename(file).startsWith("."),
    });
    this.watcher.on("all", (event, file) => {
      if (isChangeEvent(event)) this.onChange(event, file);
    });
    // Expected noise (a file gone mid-save) is not an error worth more than a debug line.
    this.watcher.on("error", (error) => this.log.debug({ err: error }, "watcher error"));
    await new Promise<void>((resolve) => this.watcher!.once("ready", () => resolve()));
    this.log.debug({ dir }, "watching plugins");
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const timer of this.folderChecks) clearTimeout(timer);
    this.folderChecks.clear();
    this.missed.close();
    await this.watcher?.close();
  }

  private onChange(event: ChangeEvent, file: string): void {
    const isDir = event === "addDir" || event === "unlinkDir";
    if (!isDir && !SOURCE_FILE.test(file)) return;
    const affected = this.affectedPlugins(event, file);
    for (const entry of affected) this.schedule(entry, file);
    if (!isDir && event !== "unlink" && affected.length > 0) this.missed.arm(file);
    if ((event === "add" || event === "addDir") && affected.length === 0) this.lookAgainAtFolder(file);
  }

  /**
   * A new folder, or a file in a folder that is no plugin yet (its index.ts not written): look at
   * the folder once more a moment later. chokidar starts watching a new folder only once it has
   * seen it, and a file written into it before that (the index.ts right after a helper module)
   * was seen on a busy machine as nothing at all: the folder plugin never loaded.
   */
  private lookAgainAtFolder(file: string): void {
    const timer = setTimeout(() => {
      this.folderChecks.delete(timer);
      if (this.closed) return;
      const entry = this.folderPluginOf(file);
      if (entry && !this.timers.has(entry.name) && !this.applying.has(entry.name) && this.options.plugins.known(entry.name) === undefined) this.schedule(entry, file);
    }, FOLDER_RECHECK_MS);
    this.folderChecks.add(timer);
  }

  /** The plugin a file is, the folder plugin it is in, and every plugin that bundles it. */
  private affectedPlugins(event: ChangeEvent, file: string): PluginEntry[] {
    const plugins = this.options.plugins;
    const affected = new Map<string, PluginEntry>();
    const own = pluginEntryFor(plugins.dir, file) ?? this.folderPluginOf(file);
    if (own) affected.set(own.name, own);
    for (const importer of plugins.importersOf(file)) affected.set(importer.name, importer);
    // A shared module that appears may be the import a failing plugin could not resolve.
    if (event === "add" && !own) for (const failing of plugins.failing()) affected.set(failing.name, failing);
    return [...affected.values()];
  }

  private folderPluginOf(file: string): PluginEntry | undefined {
    const dir = this.options.plugins.dir;
    const [first] = path.relative(dir, file).split(path.sep);
    if (!first || first.startsWith("..") || isSharedName(first)) return undefined;
    return pluginEntryFor(dir, path.join(dir, first)) ?? this.options.plugins.known(first);
  }

  private schedule(entry: PluginEntry, file: string): void {
    const pending = this.timers.get(entry.name);
    if (pending) clearTimeout(pending.timer);
    const files = pending?.files ?? new Set<string>();
    files.add(file);
    const timer = setTimeout(() => {
      this.timers.delete(entry.name);
      for (const changed of files) this.missed.reading(changed);
      this.applying.add(entry.name);
      this.apply(entry.name)
        .catch((error: unknown) => this.log.error({ err: error, plugin: entry.name }, "reloading a plugin failed"))
        .finally(() => this.applying.delete(entry.name));
    }, this.options.debounceMs ?? 20);
    this.timers.set(entry.name, { timer, files });
  }

  /** Looks at the folder as it is now: the plugin may have moved between .ts and .js, or gone. */
  private async apply(name: string): Promise<void> {
    if (this.closed) return;
    const plugins = this.options.plugins;
    const entry = findPluginEntry(plugins.dir, name);
    if (!entry) {
      await plugins.remove(name);
      return;
    }
    // An editor that truncates before writing leaves an empty file for a moment; loading it
    // would serve a plugin without handlers. The write that follows (seen as a change, or by the
    // missed-change check) triggers the reload.
    // Only a regular file can be a save in progress: a FIFO (size 0) or a device loads, and fails
    // with what it is, instead of waiting here for a write that never comes.
    const size = await stat(entry.file).then((info) => (info.isFile() ? info.size : Number.NaN), () => -1);
    if (size === 0) {
      this.log.debug({ plugin: name, file: entry.file }, "plugin file is empty: waiting for the rest of the save");
      return;
    }
    if (size < 0) {
      await plugins.remove(name);
      return;
    }
    await plugins.reload(entry);
  }
}

function isChangeEvent(event: string): event is ChangeEvent {
  return Object.hasOwn(CHANGE_EVENTS, event);
}
