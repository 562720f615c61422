/**
 * Hot reload: chokidar watches the plugins folder; a new file loads, a changed one reloads, a
 * deleted one unloads, a rename is both. Changes are coalesced per plugin for a short quiet
 * period, so an editor's temp-file-and-rename save or a burst of writes is one reload. A shared
 * module (`lib/`, `_name.ts`) reloads exactly the plugins that bundle it.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "../log.ts";
import { pluginEntryFor, type PluginEntry } from "./discover.ts";
import type { PluginManager, ReloadResult } from "./manager.ts";

export interface PluginWatcherOptions {
  plugins: PluginManager;
  logger: Logger;
  /** Quiet time after the last change before a plugin reloads. */
  debounceMs?: number;
  onReload?: (result: ReloadResult) => void;
}

export class PluginWatcher {
  private watcher: FSWatcher | undefined;
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; entry: PluginEntry }>();
  private readonly log: Logger;

  constructor(private readonly options: PluginWatcherOptions) {
    this.log = options.logger.child({ component: "watch" });
  }

  async start(): Promise<void> {
    const dir = this.options.plugins.dir;
    this.watcher = watch(dir, {
      ignoreInitial: true,
      ignored: (file) => file.includes(`${path.sep}node_modules${path.sep}`) || path.basename(file).startsWith("."),
    });
    this.watcher.on("all", (event, file) => this.onChange(event, file));
    // Expected noise (a file gone mid-save) is not an error worth more than a debug line.
    this.watcher.on("error", (error) => this.log.debug({ err: error }, "watcher error"));
    await new Promise<void>((resolve) => this.watcher!.once("ready", () => resolve()));
  }

  async close(): Promise<void> {
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await this.watcher?.close();
  }

  private onChange(event: string, file: string): void {
    if (!/\.(m?[jt]s|json)$/.test(file) && event !== "unlinkDir" && event !== "addDir") return;
    for (const entry of this.affectedPlugins(file)) this.schedule(entry);
  }

  /** The plugin a file is, the folder plugin it is in, and every plugin that bundles it. */
  private affectedPlugins(file: string): PluginEntry[] {
    const dir = this.options.plugins.dir;
    const affected = new Map<string, PluginEntry>();
    const own = pluginEntryFor(dir, file) ?? this.folderPluginOf(file);
    if (own) affected.set(own.name, own);
    for (const importer of this.options.plugins.importersOf(file)) affected.set(importer.name, importer);
    return [...affected.values()];
  }

  private folderPluginOf(file: string): PluginEntry | undefined {
    const dir = this.options.plugins.dir;
    const [first] = path.relative(dir, file).split(path.sep);
    if (!first || first.startsWith("..")) return undefined;
    return pluginEntryFor(dir, path.join(dir, first)) ?? this.options.plugins.known(first);
  }

  private schedule(entry: PluginEntry): void {
    const pending = this.timers.get(entry.name);
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(entry.name);
      void this.apply(entry);
    }, this.options.debounceMs ?? 20);
    this.timers.set(entry.name, { timer, entry });
  }

  private async apply(entry: PluginEntry): Promise<void> {
    const plugins = this.options.plugins;
    // Read the folder again: the entry may have moved between .ts and .js, or gone.
    const current = pluginEntryFor(plugins.dir, path.join(plugins.dir, path.relative(plugins.dir, entry.file).split(path.sep)[0]!));
    if (!current || !existsSync(current.file)) {
      await plugins.remove(entry.name);
      return;
    }
    const result = await plugins.reload(current);
    this.options.onReload?.(result);
  }
}
