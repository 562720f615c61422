/**
 * Maps errors from plugin code back to the TypeScript source through esbuild's source map
 * (Node's own SourceMap reader), so a failure reads `plugins/foo.ts:12:5`, not a bundle offset.
 */
import { SourceMap } from "node:module";
import type { HookdErrorCode } from "./contract/errors.ts";
import type { RunError } from "./contract/run.ts";
import { errorCodeOr } from "./contract/to-run-error.ts";
import type { PluginSpec } from "./contract/run.ts";

export class SourceMapper {
  private readonly maps = new Map<string, SourceMap | null>();

  /** `plugins/foo.ts:12:5` for a line and column (1-based) of a plugin's bundle. */
  locate(spec: PluginSpec, line: number, column: number): string | undefined {
    const map = this.mapFor(spec);
    if (!map) return undefined;
    const entry = map.findEntry(line - 1, column - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number };
    if (entry.originalSource === undefined || entry.originalLine === undefined || entry.originalColumn === undefined) return undefined;
    return `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  }

  forget(spec: PluginSpec): void {
    this.maps.delete(key(spec));
  }

  private mapFor(spec: PluginSpec): SourceMap | null {
    const k = key(spec);
    let map = this.maps.get(k);
    if (map === undefined) {
      try {
        map = spec.sourceMap ? new SourceMap(JSON.parse(spec.sourceMap)) : null;
      } catch {
        map = null;
      }
      this.maps.set(k, map);
    }
    return map;
  }
}

const FRAME = /hookd-plugin:\/\/([^@\s]+)@(\d+)\.js:(\d+):(\d+)/g;

/**
 * Turns whatever an isolate threw (a host-side Error from isolated-vm, or the plain object the
 * runtime reports) into a RunError whose stack and location point into the TypeScript source.
 */
export function errorFromIsolate(thrown: unknown, spec: PluginSpec, mapper: SourceMapper, fallbackCode: HookdErrorCode): RunError {
  const raw = thrown as { code?: unknown; message?: unknown; stack?: unknown } | undefined;
  const message = typeof raw?.message === "string" ? raw.message : String(thrown);
  const code = errorCodeOr(raw?.code, fallbackCode);
  const stackText = typeof raw?.stack === "string" ? raw.stack : "";
  let location: string | undefined;
  const stack = stackText.replace(FRAME, (whole, _plugin: string, _version: string, line: string, column: string) => {
    const mapped = mapper.locate(spec, Number(line), Number(column));
    location ??= mapped;
    return mapped ?? whole;
  });
  // Drop frames of the runtime itself and of the host: they say nothing to a plugin author.
  const cleaned = stack
    .split("\n")
    .filter((frame) => !/isolated-vm|node:internal|\/sandbox\//.test(frame))
    .join("\n");
  return {
    code,
    message: location ? `${message} (at ${location})` : message,
    ...(location ? { location } : {}),
    ...(cleaned ? { stack: cleaned } : {}),
  };
}

function key(spec: PluginSpec): string {
  return `${spec.plugin}@${spec.version}`;
}
