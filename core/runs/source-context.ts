/**
 * The TypeScript lines around where a run's error was thrown, for the run detail. The sandbox maps
 * a failure through the plugin's source map to `plugins/foo.ts:12:5` (RunError.location); here
 * that file is read back from the plugins folder (never outside it) and the lines around it kept,
 * each cut to a bound. Files are read at most once per change (a small cache keyed on mtime).
 */
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import type { RunAttemptError, RunError } from "../store/types.ts";
import { truncateText } from "../base/truncate.ts";

/** Lines shown before and after the failing one. */
const CONTEXT_LINES = 3;
const MAX_LINE_CHARS = 400;
const MAX_SOURCE_BYTES = 4 * 1024 * 1024;
const CACHE_FILES = 32;

export interface SourceContextOptions {
  /** The folder plugin paths are relative to (and the bound of what may be read). */
  root: () => string;
  /** A loaded plugin's entry file, when known (locations may be relative to its folder). */
  entryFile?: (plugin: string) => string | undefined;
}

export class SourceContext {
  private readonly cache = new Map<string, { mtimeMs: number; lines: string[] }>();

  constructor(private readonly options: SourceContextOptions) {}

  /** The error with `source` added when its location names a readable file of the plugins folder. */
  describe(plugin: string, error: RunError): RunAttemptError {
    const match = /^(.*):(\d+):(\d+)$/.exec(error.location ?? "");
    if (!match) return error;
    const [, file, lineText] = match as unknown as [string, string, string];
    const line = Number(lineText);
    const lines = this.read(plugin, file);
    if (!lines || line < 1 || line > lines.length) return error;
    const from = Math.max(1, line - CONTEXT_LINES);
    const to = Math.min(lines.length, line + CONTEXT_LINES);
    const shown: Array<{ line: number; text: string }> = [];
    for (let n = from; n <= to; n++) shown.push({ line: n, text: truncateText(lines[n - 1]!, MAX_LINE_CHARS) });
    return { ...error, source: { file, line, lines: shown } };
  }

  private read(plugin: string, file: string): string[] | undefined {
    const root = path.resolve(this.options.root());
    const entry = this.options.entryFile?.(plugin);
    const candidates = [path.resolve(root, file), ...(entry ? [path.resolve(path.dirname(entry), file)] : [])];
    for (const candidate of candidates) {
      if (candidate !== root && !candidate.startsWith(root + path.sep)) continue;
      try {
        const stat = statSync(candidate);
        if (!stat.isFile() || stat.size > MAX_SOURCE_BYTES) continue;
        const cached = this.cache.get(candidate);
        if (cached && cached.mtimeMs === stat.mtimeMs) return cached.lines;
        const lines = readFileSync(candidate, "utf8").split(/\r?\n/);
        if (this.cache.size >= CACHE_FILES) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(candidate, { mtimeMs: stat.mtimeMs, lines });
        return lines;
      } catch {
        continue;
      }
    }
    return undefined;
  }
}
