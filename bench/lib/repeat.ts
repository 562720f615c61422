/**
 * Repeating measurements. On a shared machine the load from elsewhere drifts during a run, so
 * figures that will be divided by each other are measured in interleaved rounds (A B C, A B C,
 * ...): a noisy minute then spoils one sample of each, not all samples of one.
 */
import { figure, type Figure } from "./stats.ts";

/** Runs `measure` n times in a row and summarizes the results. */
export async function repeat(n: number, unit: string, measure: (round: number) => Promise<number>): Promise<Figure> {
  const samples: number[] = [];
  for (let round = 0; round < n; round++) samples.push(await measure(round));
  return figure(samples, unit);
}

/**
 * Runs every step once per round, in order, for `rounds` rounds. A step that throws records
 * NaN for that round (left out of its figure) and the error, instead of ending the others.
 */
export async function interleave<K extends string>(
  rounds: number,
  steps: Record<K, { unit: string; measure: (round: number) => Promise<number> }>,
  onError?: (step: K, round: number, error: unknown) => void,
): Promise<Record<K, Figure>> {
  const keys = Object.keys(steps) as K[];
  const samples = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < rounds; round++) {
    for (const key of keys) {
      try {
        samples[key].push(await steps[key].measure(round));
      } catch (error) {
        samples[key].push(Number.NaN);
        onError?.(key, round, error);
      }
    }
  }
  return Object.fromEntries(keys.map((k) => [k, figure(samples[k], steps[k].unit)])) as Record<K, Figure>;
}

/**
 * Closed-loop rate of an async operation: keeps `window` calls in flight for `durationMs` and
 * returns completed calls per second. The window stands for the concurrency the real system
 * allows (hookd runs up to 16 runs of one plugin at once), so the rate is a ceiling, not a
 * latency.
 */
export async function closedLoopRate(call: () => Promise<unknown>, options: { durationMs: number; window: number; warmupMs?: number }): Promise<number> {
  return (await closedLoop(call, options)).rate;
}

/** closedLoopRate, with the calls made and this process's CPU time per call (all its threads). */
export async function closedLoop(
  call: () => Promise<unknown>,
  options: { durationMs: number; window: number; warmupMs?: number },
): Promise<{ rate: number; completed: number; cpuMicrosPerCall: number }> {
  if (options.warmupMs) await drive(call, options.warmupMs, options.window);
  const cpu = process.cpuUsage();
  const { completed, elapsedMs } = await drive(call, options.durationMs, options.window);
  const used = process.cpuUsage(cpu);
  return { rate: (completed / elapsedMs) * 1000, completed, cpuMicrosPerCall: (used.user + used.system) / Math.max(completed, 1) };
}

async function drive(call: () => Promise<unknown>, durationMs: number, window: number): Promise<{ completed: number; elapsedMs: number }> {
  const started = performance.now();
  const deadline = started + durationMs;
  let completed = 0;
  const lane = async () => {
    while (performance.now() < deadline) {
      await call();
      completed++;
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return { completed, elapsedMs: performance.now() - started };
}

