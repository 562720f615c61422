/**
 * The load generator's own process: runs autocannon (or, for a load at a given rate, the paced
 * sender of paced-load.ts) with the options given as JSON in argv[2] and prints one JSON result
 * line. It lives in a second process so the generator never shares an event loop (or a core's
 * scheduling luck) with the server it measures.
 */
import autocannon from "autocannon";
import type { LoadOptions, LoadResult } from "./load.ts";
import { runPaced } from "./paced-load.ts";

/** Where the send time goes in a stamped body; replaced per request. */
export const STAMP = '"@@sentAt@@"';

const options = JSON.parse(process.argv[2] ?? "{}") as LoadOptions;
const body = options.body ?? "";
const [head, tail] = options.stamp ? splitOnce(body, STAMP) : [body, undefined];

// A send time in the body: the epoch time of its sending (see the stamped requests below).
const bodyAt = (sentAt: number) => (tail === undefined ? body : `${head}${sentAt.toFixed(3)}${tail}`);

if (options.overallRate !== undefined) {
  const result = await runPaced({ ...options, overallRate: options.overallRate }, bodyAt);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else runAutocannon();

function runAutocannon(): void {
  const instance = autocannon({
    url: options.url,
    connections: options.connections ?? 32,
    pipelining: 1,
    duration: options.durationSec,
    ...(options.amount !== undefined ? { amount: options.amount } : {}),
    timeout: 10,
    requests: [
      {
        method: options.method ?? "POST",
        path: options.path,
        headers: { "content-type": "application/json", ...options.headers },
        body: tail === undefined ? body : undefined,
        // A stamped body carries the epoch time of its sending, so the server's side can compute
        // latency to a later moment (the handler's recorded completion), not just to the answer.
        ...(tail !== undefined
          ? {
              setupRequest: (request: { body?: string }) => {
                request.body = bodyAt(performance.timeOrigin + performance.now());
                return request;
              },
            }
          : {}),
      },
    ],
  });

  const startedAt = Date.now();
  instance.on("done", (result) => {
    const ok = result["2xx"] ?? 0;
    const report: LoadResult = {
      startedAt,
      finishedAt: Date.now(),
      durationSec: result.duration,
      ok,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      rps: result.duration > 0 ? ok / result.duration : 0,
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, mean: result.latency.average, max: result.latency.max },
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  });
}

function splitOnce(text: string, marker: string): [string, string | undefined] {
  const at = text.indexOf(marker);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + marker.length)];
}
