/**
 * The targets hookd is held to (bench/README.md explains each). The summary says which hold and
 * by how much the others miss; it never fails the run: a target is a goal to report against,
 * and a shared CI machine is no place to gate on timing.
 */
import { isFigure, isRatio } from "./stats.ts";

export interface TargetCheck {
  id: string;
  /** What is held to what, in words. */
  target: string;
  measured: number | null;
  unit: string;
  /** null when the figure is missing (module failed, peer unavailable, not measured). */
  holds: boolean | null;
  /** "holds with 23% margin", "misses: 0.12 of the 0.7 wanted (5.8x short)", or why unknown. */
  verdict: string;
}

type Results = Record<string, Record<string, unknown> | undefined>;

interface Target {
  id: string;
  target: string;
  unit: string;
  /** "min": measured must be >= limit; "max": measured must be <= (or <) limit. */
  kind: "min" | "max";
  limit: number;
  read: (results: Results) => { value: number | undefined; note?: string };
}

const TARGETS: Target[] = [
  {
    id: "core-dispatch",
    target: "core dispatch >= 0.7 x direct isolated-vm",
    unit: "x",
    kind: "min",
    limit: 0.7,
    read: (r) => ({ value: ratioAt(r.core, "ratios", "dispatchVsIsolatedVm") }),
  },
  {
    id: "e2e-vs-fastify",
    target: "end-to-end >= 0.5 x bare fastify route",
    unit: "x",
    kind: "min",
    limit: 0.5,
    read: (r) => ({ value: ratioAt(r.core, "ratios", "e2eVsBareFastify") }),
  },
  {
    id: "e2e-vs-node-red",
    target: "end-to-end >= 4 x Node-RED",
    unit: "x",
    kind: "min",
    limit: 4,
    read: (r) => ({ value: ratioAt(r.core, "ratios", "e2eVsNodeRed"), note: peerNote(r.core) }),
  },
  {
    id: "idle-plugins",
    target: "rate with 1,000 idle plugins >= 0.9 x rate with 1",
    unit: "x",
    kind: "min",
    limit: 0.9,
    read: (r) => {
      const top = numberAt(r.core, "settings", "largestPluginCount");
      const note = top !== undefined && top < 1000 ? `measured with ${top} plugins, not 1,000 (quick run)` : undefined;
      return { value: ratioAt(r.core, "ratios", "idlePluginsRate"), ...(note ? { note } : {}) };
    },
  },
  {
    id: "memory-per-plugin",
    target: "resident memory per idle plugin <= 3 MB",
    unit: "MB",
    kind: "max",
    limit: 3,
    read: (r) => ({ value: numberAt(r.core, "hookd", "memoryPerIdlePluginMb") }),
  },
  {
    id: "startup-100",
    target: "start-up with 100 plugins < 1.5 s",
    unit: "s",
    kind: "max",
    limit: 1.5,
    read: (r) => {
      const startup = (r.core?.hookd as Record<string, unknown> | undefined)?.startupMs as Record<string, unknown> | undefined;
      const figure = startup?.["100"];
      return { value: isFigure(figure) ? figure.median / 1000 : undefined };
    },
  },
];

export function checkTargets(results: Results): TargetCheck[] {
  return TARGETS.map((t) => {
    const { value, note } = t.read(results);
    if (value === undefined || !Number.isFinite(value)) {
      return { id: t.id, target: t.target, measured: null, unit: t.unit, holds: null, verdict: note ?? "not measured (see the module's status)" };
    }
    const holds = t.kind === "min" ? value >= t.limit : value <= t.limit;
    const suffix = note ? ` (${note})` : "";
    return { id: t.id, target: t.target, measured: value, unit: t.unit, holds, verdict: verdict(t, value, holds) + suffix };
  });
}

function verdict(t: Target, value: number, holds: boolean): string {
  if (t.kind === "min") {
    if (holds) return `holds with ${pct(value / t.limit - 1)} margin`;
    return `misses: ${fmt(value)} of the ${fmt(t.limit)} wanted (${fmt(t.limit / value)}x short)`;
  }
  if (holds) return `holds with ${pct(1 - value / t.limit)} margin`;
  return `misses: ${fmt(value)} ${t.unit} against ${fmt(t.limit)} (${fmt(value / t.limit)}x over)`;
}

function ratioAt(result: Record<string, unknown> | undefined, section: string, key: string): number | undefined {
  const value = (result?.[section] as Record<string, unknown> | undefined)?.[key];
  return isRatio(value) ? value.ratio : undefined;
}

function numberAt(result: Record<string, unknown> | undefined, section: string, key: string): number | undefined {
  const value = (result?.[section] as Record<string, unknown> | undefined)?.[key];
  return typeof value === "number" ? value : undefined;
}

function peerNote(result: Record<string, unknown> | undefined): string | undefined {
  const peer = (result?.baselines as Record<string, unknown> | undefined)?.nodeRed as { unavailable?: string } | undefined;
  return peer?.unavailable ? `Node-RED unavailable: ${peer.unavailable}` : undefined;
}

function fmt(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function pct(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}
