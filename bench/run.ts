/**
 * `npm run bench [-- --quick] [--only core,reload] [--profile] [--verbose]`
 *
 * Runs every bench/*.bench.ts in its own process, one after another (they would disturb each
 * other's figures if run together), each bounded in time and the whole run bounded too. Writes
 * bench/results/<date>-<mode>.json and .md (and latest-<mode>.*), prints the Markdown table,
 * and says which targets hold. It exits 0 whatever the figures: targets are reported, not gated.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { describeMachine } from "./lib/machine.ts";
import { discoverModules, EXPECTED_MODULES, killCurrentModule, runModule } from "./lib/modules.ts";
import { renderMarkdown, type BenchRun, type ModuleOutcome } from "./lib/report.ts";
import { checkTargets } from "./lib/targets.ts";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

/**
 * Time bounds, in seconds. The core module carries the baselines and the plugin-count sweep, so
 * it gets the largest share; the whole run stops starting modules when its own bound is near.
 * (A quick total of 175 s once squeezed core to 35 s, delivery to 30 s and postgres to 20 s, and
 * all three timed out.) With the eight modules of today the full bounds add up to the full total
 * (540 + 7 x 180 = 1800 s), but the quick ones do not: 120 + 7 x 60 = 540 s against a 480 s
 * run. The quick run holds because its modules finish well inside their bounds (each is sized
 * for ~30 s); one that runs to its bound takes from those after it, each of which still gets at
 * least the minimum, and the run says so at its start (`boundsNote`).
 */
const BOUNDS = {
  quick: { total: 480, core: 120, other: 60, minimum: 20 },
  full: { total: 1800, core: 540, other: 180, minimum: 60 },
};
/**
 * What `--profile` adds to each bound, in seconds: the profiled sections run again with the
 * profiler on (the core module's about a minute), and a quick core module that fit its 120 s
 * ran past it once profiled (121 s, killed before its table).
 */
const PROFILE_ALLOWANCE = { core: 90, other: 30 };

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    full: { type: "boolean", default: false },
    only: { type: "string" },
    profile: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
    out: { type: "string", default: path.join(BENCH_DIR, "results") },
  },
  allowPositionals: false,
});

const mode: "quick" | "full" = values.quick && !values.full ? "quick" : "full";
const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
const found = discoverModules(BENCH_DIR).filter((m) => !only || only.includes(m.name));
const bounds = values.profile ? withProfiling(BOUNDS[mode], found.length) : BOUNDS[mode];
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;

process.on("SIGINT", () => {
  killCurrentModule();
  process.exit(130);
});

const startedAt = new Date();
const deadline = Date.now() + bounds.total * 1000;
const machine = describeMachine();
const profileDir = values.profile ? path.join(values.out, `profiles-${stamp(startedAt)}`) : undefined;

const missing = EXPECTED_MODULES.filter((name) => (!only || only.includes(name)) && !found.some((m) => m.name === name));
log(`hookd bench, ${mode} mode: ${found.map((m) => m.name).join(", ") || "no modules"}${missing.length ? ` (missing: ${missing.join(", ")})` : ""}`);
const boundsNote = boundsOverTotal(found.map((m) => m.name));
if (boundsNote) log(`  ${boundsNote}`);

const outcomes: ModuleOutcome[] = [];
for (const [index, module] of found.entries()) {
  // Each module still queued keeps the minimum share of what is left, but this one gets at
  // least the minimum too: a module is skipped only when the run's bound is really used up.
  const queuedAfter = found.length - index - 1;
  const left = deadline - Date.now();
  const own = (module.name === "core" ? bounds.core : bounds.other) * 1000;
  const bound = Math.min(Math.max(Math.min(own, left - queuedAfter * bounds.minimum * 1000), bounds.minimum * 1000), left);
  if (bound < bounds.minimum * 1000) {
    outcomes.push({ name: module.name, file: path.relative(process.cwd(), module.file), status: "skipped", durationMs: 0, error: `the run's ${bounds.total} s bound was used up` });
    log(`  ${module.name}: skipped (time bound of the run used up)`);
    continue;
  }
  log(`  ${module.name}: running (bound ${Math.round(bound / 1000)} s)`);
  const outcome = await runModule(module, {
    quick: mode === "quick",
    timeoutMs: bound,
    env: profileDir ? { HOOKD_BENCH_PROFILE_DIR: path.join(profileDir, module.name) } : {},
    ...(values.verbose ? { onOutput: (chunk: string) => process.stderr.write(chunk) } : {}),
  });
  outcomes.push(outcome);
  log(`  ${module.name}: ${outcome.status} in ${(outcome.durationMs / 1000).toFixed(1)} s${outcome.error ? ` (${outcome.error.split("\n")[0]})` : ""}`);
}
for (const name of missing) {
  outcomes.push({ name, file: `bench/${name}.bench.ts`, status: "missing", durationMs: 0, error: `bench/${name}.bench.ts does not exist yet` });
}

const results = Object.fromEntries(outcomes.filter((o) => o.result).map((o) => [o.name, o.result]));
const run: BenchRun = {
  mode,
  command,
  startedAt: startedAt.toISOString(),
  durationSec: (Date.now() - startedAt.getTime()) / 1000,
  machine,
  modules: outcomes,
  targets: checkTargets(results),
};

const markdown = renderMarkdown(run);
mkdirSync(values.out, { recursive: true });
const base = path.join(values.out, `${stamp(startedAt)}-${mode}`);
// Module logs go to their own file: the result JSON stays readable.
const json = JSON.stringify({ ...run, modules: run.modules.map(({ log: _log, ...rest }) => rest) }, null, 2);
const logs = run.modules.map((m) => `===== ${m.name} (${m.status}) =====\n${m.log ?? ""}`).join("\n");
for (const [file, text] of [
  [`${base}.json`, json],
  [`${base}.md`, markdown],
  [`${base}.log`, logs],
  [path.join(values.out, `latest-${mode}.json`), json],
  [path.join(values.out, `latest-${mode}.md`), markdown],
] as const) {
  writeFileSync(file, text);
}

process.stdout.write(`\n${markdown}\n`);
const held = run.targets.filter((t) => t.holds === true).length;
const unknown = run.targets.filter((t) => t.holds === null).length;
log(`targets: ${held} of ${run.targets.length} hold${unknown ? `, ${unknown} not measured` : ""}. Results: ${path.relative(process.cwd(), base)}.{json,md,log}`);
process.exit(0);

/** The bounds of a profiled run: each module's grows by what profiling adds, the run's by their sum. */
function withProfiling(plain: (typeof BOUNDS)[keyof typeof BOUNDS], modules: number): (typeof BOUNDS)[keyof typeof BOUNDS] {
  return {
    ...plain,
    core: plain.core + PROFILE_ALLOWANCE.core,
    other: plain.other + PROFILE_ALLOWANCE.other,
    total: plain.total + PROFILE_ALLOWANCE.core + Math.max(modules - 1, 0) * PROFILE_ALLOWANCE.other,
  };
}

/** Says so when the modules' own bounds add up to more than the run's: the last ones may get less. */
function boundsOverTotal(names: readonly string[]): string | undefined {
  const sum = names.reduce((total, name) => total + (name === "core" ? bounds.core : bounds.other), 0);
  if (sum <= bounds.total) return undefined;
  return `the modules' bounds add up to ${sum} s, over the run's ${bounds.total} s: a module that runs to its bound shortens those after it (down to ${bounds.minimum} s each)`;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function stamp(date: Date): string {
  return date.toISOString().slice(0, 19).replace(/[:]/g, "-");
}
