/**
 * Servers the benchmarks compare against, each in its own process (so the benchmark's own
 * polling and bookkeeping never share its event loop): the bare fastify route, and a generic
 * way to stop any of them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { tracked } from "./proc.ts";

const BARE_FASTIFY = fileURLToPath(new URL("./bare-fastify-server.ts", import.meta.url));

export interface RunningServer {
  /** Origin, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Path events are posted to; append the event name. */
  eventsPath: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts the bare fastify route (POST /events/:name -> 202) in a child process. */
export async function startBareFastify(): Promise<RunningServer> {
  const child = tracked(
    spawn(process.execPath, ["--import", "tsx", BARE_FASTIFY], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } }),
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`bare fastify did not start within 20 s: ${err}`)), 20_000);
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once("exit", (code) => reject(new Error(`bare fastify exited with ${code}: ${err}`)));
  });
  return { url: `http://127.0.0.1:${port}`, eventsPath: "/events/", pid: child.pid!, stop: () => stopChild(child) };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
