// Hostile plugins against the real daemon: each attack is a real plugin file under
// test/fixtures/plugins/hostile/, all loaded into one daemon beside two well-behaved plugins.
// For every attack the daemon stays up, the neighbours keep handling events, and the hostile run
// is recorded with its error code.
import { readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, TestDaemon, TestProject, type LogLine } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const HOSTILE_DIR = path.join(FIXTURES, "plugins", "hostile");
const NEIGHBOURS = new Set(["bystander", "victim", "flaky"]);
const ATTACKS = readdirSync(HOSTILE_DIR)
  .map((file) => file.replace(/\.ts$/, ""))
  .filter((name) => !NEIGHBOURS.has(name));
const LOADS_FAIL = new Set(["top-level-loop", "top-level-oom"]);

const eventOf = (plugin: string) => `attack.${plugin.replaceAll("-", "_")}`;

const FETCH_MAX_CONCURRENT = 8;

const CONFIG = `
import { defineConfig, z } from "hookd/config";
const attack = z.object({ hop: z.number().int().optional(), port: z.number().int().optional() });
export default defineConfig({
  events: {
    "test.ping": z.object({ n: z.number().int() }),
    "test.flaky": z.object({ n: z.number().int(), fail: z.boolean() }),
${ATTACKS.map((name) => `    "${eventOf(name)}": attack,`).join("\n")}
  },
  delivery: { backoffMs: 20, maxBackoffMs: 50, maxAttempts: 2, maxEmitDepth: 4 },
  // Generous runs (every attack fires at once on a small machine), short loads (two plugins never finish loading).
  // ctx.fetch may reach the two local servers the config names, nothing else on this machine.
  sandbox: {
    timeoutMs: 15000,
    loadTimeoutMs: 1500,
    breaker: { failures: 3, coolDownMs: 1500 },
    fetchAllowHosts: [new URL(process.env.HOSTILE_SINK ?? "http://x").host, new URL(process.env.HOSTILE_ORIGIN2 ?? "http://x").host],
    fetchMaxConcurrent: ${FETCH_MAX_CONCURRENT},
  },
  secrets: { "victim:VICTIM_TOKEN": "victim-secret", "fetch-daemon-api:STOLEN_TOKEN": "stolen-token", "fetch-redirect-credentials:CRED_KEY": "cred-secret-value" },
});
`;

interface RunRecord {
  id: number;
  eventId: string;
  plugin: string;
  status: "pending" | "running" | "done" | "dead";
  attempts: number;
  lastError: { code: string; message: string; location?: string } | null;
}

/** Each attack, what it tries, and the code its run must be recorded with (dead-lettered). */
const CASES: Array<[plugin: string, attempt: string, code: string]> = [
  ["loop-sync", "while(true) before any await", "HOOKD_RUN_TIMEOUT"],
  ["loop-after-await", "while(true) after awaiting a host call", "HOOKD_RUN_TIMEOUT"],
  ["loop-in-microtask", "while(true) after `await null`", "HOOKD_RUN_TIMEOUT"],
  ["never-settles", "a promise that never settles", "HOOKD_RUN_TIMEOUT"],
  ["microtask-flood", "an endless chain of microtasks", "HOOKD_RUN_TIMEOUT"],
  ["regex-dos", "catastrophic regular expression backtracking", "HOOKD_RUN_TIMEOUT"],
  ["atomics-wait", "Atomics.wait forever", "HOOKD_RUN_TIMEOUT"],
  ["wasm-loop", "an endless WebAssembly loop", "HOOKD_RUN_TIMEOUT"],
  ["detached-wasm", "a loop after an asynchronous WebAssembly compile", "HOOKD_RUN_TIMEOUT"],
  ["cpu-burn", "CPU burnt in slices between host calls", "HOOKD_RUN_CPU"],
  ["recursion", "recursion without end", "HOOKD_RUN_STACK_OVERFLOW"],
  ["oom-array", "arrays allocated until the heap limit", "HOOKD_RUN_MEMORY"],
  ["oom-keys", "a one-million-key object under 32 MB (aborts a plain isolated-vm host)", "HOOKD_RUN_MEMORY"],
  ["oom-map", "a Map grown until the heap limit", "HOOKD_RUN_MEMORY"],
  ["oom-string", "a string doubled until V8 refuses it", "HOOKD_RUN_MEMORY"],
  ["oom-buffers", "ArrayBuffers until the limit", "HOOKD_RUN_MEMORY"],
  ["huge-string", "a 128 MB string in a 24 MB isolate", "HOOKD_RUN_MEMORY"],
  ["emit-flood", "a thousand emits from one run", "HOOKD_RUN_EMIT_LIMIT"],
  ["fetch-undeclared", "fetch to undeclared hosts", "HOOKD_FETCH_NOT_ALLOWED"],
  ["fetch-loopback", "fetch to 127.0.0.1 and friends through a wildcard pattern", "HOOKD_FETCH_NOT_ALLOWED"],
  ["fetch-redirect", "a redirect that leaves the allowlist", "HOOKD_FETCH_NOT_ALLOWED"],
  ["fetch-huge", "a response larger than the plugin may read", "HOOKD_FETCH_TOO_LARGE"],
  ["fetch-slow", "a response that never comes", "HOOKD_FETCH_TIMEOUT"],
  ["fetch-daemon-api", "the daemon's own API, with a token, through `http://*`", "HOOKD_FETCH_NOT_ALLOWED"],
  ["fetch-flood", "3,000 fetches at once", "HOOKD_FETCH_NOT_ALLOWED"],
  ["fetch-pattern-redos", "a fetch pattern that backtracks for ages against a long URL", "HOOKD_FETCH_NOT_ALLOWED"],
  ["kv-huge-value", "a kv value over the limit", "HOOKD_KV_LIMIT"],
  ["kv-key-flood", "kv keys past the limit", "HOOKD_KV_LIMIT"],
  ["deep-nesting", "values nested too deep for the host's JSON", "HOOKD_HOST_CALL_INVALID"],
  ["reach-process", "process.env", "HOOKD_RUN_FAILED"],
  ["reach-require", "require('fs')", "HOOKD_RUN_FAILED"],
  ["function-constructor", 'globalThis.constructor.constructor("return process")()', "HOOKD_RUN_FAILED"],
  ["dynamic-import", "import('node:fs') at run time", "HOOKD_RUN_FAILED"],
  ["prepare-stack-trace", "Error.prepareStackTrace to harvest stack frames", "HOOKD_RUN_FAILED"],
  // The forged host call is refused by the host (its args are no list); the runtime now reports
  // that refusal as it is, since a polluted toJSON no longer reaches the reply it writes by hand.
  ["prototype-pollution", "prototype pollution of what the host passes in", "HOOKD_KV_INVALID"],
  ["kv-peek", "reading another plugin's kv", "HOOKD_RUN_FAILED"],
  ["secrets-peek", "reading another plugin's secrets and hookd's own variables", "HOOKD_RUN_FAILED"],
  ["forge-code", "passing its failure off as a sandbox crash", "HOOKD_RUN_FAILED"],
  ["detached-finalizer", "a looping finalizer left to run outside any run", "HOOKD_RUN_FAILED"],
  ["wait-async", "Atomics.waitAsync (aborts a plain isolated-vm host)", "HOOKD_RUN_FAILED"],
];

/** Where the sink's cross-origin redirect points (known once the server listens). */
const origin2UrlRef = { value: "" };

describe("hostile plugins", () => {
  let sink: Server;
  /** A local server the config does not allow: nothing may reach it. */
  let loot: Server;
  /** Another origin the sink redirects to, allowed: what arrives there is recorded. */
  let origin2: Server;
  const sinkHits: string[] = [];
  const landed: Array<{ method: string; headers: Record<string, unknown>; body: string }> = [];
  const flood = { inFlight: 0, max: 0, served: 0 };
  const project = new TestProject({ fixtures: ["hostile"], config: CONFIG });
  const daemon = new TestDaemon(project);
  const attackIds = new Map<string, string>();
  let pings = 100;

  beforeAll(async () => {
    sink = createServer((request, response) => {
      const url = request.url ?? "";
      if (url === "/allowed/jump-forbidden") return void response.writeHead(302, { location: "/forbidden" }).end();
      if (url === "/allowed/jump-away") return void response.writeHead(302, { location: "http://evil.example/" }).end();
      if (url === "/huge") return void response.end("h".repeat(1024 * 1024));
      if (url === "/slow") return; // never answers
      if (url === "/allowed/jump-origin") return void response.writeHead(307, { location: `${origin2UrlRef.value}/allowed/landed` }).end();
      if (url === "/flood") {
        flood.max = Math.max(flood.max, ++flood.inFlight);
        // Answered on the next turn, so requests that arrive together are in flight together.
        return void setImmediate(() => {
          flood.inFlight--;
          flood.served++;
          response.end("wave");
        });
      }
      sinkHits.push(url);
      response.end("reached");
    });
    loot = createServer((request, response) => {
      sinkHits.push(`loot ${request.url}`);
      response.end("loot");
    });
    origin2 = createServer((request, response) => {
      let body = "";
      request.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      request.on("end", () => {
        landed.push({ method: request.method ?? "", headers: request.headers, body });
        response.end("landed");
      });
    });
    const listen = async (server: Server) => {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    };
    const sinkUrl = await listen(sink);
    const lootUrl = await listen(loot);
    const origin2Url = await listen(origin2);
    origin2UrlRef.value = origin2Url;
    await daemon.start({ env: { HOSTILE_SINK: sinkUrl, HOSTILE_LOOT: lootUrl, HOSTILE_ORIGIN2: origin2Url, HOOKD_TEST_CANARY: "canary-value" }, timeoutMs: 60_000 });

    const stored = await daemon.post("test.ping", { n: 1 });
    await daemon.waitForLog((line) => line.msg === "victim stored" && line.eventId === stored.body.id);
    // Every attack at once: they run side by side, as they would in production.
    await Promise.all(
      ATTACKS.filter((name) => !LOADS_FAIL.has(name)).map(async (name) => {
        const { status, body } = await daemon.post(eventOf(name), name === "fetch-daemon-api" ? { port: Number(new URL(daemon.url).port) } : {});
        expect(status).toBe(202);
        attackIds.set(name, body.id);
      }),
    );
  }, 90_000);

  afterAll(async () => {
    await daemon.stop();
    project.remove();
    for (const server of [sink, loot, origin2]) {
      server?.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
    }
  });

  /** The run of `plugin` for its attack event, once it is done or dead. */
  async function settledRun(plugin: string, timeoutMs = 30_000): Promise<RunRecord> {
    const eventId = attackIds.get(plugin)!;
    let run: RunRecord | undefined;
    return waitUntil(
      async () => {
        const { runs } = (await daemon.getJson(`/api/runs?plugin=${plugin}`)) as { runs: RunRecord[] };
        run = runs.find((r) => r.eventId === eventId);
        return run && (run.status === "done" || run.status === "dead") && run;
      },
      { timeoutMs, intervalMs: 50, what: () => `the run of ${plugin} to settle (last seen ${JSON.stringify(run)})` },
    );
  }

  /** The daemon answers and a well-behaved plugin handles a fresh event, in a clean realm. */
  async function neighboursStillServe(): Promise<void> {
    expect((await daemon.fetch("/healthz")).status).toBe(200);
    const n = pings++;
    const { status, body } = await daemon.post("test.ping", { n });
    expect(status).toBe(202);
    const handled = await daemon.waitForLog((line) => line.msg === "bystander handled" && line.eventId === body.id, 15_000);
    expect(handled).toMatchObject({ n, polluted: null, arrayPolluted: null, json: '{"a":1}', kv: n });
  }

  it("holds at least 25 attacks, each a real plugin file", () => {
    expect(ATTACKS.length).toBeGreaterThanOrEqual(25);
    expect(CASES.length + LOADS_FAIL.size + ["log-flood", "log-huge-line", "emit-loop", "fetch-redirect-credentials"].length).toBe(ATTACKS.length);
  });

  it.each(CASES)("%s: contains %s as %s", async (plugin, _attempt, code) => {
    const run = await settledRun(plugin);
    expect(run.status).toBe("dead");
    expect(run.lastError?.code, JSON.stringify(run.lastError)).toBe(code);
    await neighboursStillServe();
  });

  it("logs a run that hit a limit with its code, plugin, event and run id", async () => {
    const run = await settledRun("cpu-burn");
    const line = await daemon.waitForLog((l) => l.code === "HOOKD_RUN_CPU" && l.runId === String(run.id) && l.msg !== undefined);
    expect(line).toMatchObject({ plugin: "cpu-burn", event: "attack.cpu_burn", eventId: attackIds.get("cpu-burn") });
  });

  it("maps errors from plugin code to the TypeScript source", async () => {
    const run = await settledRun("reach-process");
    expect(run.lastError?.location).toBe("plugins/reach-process.ts:7:15");
    expect(run.lastError?.message).toContain("process is not defined");
    const recursion = await settledRun("recursion");
    expect(recursion.lastError?.location).toMatch(/^plugins\/recursion\.ts:5:\d+$/);
  });

  it("keeps the host's stack and paths out of what a plugin sees", async () => {
    const run = await settledRun("deep-nesting");
    expect(run.lastError?.message).not.toMatch(/\/work\/|node_modules|isolated-vm|sandbox\//);
  });

  it("lets a flood of log lines through only up to the run's limit, with one warning", async () => {
    const run = await settledRun("log-flood");
    expect(run.status).toBe("done");
    const warning = await daemon.waitForLog((l) => l.code === "HOOKD_RUN_LOG_LIMIT" && l.runId === String(run.id));
    expect(warning).toMatchObject({ plugin: "log-flood", eventId: attackIds.get("log-flood") });
    expect(daemon.logs.filter((l) => l.msg === "flood" && l.runId === String(run.id))).toHaveLength(50);
    await neighboursStillServe();
  });

  it("cuts a huge log line down and stops a run's log bytes at their limit", async () => {
    const run = await settledRun("log-huge-line");
    expect(run.status).toBe("done");
    const huge = await daemon.waitForLog((l) => l.msg === "huge line" && l.runId === String(run.id));
    expect(huge).toMatchObject({ truncated: true });
    expect(huge.big).toBeUndefined();
    await daemon.waitForLog((l) => l.code === "HOOKD_RUN_LOG_LIMIT" && l.runId === String(run.id));
    expect(daemon.logs.filter((l) => l.msg === "bulky" && l.runId === String(run.id)).length).toBeLessThan(10);
  });

  it("cuts an emit loop at the emit depth with HOOKD_EVENT_EMIT_DEPTH", async () => {
    const runs = await waitUntil(
      async () => {
        const { runs } = (await daemon.getJson("/api/runs?plugin=emit-loop")) as { runs: RunRecord[] };
        return runs.some((r) => r.status === "dead") && runs;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: "a dead run of emit-loop" },
    );
    // Depth 0 (the posted event) to 4 (maxEmitDepth) run; the emit from depth 4 is refused.
    expect(runs).toHaveLength(5);
    const dead = runs.filter((r) => r.status === "dead");
    expect(dead).toHaveLength(1);
    expect(dead[0]!.lastError?.code).toBe("HOOKD_EVENT_EMIT_DEPTH");
    expect(dead[0]!.attempts).toBe(1);
    await neighboursStillServe();
  });

  it("never lets a fetch reach loopback, a redirect target or the cloud metadata address", async () => {
    await settledRun("fetch-loopback");
    await settledRun("fetch-redirect");
    const loopback = await daemon.waitForLog((l) => l.msg === "loopback refused");
    expect(loopback.codes).toEqual(Array(10).fill("HOOKD_FETCH_NOT_ALLOWED"));
    const redirect = await daemon.waitForLog((l) => l.msg === "redirect refused");
    expect(redirect.codes).toEqual(["HOOKD_FETCH_NOT_ALLOWED", "HOOKD_FETCH_NOT_ALLOWED"]);
    const undeclared = await daemon.waitForLog((l) => l.msg === "fetch refused");
    expect(undeclared.codes).toEqual(Array(4).fill("HOOKD_FETCH_NOT_ALLOWED"));
    expect(sinkHits).toEqual([]);
  });

  it("never lets a plugin reach the daemon's own API, whatever it declares", async () => {
    await settledRun("fetch-daemon-api");
    const refused = await daemon.waitForLog((l) => l.msg === "daemon api refused");
    expect(refused.codes).toEqual(Array(6).fill("HOOKD_FETCH_NOT_ALLOWED"));
    expect(daemon.logs.some((l) => l.msg === "ESCAPED: fetch reached the daemon's API")).toBe(false);
    // The daemon logs every request it serves; none came from the plugin's token.
    expect(daemon.logs.some((l) => JSON.stringify(l).includes("stolen-token"))).toBe(false);
  });

  it("keeps a plugin's fetches on the network to sandbox.fetchMaxConcurrent at once; the rest wait their turn", async () => {
    await settledRun("fetch-flood");
    const settled = await daemon.waitForLog((l) => l.msg === "flood settled");
    const codes = settled.codes as Record<string, number>;
    expect(Object.values(codes).reduce((a, b) => a + b, 0)).toBe(3000);
    // Waiting ones went on once a slot was free (many more than the limit were answered).
    expect(codes.ok ?? 0).toBeGreaterThan(FETCH_MAX_CONCURRENT);
    expect(flood.max).toBeGreaterThan(0);
    expect(flood.max).toBeLessThanOrEqual(FETCH_MAX_CONCURRENT);
  });

  it("drops credentials when a redirect changes origin, and keeps the rest of the request", async () => {
    const run = await settledRun("fetch-redirect-credentials");
    expect(run.status, JSON.stringify(run.lastError)).toBe("done");
    const line = await daemon.waitForLog((l) => l.msg === "redirect landed");
    expect(line).toMatchObject({ status: 200, body: "landed", url: `${origin2UrlRef.value}/allowed/landed` });
    expect(landed).toHaveLength(1);
    const [request] = landed;
    expect(request).toMatchObject({ method: "POST", body: "payload" });
    expect(request!.headers["x-trace"]).toBe("kept");
    for (const name of ["authorization", "cookie", "proxy-authorization", "x-api-key"]) expect(request!.headers[name], name).toBeUndefined();
  });

  it("keeps another plugin's kv and secrets out of reach, and its kv unforged", async () => {
    await settledRun("kv-peek");
    await settledRun("secrets-peek");
    await settledRun("prototype-pollution");
    const { body } = await daemon.post("test.ping", { n: 2 });
    const checked = await daemon.waitForLog((l) => l.msg === "victim checked" && l.eventId === body.id);
    expect(checked.stored).toEqual({ owner: "victim", token: "victim-secret" });
    expect(checked.keys).toEqual(["private"]);
  });

  // Node 24's V8 cannot stop these isolates and the process is replaced; Node 26's recovers them
  // as ordinary out-of-memory runs (test/sandbox/supervisor.test.ts shows both hazards).
  const losesIsolates = Number(process.versions.node.split(".")[0]) < 26;

  it(`${losesIsolates ? "replaces the sandbox process after V8 loses an isolate" : "contains an isolate V8 recovers from its memory limit"}, without losing the daemon`, async () => {
    const settled = await settledRun("oom-keys");
    if (!losesIsolates) {
      expect(settled.lastError?.code).toBe("HOOKD_RUN_MEMORY");
      return neighboursStillServe();
    }
    const replaced = await daemon.waitForLog((l) => l.msg === "sandbox process restarted; plugins reloaded" && /replaced/.test(String(l.reason)), 30_000);
    expect(replaced.reason).toMatch(/oom-keys|oom-map|top-level-oom/);
    await neighboursStillServe();
  });

  it("fails the load of a plugin whose top-level code loops or exhausts memory", async () => {
    const { plugins } = (await daemon.getJson("/api/plugins")) as { plugins: Array<{ name: string; state: string; lastError: { code: string } | null }> };
    for (const name of LOADS_FAIL) {
      expect(plugins.find((p) => p.name === name)).toMatchObject({ state: "failed", lastError: { code: "HOOKD_PLUGIN_LOAD" } });
    }
    expect(plugins.find((p) => p.name === "bystander")).toMatchObject({ state: "loaded" });
  });

  it("records isolate rebuilds per plugin in GET /api/plugins", async () => {
    await settledRun("loop-sync");
    const { plugins } = (await daemon.getJson("/api/plugins")) as { plugins: Array<{ name: string; health: { isolateRestarts: number; state: string } }> };
    expect(plugins.find((p) => p.name === "loop-sync")?.health).toMatchObject({ isolateRestarts: 2, state: "running" });
    expect(plugins.find((p) => p.name === "bystander")?.health).toMatchObject({ isolateRestarts: 0, state: "running" });
  });

  it("pauses a plugin that keeps failing, holds its deliveries, and runs them after the cool-down", async () => {
    for (let n = 0; n < 3; n++) await daemon.post("test.flaky", { n, fail: true });
    const paused = await daemon.waitForLog((l) => l.code === "HOOKD_PLUGIN_PAUSED" && l.plugin === "flaky", 15_000);
    expect(paused.failures).toBe(3);
    const { plugins } = (await daemon.getJson("/api/plugins")) as { plugins: Array<{ name: string; health: { state: string; pauses: number } }> };
    expect(plugins.find((p) => p.name === "flaky")?.health).toMatchObject({ state: "paused", pauses: 1 });

    const { body } = await daemon.post("test.flaky", { n: 9, fail: false });
    const handled = await daemon.waitForLog((l) => l.msg === "flaky handled" && l.eventId === body.id, 15_000);
    // Held while paused: it ran only after the pause was over (log order, not a guessed time).
    const pausedAt = daemon.logs.indexOf(paused);
    const overAt = daemon.logs.findIndex((l, i) => i > pausedAt && l.plugin === "flaky" && /pause over/.test(String(l.msg)));
    expect(overAt).toBeGreaterThan(pausedAt);
    expect(daemon.logs.indexOf(handled)).toBeGreaterThan(overAt);
    // The success closes the breaker once the run is recorded, a moment after its log line.
    await daemon.waitForLog((l) => l.component === "breaker" && l.plugin === "flaky" && /runs again/.test(String(l.msg)));
    const after = (await daemon.getJson("/api/plugins")) as { plugins: Array<{ name: string; health: { state: string } }> };
    expect(after.plugins.find((p) => p.name === "flaky")?.health.state).toBe("running");
  });

  it("never let any attack escape, and the daemon kept running throughout", async () => {
    const escaped = daemon.logs.filter((line: LogLine) => String(line.msg ?? "").includes("ESCAPED"));
    expect(escaped).toEqual([]);
    expect(daemon.pid).toBeDefined();
    expect(daemon.logs.filter((l) => l.msg === "hookd ready")).toHaveLength(1);
    await neighboursStillServe();
  });
});
