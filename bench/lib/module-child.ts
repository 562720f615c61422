/**
 * Runs one benchmark module in its own process: `module-child.ts <file> <result.json> quick|full`.
 * The result goes to a file, not stdout, so whatever the module prints cannot corrupt it. The
 * process exits explicitly at the end: a module that leaks a timer or a socket must not hold the
 * harness up (the harness also kills the whole process group afterwards).
 */
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { killTracked } from "./proc.ts";

const [file, resultFile, mode] = process.argv.slice(2);
if (!file || !resultFile) {
  process.stderr.write("usage: module-child.ts <module.bench.ts> <result.json> quick|full\n");
  process.exit(2);
}

const started = performance.now();
let report: { ok: true; result: Record<string, unknown>; durationMs: number } | { ok: false; error: string; durationMs: number };
try {
  const module = (await import(pathToFileURL(file).href)) as { run?: unknown };
  if (typeof module.run !== "function") throw new Error(`${file} does not export async function run(opts: { quick: boolean })`);
  const result = (await (module.run as (opts: { quick: boolean }) => Promise<unknown>)({ quick: mode === "quick" })) as Record<string, unknown>;
  if (typeof result !== "object" || result === null) throw new Error(`run() resolved with ${result === null ? "null" : typeof result}, not an object of figures`);
  report = { ok: true, result, durationMs: performance.now() - started };
} catch (error) {
  report = { ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error), durationMs: performance.now() - started };
}
try {
  writeFileSync(resultFile, JSON.stringify(report, (_key, value: unknown) => (typeof value === "bigint" ? Number(value) : value)));
} catch (error) {
  writeFileSync(resultFile, JSON.stringify({ ok: false, error: `result is not JSON-serializable: ${String(error)}`, durationMs: report.durationMs }));
}
killTracked();
process.exit(0);
