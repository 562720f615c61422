/**
 * HTTP load from a second process on loopback: autocannon runs in load-worker.ts and reports
 * back one JSON line. Bounded in time twice: autocannon's own duration, and a kill if the
 * worker outlives it by much.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { tracked } from "./proc.ts";

const WORKER = fileURLToPath(new URL("./load-worker.ts", import.meta.url));

export interface LoadOptions {
  /** Origin, e.g. http://127.0.0.1:8711 */
  url: string;
  path: string;
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  /** Request body; with `stamp`, the text `"@@sentAt@@"` in it is replaced by the send time (epoch ms). */
  body?: string;
  stamp?: boolean;
  connections?: number;
  durationSec: number;
  /** Stop after this many requests (still bounded by durationSec). */
  amount?: number;
  /**
   * Open-loop: this many requests per second across all connections, evenly spaced (paced-load.ts;
   * not autocannon's rate, which sends each second's quota in a burst). Unset: as fast as answers come (autocannon).
   */
  overallRate?: number;
}

export interface LoadResult {
  /** Epoch ms when the load began and ended (the worker's clock, which is the machine's). */
  startedAt: number;
  finishedAt: number;
  durationSec: number;
  /** 2xx answers. */
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** 2xx answers per second. */
  rps: number;
  /** Request to answer. */
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
  /** A paced load's sends against their schedule (paced-load.ts): how far the generator fell behind. */
  lagMs?: { p50: number; p99: number; max: number };
}

/** Runs one load and resolves with its result; rejects if the worker fails or hangs. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = tracked(
      spawn(process.execPath, ["--import", "tsx", WORKER, JSON.stringify(options)], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, NODE_OPTIONS: "" },
      }),
    );
    let out = "";
    let err = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), (options.durationSec + 30) * 1000);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        const result = JSON.parse(line) as LoadResult;
        if (result.ok === 0 && result.non2xx === 0) throw new Error(`no answers from ${options.url}${options.path} (${result.errors} errors)`);
        resolve(result);
      } catch (error) {
        reject(new Error(`load worker failed (${signal ?? code}): ${error instanceof Error ? error.message : String(error)}\n${err.slice(-2000)}`));
      }
    });
  });
}
