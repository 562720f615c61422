/**
 * How the writes of a commit cross to the SQLite writer thread and their results come back: the
 * two writes every event makes (its accept and its run's finish) and their results as arrays of
 * values in a fixed order, the rest as the objects they are.
 *
 * postMessage copies by structured clone, which writes every property's name with its value and
 * builds every object again on the other side: an accept (the event, its deliveries, their
 * leases: five objects) took 4.3-4.7 µs to post and receive, its values in one array about 1 µs.
 * The key lists below are checked against the types at compile time (a field added to NewEvent,
 * DeliveryTarget or DeliveryResult and not here fails the build) and a decoded write equals the
 * one encoded (test/store/sqlite-write-wire.test.ts).
 */
import type { AcceptOutcome, DeliveryResult, DeliveryTarget, NewEvent } from "./types.ts";
import type { CommitOutcome, WriteOp, WriteResult } from "./sqlite-writes.ts";

const EVENT_KEYS = ["id", "name", "payload", "payloadJson", "receivedAt", "source", "sourceUser", "parentId", "depth", "maxDescendants", "idempotencyKey", "bodyHash", "deliverAt", "traceparent"] as const;
const TARGET_KEYS = ["kind", "plugin", "target", "input", "maxAttempts", "orderKey", "flow", "lease"] as const;
const RESULT_KEYS = ["status", "now", "durationMs", "nextAt", "error", "refundAttempt", "suspect", "attempt"] as const;

// Every key of the type is in its list (the lists hold only keys of their type by `satisfies` below).
type Missing<T, Keys extends readonly unknown[]> = Exclude<keyof T, Keys[number]>;
const everyKey: [Missing<NewEvent, typeof EVENT_KEYS>, Missing<DeliveryTarget, typeof TARGET_KEYS>, Missing<DeliveryResult, typeof RESULT_KEYS>] extends [never, never, never] ? true : never = true;
void everyKey;
EVENT_KEYS satisfies ReadonlyArray<keyof NewEvent>;
TARGET_KEYS satisfies ReadonlyArray<keyof DeliveryTarget>;
RESULT_KEYS satisfies ReadonlyArray<keyof DeliveryResult>;

const ACCEPT = 1;
const FINISH = 2;
const STORED = 3;

/** A write as it crosses: an accept or a finish as values, any other write as itself. */
export type WireOp = unknown[] | WriteOp;
/** A result as it crosses: a stored accept's outcome as values, any other result as itself. */
export type WireResult = unknown[] | WriteResult;

export function encodeOps(ops: readonly WriteOp[]): WireOp[] {
  return ops.map((op) => {
    if (op.op === "accept") {
      const wire: unknown[] = [ACCEPT, op.payloadJson, op.deliveries.length];
      push(wire, op.event, EVENT_KEYS);
      for (const target of op.deliveries) push(wire, target, TARGET_KEYS);
      return wire;
    }
    if (op.op === "finish") {
      const wire: unknown[] = [FINISH, op.id, op.leaseToken];
      push(wire, op.result, RESULT_KEYS);
      return wire;
    }
    return op;
  });
}

export function decodeOps(wire: readonly WireOp[]): WriteOp[] {
  return wire.map((item) => {
    if (!Array.isArray(item)) return item as WriteOp;
    if (item[0] === ACCEPT) {
      let at = 3;
      const event = read<NewEvent>(item, at, EVENT_KEYS);
      at += EVENT_KEYS.length;
      const deliveries: DeliveryTarget[] = [];
      for (let i = 0; i < (item[2] as number); i++, at += TARGET_KEYS.length) deliveries.push(read<DeliveryTarget>(item, at, TARGET_KEYS));
      const payloadJson = item[1] as string | undefined;
      return payloadJson === undefined ? { op: "accept", event, deliveries } : { op: "accept", event, payloadJson, deliveries };
    }
    return { op: "finish", id: item[1] as number, leaseToken: item[2] as string, result: read<DeliveryResult>(item, 3, RESULT_KEYS) };
  });
}

/** The results of a commit: a stored accept's outcome as [STORED, id, deliveries, index, id, index, id, ...]. */
export function encodeOutcome(outcome: CommitOutcome): { results: WireResult[]; synchronous: CommitOutcome["synchronous"]; durationMs: number } {
  return {
    synchronous: outcome.synchronous,
    durationMs: outcome.durationMs,
    results: outcome.results.map((result) => {
      const value = result.ok ? (result.value as Partial<AcceptOutcome> | undefined) : undefined;
      if (value === undefined || value === null || typeof value !== "object" || value.kind !== "stored") return result;
      const wire: unknown[] = [STORED, value.id, value.deliveries];
      for (const started of value.started ?? []) wire.push(started.index, started.id);
      return wire;
    }),
  };
}

export function decodeOutcome(wire: { results: readonly WireResult[]; synchronous: CommitOutcome["synchronous"]; durationMs: number }): CommitOutcome {
  return {
    synchronous: wire.synchronous,
    durationMs: wire.durationMs,
    results: wire.results.map((item) => {
      if (!Array.isArray(item)) return item as WriteResult;
      const value: AcceptOutcome = { kind: "stored", id: item[1] as string, deliveries: item[2] as number };
      if (item.length > 3) {
        value.started = [];
        for (let i = 3; i < item.length; i += 2) value.started.push({ index: item[i] as number, id: item[i + 1] as number });
      }
      return { ok: true, value };
    }),
  };
}

function push(wire: unknown[], from: object, keys: readonly string[]): void {
  for (const key of keys) wire.push((from as Record<string, unknown>)[key]);
}

/** The object back from its values: a key whose value was undefined stays out, as it was. */
function read<T>(wire: readonly unknown[], at: number, keys: readonly string[]): T {
  const object: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const value = wire[at + i];
    if (value !== undefined) object[keys[i]!] = value;
  }
  return object as T;
}
