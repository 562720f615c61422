/**
 * The one readable line `hookd dev` prints per reload: plugin, version, compile and load time,
 * or the error with its place in the TypeScript source and what still serves.
 */
import type { ConfigReloadResult } from "../config/watch.ts";
import type { ReloadResult } from "./manager.ts";

export function formatReloadLine(result: ReloadResult): string {
  const { plugin } = result;
  switch (result.outcome) {
    case "loaded":
    case "reloaded":
      return `↻ ${plugin} v${result.version} ${result.outcome}  compile ${ms(result.compileMs)}  load ${ms(result.loadMs)}`;
    case "removed":
      return `− ${plugin} removed (its pending runs wait for it to come back)`;
    case "failed": {
      const error = result.error!;
      const where = error.location ? `${error.location} ` : "";
      const serving = result.version === null ? "nothing serves it" : `v${result.version} still serves`;
      return `✗ ${plugin} v${result.attempted ?? "?"} failed: ${where}${error.code} ${problem(error.message, error.location)} — ${serving}`;
    }
  }
}

export function formatConfigReloadLine(result: ConfigReloadResult): string {
  if (!result.ok) return `✗ config ${result.error!.code} ${firstLine(result.error!.message)} — the previous config stays in force`;
  const changed = result.changed.length > 0 ? result.changed.join(", ") : "no setting changed";
  const restart = result.needsRestart.length > 0 ? `; after a restart: ${result.needsRestart.join(", ")}` : "";
  return `↻ config reloaded (${changed}${restart})`;
}

/** The message without what the line already shows: the place, and "plugin X does not compile:". */
function problem(message: string, location: string | undefined): string {
  let text = firstLine(message);
  if (location === undefined) return text;
  const at = text.indexOf(`${location}: `);
  if (at >= 0) text = text.slice(at + location.length + 2);
  return text.replace(` (at ${location})`, "");
}

function ms(value: number | undefined): string {
  return value === undefined ? "-" : `${value.toFixed(1)} ms`;
}

function firstLine(text: string): string {
  return text.split("\n")[0]!;
}
