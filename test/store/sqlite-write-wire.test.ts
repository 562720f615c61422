// The writer thread's wire form (core/store/sqlite-write-wire.ts): what crosses is what was sent,
// every field of an accept and a finish, through a real MessageChannel (structured clone).
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { expect, it } from "vitest";
import { decodeOps, decodeOutcome, encodeOps, encodeOutcome } from "../../core/store/sqlite-write-wire.ts";
import type { CommitOutcome, WriteOp } from "../../core/store/sqlite-writes.ts";

function acrossAPort<T>(value: T): T {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(value);
    return receiveMessageOnPort(port2)!.message as T;
  } finally {
    port1.close();
  }
}

const everyEventField = {
  id: "0193a0c2-0000-7000-8000-000000000001",
  name: "deal.close",
  payload: null,
  payloadJson: undefined,
  receivedAt: 1_764_000_000_000,
  source: "emit" as const,
  sourceUser: "operator-7",
  parentId: "0193a0c2-0000-7000-8000-000000000000",
  depth: 2,
  maxDescendants: 100,
  idempotencyKey: "key-1",
  bodyHash: "hash",
  deliverAt: 1_764_000_060_000,
  traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
};

it("carries every field of an accept, a finish and any other write, and leaves absent ones absent", () => {
  const ops: WriteOp[] = [
    {
      op: "accept",
      event: everyEventField,
      payloadJson: '{"deal":{"id":7,"note":"a \\"quoted\\" text"}}',
      deliveries: [
        { kind: "handler", plugin: "crm", target: "deal.close", maxAttempts: 5, orderKey: "deal-7", lease: { token: "lease-1", until: 1_764_000_030_000 } },
        { kind: "action", plugin: "crm", target: "crm.note", input: { text: "hi", list: [1, { deep: true }] }, maxAttempts: 3, flow: { throttle: { scope: "deal.close=7", limit: 2, periodMs: 60_000 }, debounce: { scope: "d", periodMs: 1000 } } },
        { kind: "webhook", plugin: "webhook", target: "endpoint-1", maxAttempts: 10 },
      ],
    },
    { op: "accept", event: { id: "e2", name: "client.add", payload: { inline: true }, receivedAt: 1, source: "http", depth: 0 }, deliveries: [] },
    {
      op: "finish",
      id: 42,
      leaseToken: "lease-1",
      result: {
        status: "pending",
        now: 1_764_000_001_000,
        durationMs: 12.5,
        nextAt: 1_764_000_002_000,
        error: { code: "HOOKD_RUN_FAILED", message: "boom", stack: "at x" },
        refundAttempt: true,
        suspect: false,
        attempt: { attempt: 1, startedAt: 1, durationMs: 12.5, status: "failed", code: "HOOKD_RUN_FAILED", error: null, activity: { logs: [], fetches: [], emits: [], kvWrites: [], dropped: 0 } },
      },
    },
    { op: "finish", id: 43, leaseToken: "lease-2", result: { status: "done", now: 5, durationMs: 0.25 } },
    { op: "claim", options: { limit: 10, leaseMs: 30_000, now: 5, plugins: ["crm"] } },
    { op: "kvSet", plugin: "crm", key: "k", json: "1", now: 5, maxKeys: null },
  ] as WriteOp[];
  const decoded = decodeOps(acrossAPort(encodeOps(ops)));
  expect(decoded).toEqual(ops);
  // Absent stays absent (an undefined key would be a key in Object.keys).
  const plain = decoded[1] as Extract<WriteOp, { op: "accept" }>;
  expect(Object.keys(plain.event).sort()).toEqual(["depth", "id", "name", "payload", "receivedAt", "source"]);
  expect("payloadJson" in plain).toBe(false);
  expect(Object.keys((decoded[3] as Extract<WriteOp, { op: "finish" }>).result).sort()).toEqual(["durationMs", "now", "status"]);
  // The hot writes cross as arrays of values, the others as they are.
  expect(encodeOps(ops).map((wire) => Array.isArray(wire))).toEqual([true, true, true, true, false, false]);
});

it("carries a commit's results: stored accepts with and without started deliveries, and every other result as it is", () => {
  const outcome: CommitOutcome = {
    synchronous: "FULL",
    durationMs: 1.5,
    results: [
      { ok: true, value: { kind: "stored", id: "e1", deliveries: 3, started: [{ index: 0, id: 11 }, { index: 2, id: 12 }] } },
      { ok: true, value: { kind: "stored", id: "e2", deliveries: 0 } },
      { ok: true, value: { kind: "duplicate", id: "e0" } },
      { ok: true, value: true },
      { ok: true, value: undefined },
      { ok: true, value: [{ id: 1, plugin: "crm", payload: '{"a":1}' }] },
      { ok: false, error: { message: "UNIQUE constraint failed: events.id", code: "SQLITE_CONSTRAINT_UNIQUE" } },
    ],
  };
  const decoded = decodeOutcome(acrossAPort(encodeOutcome(outcome)));
  expect(decoded).toEqual(outcome);
  expect("started" in (decoded.results[1] as { value: object }).value).toBe(false);
});
