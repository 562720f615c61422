/**
 * The Markdown summary of a run: targets first, then every module's figures (medians with their
 * spread, ratios with what they divide), then the machine. Modules return free-form objects;
 * figures and ratios built with stats.ts render as such, anything else as its value.
 */
import type { MachineDescription } from "./machine.ts";
import { isFigure, isRatio } from "./stats.ts";
import type { TargetCheck } from "./targets.ts";

export type ModuleStatus = "ok" | "failed" | "timeout" | "missing" | "skipped";

export interface ModuleOutcome {
  name: string;
  file: string;
  status: ModuleStatus;
  durationMs: number;
  result?: Record<string, unknown>;
  error?: string;
  /** The module's output (stdout and stderr), kept beside the results. */
  log?: string;
  /** Processes still alive in the module's process group after it ended (killed by the harness). */
  leakedProcesses?: number;
}

export interface BenchRun {
  mode: "quick" | "full";
  command: string;
  startedAt: string;
  durationSec: number;
  machine: MachineDescription;
  modules: ModuleOutcome[];
  targets: TargetCheck[];
}

const MAX_ROWS_PER_MODULE = 90;

export function renderMarkdown(run: BenchRun): string {
  const lines: string[] = [];
  lines.push(`## hookd bench, ${run.mode} run, ${run.startedAt.slice(0, 16).replace("T", " ")} UTC (${run.durationSec.toFixed(0)} s)`);
  lines.push("");
  lines.push(`\`${run.command}\` on ${machineLine(run.machine)}`);
  lines.push("");
  lines.push("### Targets (reported, never failing the run)");
  lines.push("");
  lines.push("| target | measured | holds | verdict |");
  lines.push("|---|---|---|---|");
  for (const t of run.targets) {
    const measured = t.measured === null ? "-" : `${formatNumber(t.measured)} ${t.unit}`;
    lines.push(`| ${t.target} | ${measured} | ${t.holds === null ? "?" : t.holds ? "yes" : "**no**"} | ${t.verdict} |`);
  }
  lines.push("");
  lines.push("### Modules");
  lines.push("");
  lines.push("| module | status | time |");
  lines.push("|---|---|---|");
  for (const m of run.modules) {
    const leaked = m.leakedProcesses ? `, ${m.leakedProcesses} leaked processes killed` : "";
    lines.push(`| ${m.name} | ${m.status}${m.error ? `: ${escapeCell(firstLine(m.error))}` : ""}${leaked} | ${(m.durationMs / 1000).toFixed(1)} s |`);
  }
  for (const m of run.modules) {
    if (!m.result) continue;
    lines.push("");
    lines.push(`### ${m.name}`);
    lines.push("");
    lines.push("| figure | value | spread: (max-min)/median (min..max, n) |");
    lines.push("|---|---|---|");
    const rows = flatten(m.result);
    for (const row of rows.slice(0, MAX_ROWS_PER_MODULE)) lines.push(`| ${row.key} | ${row.value} | ${row.spread} |`);
    if (rows.length > MAX_ROWS_PER_MODULE) lines.push(`| ... | ${rows.length - MAX_ROWS_PER_MODULE} more in the JSON file | |`);
    const profiles = costLists(m.result.profiles, "profiles");
    if (profiles.length > 0) {
      lines.push("");
      lines.push(`Top self-time costs (CPU profiles, \`--profile\`):`);
      for (const { key, costs } of profiles) {
        lines.push(`- ${key}: ${costs.slice(0, 6).map((c) => `${escapeCell(c.frame)} ${c.pct}%`).join("; ")}`);
      }
    }
  }
  lines.push("");
  lines.push("### Machine and versions");
  lines.push("");
  lines.push(`- ${machineLine(run.machine)}, load average ${run.machine.loadAverage1m} at start, temp folder on ${run.machine.tempFilesystem}`);
  lines.push(`- Node ${run.machine.node} (V8 ${run.machine.v8}); ${Object.entries(run.machine.libraries).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  lines.push(`- commit ${run.machine.commit}`);
  return `${lines.join("\n")}\n`;
}

interface CostLike {
  frame: string;
  pct: number;
}

/** Every list of profile costs ({ frame, pct }) under a module's `profiles`, with its path. */
function costLists(value: unknown, key: string): Array<{ key: string; costs: CostLike[] }> {
  if (Array.isArray(value)) {
    const costs = value.filter((c): c is CostLike => typeof c === "object" && c !== null && typeof (c as CostLike).frame === "string");
    return costs.length > 0 ? [{ key, costs }] : [];
  }
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => costLists(v, `${key}.${k}`));
}

function machineLine(m: MachineDescription): string {
  return `${m.cores} x ${m.cpu}, ${m.memoryGb} GB, ${m.os}`;
}

interface Row {
  key: string;
  value: string;
  spread: string;
}

/** Walks a result object into table rows; profiles and raw sample lists stay in the JSON. */
function flatten(value: unknown, prefix = ""): Row[] {
  if (isFigure(value)) {
    const spread = value.n > 1 ? `${formatNumber(value.spreadPct)}% (${formatNumber(value.min)}..${formatNumber(value.max)}, n=${value.n})` : "n=1";
    return [{ key: prefix, value: `${formatNumber(value.median)} ${value.unit}`, spread }];
  }
  if (isRatio(value)) return [{ key: prefix, value: `${formatNumber(value.ratio)}x`, spread: escapeCell(value.of) }];
  if (Array.isArray(value)) {
    // Messages (errors, notes) get a row each; other long lists stay in the JSON.
    if (value.every((item) => typeof item === "string")) return value.map((item, i) => ({ key: `${prefix}.${i + 1}`, value: escapeCell(String(item)).slice(0, 300), spread: "" }));
    const text = JSON.stringify(value);
    return text.length <= 80 ? [{ key: prefix, value: escapeCell(text), spread: "" }] : [];
  }
  if (typeof value === "object" && value !== null) {
    // Settings, per-process breakdowns and profiles are for the JSON reader, not the table.
    if (["profiles", "details", "settings"].includes(prefix.split(".")[0]!)) return [];
    return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  if (typeof value === "number") return [{ key: prefix, value: formatNumber(value), spread: "" }];
  if (value === undefined || value === null) return [];
  return [{ key: prefix, value: escapeCell(String(value)), spread: "" }];
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

function firstLine(text: string): string {
  return text.split("\n")[0]!.slice(0, 160);
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}
