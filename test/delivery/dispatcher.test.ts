// The dispatcher's decisions (backoff, dead letters, crash suspects, drain) on a real store, with
// a scripted sandbox and a clock moved by hand.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Settings } from "../../core/config/settings.ts";
import { Dispatcher } from "../../core/delivery/dispatcher.ts";
import { createLogger } from "../../core/base/log.ts";
import type { PluginManager } from "../../core/plugins/manager.ts";
import { retryDelayMs, retryPolicyFor } from "../../core/routing/retry-policy.ts";
import { SqliteStore } from "../../core/store/sqlite.ts";
import type { DeliveryRecord, DeliveryTarget, RunOutcome } from "../../core/store/types.ts";
import type { AcceptReservation } from "../../core/delivery/start-at-accept.ts";
import type { RunRequest } from "../../sandbox/contract/run.ts";
import type { Sandbox } from "../../sandbox/contract/sandbox.ts";
import { StubSandbox } from "../helpers/sandboxes.ts";
import { pause, waitUntil } from "../helpers/wait.ts";

const T0 = Date.parse("2026-11-21T10:00:00Z");
const delivery: Settings["delivery"] = {
  maxAttempts: 4,
  backoffMs: 1000,
  maxBackoffMs: 3000,
  concurrency: 8,
  maxEmitDepth: 8,
  maxDescendants: 1000,
  orderBy: {},
  drainMs: 1000,
  retention: { doneMs: 0, deadMs: 0 },
};

type Script = (request: RunRequest) => Promise<RunOutcome>;

class ScriptedSandbox extends StubSandbox {
  readonly requests: RunRequest[] = [];
  inflight = 0;
  constructor(public script: Script) {
    super();
  }
  async run(request: RunRequest): Promise<RunOutcome> {
    this.requests.push(request);
    this.inflight++;
    try {
      return await this.script(request);
    } finally {
      this.inflight--;
    }
  }
}

const plugins = {
  claimKeys: () => ["a", "b"],
  currentVersion: () => 1,
  actionOwner: () => undefined,
} as unknown as PluginManager;

let dir: string;
let store: SqliteStore;
let now: number;
let dispatcher: Dispatcher | undefined;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "hookd-dispatch-"));
  store = new SqliteStore({ file: path.join(dir, "hookd.db") });
  now = T0;
});
afterEach(async () => {
  await dispatcher?.stop(0);
  dispatcher = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function startDispatcher(sandbox: Sandbox, options: { retryPolicy?: Parameters<typeof retryPolicyFor>[1] } = {}): Dispatcher {
  dispatcher = new Dispatcher({
    store,
    sandbox,
    plugins,
    delivery: () => delivery,
    retryPolicy: options.retryPolicy === undefined ? undefined : () => retryPolicyFor(delivery, options.retryPolicy),
    leaseMs: () => 60_000,
    logger: createLogger({ level: "silent" }),
    now: () => now,
  });
  dispatcher.start();
  return dispatcher;
}

let eventCount = 0;
async function accept(plugin = "a", maxAttempts = delivery.maxAttempts): Promise<string> {
  const id = `ev-${++eventCount}`;
  await store.acceptEvent({ id, name: "deal.close", payload: {}, receivedAt: now, source: "http", depth: 0 }, [
    { kind: "handler", plugin, target: "deal.close", maxAttempts },
  ]);
  dispatcher?.wake();
  return id;
}

async function runOf(eventId: string): Promise<DeliveryRecord> {
  const [run] = await store.listRuns({ eventId });
  return run!;
}

/** Polls (real time) until the check passes (the shared helper, with this file's bound and pace). */
function until<T>(check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  return waitUntil(check, { timeoutMs, intervalMs: 5 });
}

const failing: Script = async () => ({ ok: false, retriable: true, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "sink down" } });
const ok: Script = async () => ({ ok: true, durationMs: 1 });

describe("retries", () => {
  it("computes exponential delays with equal jitter, capped", () => {
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(attempt, 1000, 3000, () => 0))).toEqual([500, 1000, 1500, 1500]);
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(attempt, 1000, 3000, () => 1))).toEqual([1000, 2000, 3000, 3000]);
  });

  it("retries a failing run with backoff on the clock, then dead-letters it after its last attempt", async () => {
    const sandbox = new ScriptedSandbox(failing);
    startDispatcher(sandbox);
    const id = await accept();
    const windows = [
      [500, 1000],
      [1000, 2000],
      [1500, 3000],
    ];
    for (const [attempt, [min, max]] of windows.entries()) {
      const run = await until(async () => {
        const r = await runOf(id);
        return r.status === "pending" && r.attempts === attempt + 1 && r;
      });
      const delay = run.nextAt - now;
      expect(delay).toBeGreaterThanOrEqual(min!);
      expect(delay).toBeLessThanOrEqual(max!);
      // Not due a millisecond early, even when woken.
      now = run.nextAt - 1;
      dispatcher!.wake();
      await pause(20); // a bounded watch that no run starts (an absence has no signal to wait on)
      expect(sandbox.requests).toHaveLength(attempt + 1);
      now = run.nextAt;
      dispatcher!.wake();
    }
    const dead = await until(async () => {
      const r = await runOf(id);
      return r.status === "dead" && r;
    });
    expect(dead).toMatchObject({ attempts: 4, lastError: { code: "HOOKD_RUN_FAILED", message: "sink down" } });
    expect(sandbox.requests.map((r) => r.meta.attempt)).toEqual([1, 2, 3, 4]);
  });

  it("dead-letters at once a run its handler declared non-retriable", async () => {
    startDispatcher(new ScriptedSandbox(async () => ({ ok: false, retriable: false, durationMs: 1, error: { code: "HOOKD_RUN_FAILED", message: "bad deal" } })));
    const id = await accept();
    const dead = await until(async () => {
      const r = await runOf(id);
      return r.status === "dead" && r;
    });
    expect(dead.attempts).toBe(1);
  });

  it("uses the plugin's own backoff over the config's", async () => {
    startDispatcher(new ScriptedSandbox(failing), { retryPolicy: { backoffMs: 40, maxBackoffMs: 40 } });
    const id = await accept();
    const run = await until(async () => {
      const r = await runOf(id);
      return r.status === "pending" && r.attempts === 1 && r;
    });
    expect(run.nextAt - now).toBeGreaterThanOrEqual(20);
    expect(run.nextAt - now).toBeLessThanOrEqual(40);
  });

  it("falls back to the defaults for invalid overrides", () => {
    expect(retryPolicyFor(delivery, { maxAttempts: 0, backoffMs: -1, maxBackoffMs: "x" })).toEqual({ maxAttempts: 4, backoffMs: 1000, maxBackoffMs: 3000 });
    expect(retryPolicyFor(delivery, { maxAttempts: 9 })).toEqual({ maxAttempts: 9, backoffMs: 1000, maxBackoffMs: 3000 });
  });

  it("does not charge an attempt when the sandbox is restarting", async () => {
    let calls = 0;
    startDispatcher(
      new ScriptedSandbox(async () =>
        ++calls === 1
          ? { ok: false, retriable: true, durationMs: 0, error: { code: "HOOKD_SANDBOX_UNAVAILABLE", message: "restarting" } }
          : { ok: true, durationMs: 1 },
      ),
    );
    const id = await accept();
    const waiting = await until(async () => {
      const r = await runOf(id);
      return r.status === "pending" && r.lastError !== null && r;
    });
    expect(waiting.attempts).toBe(0);
    now = waiting.nextAt;
    dispatcher!.wake();
    const done = await until(async () => {
      const r = await runOf(id);
      return r.status === "done" && r;
    });
    expect(done.attempts).toBe(1);
  });
});

describe("sandbox crashes", () => {
  it("charges a crash only to the run that causes it: the others run again alone and pass", async () => {
    const waiting: Array<(outcome: RunOutcome) => void> = [];
    const crashed: RunOutcome = { ok: false, retriable: true, durationMs: 1, error: { code: "HOOKD_SANDBOX_CRASHED", message: "SIGABRT" } };
    const aloneAtPoison: number[] = [];
    const sandbox: ScriptedSandbox = new ScriptedSandbox((request) => {
      if (request.meta.eventId !== poison) return new Promise<RunOutcome>((resolve) => waiting.push(resolve));
      aloneAtPoison.push(sandbox.inflight);
      // The poison takes the process down: every run in flight fails with it.
      return new Promise<RunOutcome>((resolve) =>
        setTimeout(() => {
          for (const other of waiting.splice(0)) other(crashed);
          resolve(crashed);
        }, 10),
      );
    });
    const innocents = [await accept("a"), await accept("b")];
    const poison = await accept("a", 3);
    startDispatcher(sandbox);
    // Innocent runs hang until the crash; once they run alone again they pass.
    await until(async () => aloneAtPoison.length >= 1);
    sandbox.script = async (request) => {
      if (request.meta.eventId !== poison) return { ok: true, durationMs: 1 };
      aloneAtPoison.push(sandbox.inflight);
      return crashed;
    };
    const dead = await until(async () => {
      const r = await runOf(poison);
      // Its retries wait for their backoff: move the clock on.
      now += 5000;
      dispatcher!.wake();
      return r.status === "dead" && r;
    });
    expect(dead).toMatchObject({ attempts: 3, suspect: true, lastError: { code: "HOOKD_SANDBOX_CRASHED" } });
    for (const id of innocents) expect(await runOf(id)).toMatchObject({ status: "done", attempts: 1 });
    // First crash beside the innocents (not charged), then three crashes alone (charged).
    expect(aloneAtPoison.slice(1)).toEqual([1, 1, 1]);
  });
});

describe("stop", () => {
  it("lets runs in flight finish within the budget and releases the leases of runs that do not", async () => {
    const sandbox = new ScriptedSandbox((request) =>
      request.meta.eventId === slow ? new Promise(() => undefined) : new Promise((resolve) => setTimeout(() => resolve({ ok: true, durationMs: 50 }), 50)),
    );
    const quick = await accept();
    const slow = await accept();
    const d = startDispatcher(sandbox);
    await until(async () => sandbox.requests.length === 2);
    expect(await d.stop(300)).toBe(1);
    expect(await runOf(quick)).toMatchObject({ status: "done", attempts: 1 });
    expect(await runOf(slow)).toMatchObject({ status: "pending", attempts: 0 });
    dispatcher = undefined;
  });
});

describe("ok path", () => {
  it("runs every due delivery and records it done", async () => {
    startDispatcher(new ScriptedSandbox(ok));
    const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => accept(i % 2 ? "a" : "b")));
    await until(async () => (await store.countByStatus()).done === 30);
    for (const id of ids.slice(0, 3)) expect(await runOf(id)).toMatchObject({ status: "done", attempts: 1 });
  });
});

describe("started at accept", () => {
  const target = (plugin: string, extra: Partial<DeliveryTarget> = {}): DeliveryTarget => ({ kind: "handler", plugin, target: "deal.close", maxAttempts: 3, ...extra });
  const startedEvent = (id: string) => ({ id, name: "deal.close", payload: { did: 7 }, payloadJson: '{"did":7}', receivedAt: now, depth: 0, source: { channel: "http" as const } });

  /** The first reservation once the dispatcher has looked at the store (it gives none before). */
  async function firstReservation(d: Dispatcher, targets: DeliveryTarget[]): Promise<AcceptReservation> {
    return until(async () => d.reserve(targets));
  }

  /** Accepts an event through a reservation, as the intake does, and settles it. */
  async function acceptReserved(reservation: AcceptReservation, id = `ev-${++eventCount}`): Promise<string> {
    const outcome = await store.acceptEvent({ id, name: "deal.close", payload: { did: 7 }, receivedAt: now, source: "http", depth: 0 }, reservation.targets);
    reservation.settle(outcome, startedEvent(id));
    return id;
  }

  it("runs a delivery the accept started, with the stored bytes, and never claims it", async () => {
    const sandbox = new ScriptedSandbox(ok);
    const d = startDispatcher(sandbox);
    const claimed: number[] = [];
    const claimDeliveries = store.claimDeliveries.bind(store);
    store.claimDeliveries = async (options) => {
      const rows = await claimDeliveries(options);
      claimed.push(rows.length);
      return rows;
    };
    const reservation = await firstReservation(d, [target("a")]);
    expect(reservation.targets[0]!.lease).toMatchObject({ until: now + 60_000 });
    const id = await acceptReserved(reservation);
    await until(async () => (await runOf(id)).status === "done");
    expect(sandbox.requests).toHaveLength(1);
    expect(sandbox.requests[0]).toMatchObject({ plugin: "a", payloadJson: '{"did":7}', meta: { eventId: id, attempt: 1 } });
    expect(await runOf(id)).toMatchObject({ status: "done", attempts: 1 });
    expect(claimed.reduce((a, b) => a + b, 0)).toBe(0);
  });

  it("gives no lease to what a rule holds, nor past the concurrency, nor an owner's last slot past its share", async () => {
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const sandbox = new ScriptedSandbox(async () => (await held, { ok: true, durationMs: 1 }));
    const d = startDispatcher(sandbox);
    const first = await firstReservation(d, [target("a"), target("b", { orderKey: "k" }), target("b", { flow: { concurrency: { scope: "s", limit: 1 } } }), { ...target("a"), kind: "action" }]);
    expect(first.targets.map((t) => t.lease !== undefined)).toEqual([true, false, false, false]);
    first.settle(undefined, startedEvent("none"));
    // Concurrency 8, owners a and b: a share of 4. Plugin a runs 7 (borrowed slots), so the last
    // free slot is b's to take, never a's.
    for (let i = 0; i < 7; i++) await acceptReserved(d.reserve([target("a")])!);
    await until(async () => sandbox.requests.length === 7);
    expect(d.reserve([target("a")])).toBeUndefined();
    const b = d.reserve([target("b")]);
    expect(b?.targets[0]!.lease).toBeDefined();
    await acceptReserved(b!);
    await until(async () => sandbox.requests.length === 8);
    // Full: the next event is stored pending, and runs once a slot frees.
    expect(d.reserve([target("b")])).toBeUndefined();
    const waiting = await accept("b");
    expect((await runOf(waiting)).status).toBe("pending");
    release!();
    await until(async () => (await runOf(waiting)).status === "done");
    expect((await store.countByStatus()).done).toBe(9);
  });

  it("frees the slots of an accept that failed or started nothing", async () => {
    const d = startDispatcher(new ScriptedSandbox(ok));
    const reservations = [await firstReservation(d, [target("a")])];
    for (let i = 1; i < delivery.concurrency; i++) reservations.push(d.reserve([target(i % 2 ? "b" : "a")])!);
    expect(reservations.every(Boolean)).toBe(true);
    expect(d.reserve([target("a")])).toBeUndefined();
    for (const r of reservations) r.settle(undefined, startedEvent("failed"));
    expect(d.reserve([target("a")])).toBeDefined();
  });

  it("gives the lease back when it stopped while the accept committed", async () => {
    const sandbox = new ScriptedSandbox(ok);
    const d = startDispatcher(sandbox);
    const reservation = await firstReservation(d, [target("a")]);
    const stopping = d.stop(5_000);
    const id = await acceptReserved(reservation);
    expect(await stopping).toBe(0);
    expect(sandbox.requests).toHaveLength(0);
    expect(await runOf(id)).toMatchObject({ status: "pending", attempts: 0 });
    dispatcher = undefined;
  });
});

describe("started at accept, behind waiting deliveries", () => {
  const b = { kind: "handler" as const, plugin: "b", target: "deal.close", maxAttempts: 3 };
  const none = { id: "none", name: "deal.close", payload: {}, receivedAt: now, depth: 0 };

  it("with a store that does not look for waiting deliveries in the accept (PostgreSQL), gives no lease until the claim took what waits", async () => {
    // SQLite looks in the accept itself (test/store/start-at-accept.test.ts); switched off here,
    // the dispatcher's own knowledge of what waits is what holds new deliveries back.
    (store as { checksWaitingAtAccept: boolean }).checksWaitingAtAccept = false;
    const sandbox = new ScriptedSandbox(ok);
    const d = startDispatcher(sandbox);
    (await until(async () => d.reserve([b]))).settle(undefined, none);
    // Stored by another way (another instance, a replay) and announced: until a claim takes it, it waits.
    const waiting = await accept("a");
    expect(d.reserve([b])).toBeUndefined();
    await until(async () => (await runOf(waiting)).status === "done");
    const reservation = await until(async () => d.reserve([b]));
    expect(reservation.targets[0]!.lease).toBeDefined();
    reservation.settle(undefined, none);
  });

  it("lets a new delivery start beside one that waits for its key: that one waits for a run, not a slot", async () => {
    (store as { checksWaitingAtAccept: boolean }).checksWaitingAtAccept = false;
    let releaseHolder: (() => void) | undefined;
    const holder = new Promise<void>((resolve) => (releaseHolder = resolve));
    const sandbox = new ScriptedSandbox(async (request) => (request.meta.eventId === "keyed-1" ? (await holder, { ok: true, durationMs: 1 }) : { ok: true, durationMs: 1 }));
    const d = startDispatcher(sandbox);
    const keyed = (id: string) => store.acceptEvent({ id, name: "deal.close", payload: {}, receivedAt: now, source: "http", depth: 0 }, [{ kind: "handler", plugin: "a", target: "deal.close", maxAttempts: 3, orderKey: "deal-1" }]);
    await keyed("keyed-1");
    d.wake();
    await until(async () => sandbox.requests.length === 1);
    await keyed("keyed-2");
    d.wake();
    // Once the claim has looked (and could not take keyed-2), a new delivery may start.
    const reservation = await until(async () => d.reserve([b]));
    expect((await runOf("keyed-2")).status).toBe("pending");
    reservation.settle(undefined, none);
    releaseHolder!();
    await until(async () => (await runOf("keyed-2")).status === "done");
  });
});
