/**
 * An open-loop load at an even pace: request i is due at start + i / rate, whatever the answers
 * before it did, over a pool of keep-alive connections. It measures latency at a given rate.
 *
 * autocannon's `overallRate` is not that: each connection sends its quota for the second back to
 * back as fast as answers come, then pauses until the next second, so "half the peak" is the
 * peak for half of each second and idle for the rest, and its latencies are those of a burst.
 *
 * Latency runs from the moment a request was sent to its answer; how late the sends went against
 * their schedule (the generator's own lag, or every connection busy) is reported beside it, so a
 * generator that could not keep the pace shows.
 */
import http from "node:http";
import type { LoadOptions, LoadResult } from "./load.ts";
import { percentile, round } from "./stats.ts";

/** Requests due are sent at least this often (a timer's resolution, about a millisecond). */
const TICK_MS = 1;

export function runPaced(options: LoadOptions & { overallRate: number }, bodyAt: (sentAt: number) => string): Promise<LoadResult & { lagMs: { p50: number; p99: number; max: number } }> {
  const url = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections ?? 32 });
  const latencies: number[] = [];
  const lags: number[] = [];
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let outstanding = 0;
  const startedAt = Date.now();
  const start = performance.now();
  const total = Math.floor(options.overallRate * options.durationSec);
  const limit = options.amount === undefined ? total : Math.min(total, options.amount);
  let sent = 0;

  return new Promise((resolve) => {
    const finish = () => {
      agent.destroy();
      const durationSec = (performance.now() - start) / 1000;
      const p = percentiles(latencies);
      const lag = percentiles(lags);
      resolve({
        startedAt,
        finishedAt: Date.now(),
        durationSec: Math.round(durationSec),
        ok,
        non2xx,
        errors,
        timeouts,
        rps: durationSec > 0 ? ok / durationSec : 0,
        latencyMs: { p50: p.p50, p90: p.p90, p99: p.p99, mean: p.mean, max: p.max },
        lagMs: { p50: lag.p50, p99: lag.p99, max: lag.max },
      });
    };
    const sendOne = (dueAt: number) => {
      const sentAt = performance.now();
      lags.push(sentAt - dueAt);
      const body = bodyAt(performance.timeOrigin + sentAt);
      outstanding++;
      const request = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: options.method ?? "POST",
          path: options.path,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...options.headers },
          timeout: 10_000,
        },
        (response) => {
          response.resume();
          response.on("end", () => {
            latencies.push(performance.now() - sentAt);
            if (response.statusCode !== undefined && response.statusCode >= 200 && response.statusCode < 300) ok++;
            else non2xx++;
            done();
          });
        },
      );
      request.on("timeout", () => {
        timeouts++;
        request.destroy(new Error("timeout"));
      });
      request.on("error", () => {
        errors++;
        done();
      });
      request.end(body);
    };
    const done = () => {
      outstanding--;
      if (sent >= limit && outstanding === 0) finish();
    };
    const tick = () => {
      const now = performance.now();
      while (sent < limit && start + (sent * 1000) / options.overallRate <= now) sendOne(start + (sent++ * 1000) / options.overallRate);
      if (sent < limit) setTimeout(tick, TICK_MS);
      else if (outstanding === 0) finish();
    };
    tick();
  });
}

function percentiles(values: readonly number[]): { p50: number; p90: number; p99: number; mean: number; max: number } {
  const at = (p: number) => round(percentile(values, p), 2);
  const mean = values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
  return { p50: at(50), p90: at(90), p99: at(99), mean: round(mean, 2), max: at(100) };
}
