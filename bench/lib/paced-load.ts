/**
 * An open-loop load at an even pace: request i is due at start + i / rate, whatever the answers
 * before it did, over a pool of keep-alive connections. It measures latency at a given rate.
 *
 * autocannon's `overallRate` is not that: each connection sends its quota for the second back to
 * back as fast as answers come, then pauses until the next second, so "half the peak" is the
 * peak for half of each second and idle for the rest, and its latencies are those of a burst.
 *
 * Latency runs from the moment a request was handed to the HTTP client (a wait for a free
 * connection counts in it) to the end of its answer, for the requests that were answered; the
 * ones that failed or timed out are counted apart (`errors`, `timeouts`). How late the sends went
 * against their schedule (the generator's own lag: its process waiting for a core) is reported
 * beside it, so a generator that could not keep the pace shows. Bounded: a request gets 10 s,
 * and the whole load ends GRACE_MS after its duration, what is still out counted as timed out.
 */
import http from "node:http";
import type { LoadOptions, LoadResult } from "./load.ts";
import { percentile, round } from "./stats.ts";

/** Requests due are sent at least this often (a timer's resolution, about a millisecond). */
const TICK_MS = 1;
/** How long after its duration a load waits for its last answers (runLoad's own watchdog is 30 s). */
const GRACE_MS = 15_000;

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
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      timeouts += outstanding;
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
      // One of answered, failed or timed out, once: a response can end and then error, or error alone.
      let settled = false;
      const settle = (how: "answered" | "failed" | "timedOut", status?: number) => {
        if (settled) return;
        settled = true;
        if (how === "answered") {
          latencies.push(performance.now() - sentAt);
          if (status !== undefined && status >= 200 && status < 300) ok++;
          else non2xx++;
        } else if (how === "failed") errors++;
        else timeouts++;
        done();
      };
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
          response.on("end", () => settle("answered", response.statusCode));
          response.on("error", () => settle("failed"));
        },
      );
      request.on("timeout", () => {
        settle("timedOut");
        request.destroy(new Error("timeout"));
      });
      request.on("error", () => settle("failed"));
      request.end(body);
    };
    const done = () => {
      outstanding--;
      if (sent >= limit && outstanding === 0) finish();
    };
    const deadline = setTimeout(finish, options.durationSec * 1000 + GRACE_MS);
    const tick = () => {
      if (finished) return;
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
