/**
 * Summaries of repeated measurements. Every figure the bench reports is a median with its
 * spread, because one run on a shared machine says little; ratios are taken between medians
 * measured in the same run, which is what makes them comparable across machines and days.
 */

/** A repeated measurement: its median, spread and the raw samples, in one unit. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent: how far the repeats disagree. */
  spreadPct: number;
  n: number;
  unit: string;
  samples: number[];
}

/** A figure divided by a baseline figure (both medians of the same run). */
export interface Ratio {
  ratio: number;
  /** What was divided by what, e.g. "hookd e2e / bare fastify". */
  of: string;
}

/** The p-th percentile (0..100) of unsorted values, with linear interpolation. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (Math.min(Math.max(p, 0), 100) / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Summarizes samples into a Figure. Non-finite samples (a failed repeat) are left out. */
export function figure(samples: readonly number[], unit: string): Figure {
  const clean = samples.filter((v) => Number.isFinite(v));
  const med = median(clean);
  const min = clean.length ? Math.min(...clean) : Number.NaN;
  const max = clean.length ? Math.max(...clean) : Number.NaN;
  return {
    median: round(med),
    min: round(min),
    max: round(max),
    spreadPct: med > 0 ? round(((max - min) / med) * 100, 1) : Number.NaN,
    n: clean.length,
    unit,
    samples: clean.map((v) => round(v)),
  };
}

/** `a / b` between two figures' medians (or plain numbers). */
export function ratio(a: Figure | number | undefined, b: Figure | number | undefined, of: string): Ratio | undefined {
  const x = typeof a === "number" ? a : a?.median;
  const y = typeof b === "number" ? b : b?.median;
  if (x === undefined || y === undefined || !Number.isFinite(x) || !Number.isFinite(y) || y === 0) return undefined;
  return { ratio: round(x / y, 3), of };
}

export function isFigure(value: unknown): value is Figure {
  return typeof value === "object" && value !== null && typeof (value as Figure).median === "number" && Array.isArray((value as Figure).samples);
}

export function isRatio(value: unknown): value is Ratio {
  return typeof value === "object" && value !== null && typeof (value as Ratio).ratio === "number" && typeof (value as Ratio).of === "string";
}

/** Rounds to a few significant decimals: enough for tables, stable in JSON diffs. */
export function round(value: number, decimals?: number): number {
  if (!Number.isFinite(value)) return value;
  const places = decimals ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 2 : 4);
  const factor = 10 ** places;
  return Math.round(value * factor) / factor;
}
