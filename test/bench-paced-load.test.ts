// The bench's paced load (bench/lib/paced-load.ts), against a real HTTP server on loopback: it
// sends the number of requests its rate and duration make, each with its send time in the body,
// counts what was answered and what failed, and ends (never hangs) when connections break.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { runPaced } from "../bench/lib/paced-load.ts";

let server: http.Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(handler: http.RequestListener): Promise<string> {
  server = http.createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const body = (sentAt: number) => JSON.stringify({ sentAt });

describe("paced load", () => {
  it("sends rate x duration requests, each stamped with its send time, and counts the answers", async () => {
    const stamps: number[] = [];
    const url = await serve((req, res) => {
      let text = "";
      req.on("data", (chunk) => (text += chunk));
      req.on("end", () => {
        stamps.push((JSON.parse(text) as { sentAt: number }).sentAt);
        res.writeHead(202).end();
      });
    });
    const result = await runPaced({ url, path: "/events/x", durationSec: 1, overallRate: 200, connections: 8 }, body);
    expect(result).toMatchObject({ ok: 200, non2xx: 0, errors: 0, timeouts: 0 });
    expect(stamps).toHaveLength(200);
    // The schedule spreads them over the second: the stamps span most of it, not one burst.
    expect(Math.max(...stamps) - Math.min(...stamps)).toBeGreaterThan(500);
    expect(result.latencyMs.p99).toBeGreaterThan(0);
    expect(Number.isFinite(result.lagMs.p99)).toBe(true);
  });

  it("counts a connection broken mid-answer as a failure and still ends", async () => {
    let n = 0;
    const url = await serve((req, res) => {
      req.resume();
      req.on("end", () => {
        if (++n % 2 === 0) {
          // Headers out, then the socket dies before the body ends.
          res.writeHead(202, { "content-length": "100" });
          res.write("partial");
          setImmediate(() => req.socket.destroy());
        } else res.writeHead(202).end();
      });
    });
    const result = await runPaced({ url, path: "/events/x", durationSec: 1, overallRate: 50, connections: 4 }, body);
    expect(result.ok + result.errors + result.timeouts).toBe(50);
    expect(result.ok).toBeGreaterThan(0);
    expect(result.errors).toBeGreaterThan(0);
  });
});
