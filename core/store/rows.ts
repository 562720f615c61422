/**
 * How a stored row becomes a record, and a record's values the columns they go to: the same for
 * both stores, since their tables hold the same columns (JSON as text, times as epoch-ms
 * integers, `suspect` as 0/1; see sqlite-schema.ts and postgres-schema.ts). A store keeps only
 * its SQL; what it reads back is turned into EventRecord, DeliveryRecord and ClaimedDelivery here.
 */
import { RUNNING_IN_SCOPE_SQL } from "./flow-windows.ts";
import type { FlowWaiting } from "./types.ts";
import type { ClaimedDelivery, DeliveryRecord, DeliveryResult, DeliveryStatus, DeliveryTarget, EventOrigin, EventRecord, EventSource, NewEvent } from "./types.ts";

export interface ClaimRow {
  id: number;
  kind: ClaimedDelivery["kind"];
  plugin: string;
  target: string;
  attempts: number;
  max_attempts: number;
  lease_token: string;
  suspect: number;
  input: string | null;
  event_id: string;
  event_name: string;
  payload: string;
  received_at: number;
  depth: number;
  source?: string;
  source_user?: string | null;
}

export interface EventRow {
  seq: number;
  id: string;
  name: string;
  /** null only in a bounded list, for a payload over its bound (`payload_bytes` says how large). */
  payload: string | null;
  payload_bytes?: number | string;
  received_at: number;
  source: EventRecord["source"];
  parent_id: string | null;
  depth: number;
  root_id: string | null;
  deliver_at?: number | null;
  source_user?: string | null;
}

export interface RunRow {
  id: number;
  event_id: string;
  event_name: string;
  kind: DeliveryRecord["kind"];
  plugin: string;
  target: string;
  status: DeliveryStatus;
  attempts: number;
  max_attempts: number;
  next_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  duration_ms: number | null;
  order_key: string | null;
  suspect: number;
  replay_id: string | null;
  event_source?: string;
  source_user?: string | null;
  waiting?: FlowWaiting | null;
  /** 1 for a pending delivery whose concurrency scope is full (RUN_COLUMNS counts it). */
  concurrency_full?: number | boolean | null;
}

/**
 * SELECT of a run with its event's id and name, for DeliveryRecord; a pending delivery with a
 * concurrency scope is checked for a full scope (`waiting: concurrency limit`).
 */
export const RUN_COLUMNS = `d.*, e.id AS event_id, e.name AS event_name, e.source AS event_source, e.source_user,
  CASE WHEN d.status = 'pending' AND d.concurrency_key IS NOT NULL THEN ${RUNNING_IN_SCOPE_SQL} >= d.concurrency_limit END AS concurrency_full
  FROM deliveries d JOIN events e ON e.seq = d.event_seq`;

export function toClaimedDelivery(row: ClaimRow): ClaimedDelivery {
  // One row that does not parse must not fail the claim of its batch neighbours.
  let unreadable: string | undefined;
  const parse = (text: string | null, what: string): unknown => {
    if (text === null) return undefined;
    try {
      return JSON.parse(text);
    } catch (error) {
      unreadable ??= `its ${what} is not JSON (${error instanceof Error ? error.message : String(error)})`;
      return undefined;
    }
  };
  const input = parse(row.input, "input");
  const payload = parse(row.payload, "payload");
  return {
    ...(unreadable === undefined ? {} : { unreadable }),
    id: row.id,
    kind: row.kind,
    plugin: row.plugin,
    target: row.target,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    leaseToken: row.lease_token,
    suspect: row.suspect === 1,
    input,
    event: {
      id: row.event_id,
      name: row.event_name,
      payload,
      // Passed on as it is only when it parsed (one JSON value, nothing spliced after it) and holds
      // no line break (the sandbox channel is line-framed; hookd's own JSON never has one).
      ...(unreadable === undefined && !row.payload.includes("\n") ? { payloadJson: row.payload } : {}),
      receivedAt: row.received_at,
      depth: row.depth,
      ...(row.source === undefined ? {} : { source: eventSourceOf(row.source, row.source_user) }),
    },
  };
}

/**
 * An event's values in the column order of `events` (id, name, payload, received_at, source,
 * parent_id, depth, idempotency_key, body_hash), as both stores insert them.
 */
export function eventValues(event: NewEvent, payloadJson?: string): [string, string, string, number, string, string | null, number, string | null, string | null] {
  return [
    event.id,
    event.name,
    payloadJson ?? event.payloadJson ?? JSON.stringify(event.payload),
    event.receivedAt,
    event.source,
    event.parentId ?? null,
    event.depth,
    event.idempotencyKey ?? null,
    event.bodyHash ?? null,
  ];
}

export function toEventRecord(row: EventRow): EventRecord {
  return {
    seq: row.seq,
    id: row.id,
    name: row.name,
    payload: row.payload === null ? null : JSON.parse(row.payload),
    ...(row.payload === null && row.payload_bytes !== undefined ? { payloadTruncated: { bytes: Number(row.payload_bytes) } } : {}),
    receivedAt: row.received_at,
    source: row.source,
    parentId: row.parent_id,
    depth: row.depth,
    rootId: row.root_id ?? null,
    deliverAt: row.deliver_at ?? null,
    origin: eventSourceOf(row.source, row.source_user),
  };
}

export function toRunRecord(row: RunRow): DeliveryRecord {
  return {
    id: row.id,
    eventId: row.event_id,
    eventName: row.event_name,
    kind: row.kind,
    plugin: row.plugin,
    target: row.target,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    nextAt: row.next_at,
    lastError: row.last_error === null ? null : JSON.parse(row.last_error),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
    orderKey: row.order_key,
    suspect: row.suspect === 1,
    replayId: row.replay_id,
    ...(row.event_source === undefined ? {} : { eventSource: eventSourceOf(row.event_source, row.source_user) }),
    ...waitingOf(row),
  };
}

/** Why a pending delivery waits for flow control, if it does. */
function waitingOf(row: RunRow): { waiting?: FlowWaiting } {
  if (row.status !== "pending") return {};
  if (row.concurrency_full === 1 || row.concurrency_full === true) return { waiting: "concurrency" };
  return row.waiting ? { waiting: row.waiting } : {};
}

/**
 * A delivery target's values in the column order kind, plugin, target, input, order_key,
 * max_attempts: SQLite inserts them row by row, PostgreSQL as one array per column.
 */
export function deliveryValues(target: DeliveryTarget): [string, string, string, string | null, string | null, number] {
  return [target.kind, target.plugin, target.target, target.input === undefined ? null : JSON.stringify(target.input), target.orderKey ?? null, target.maxAttempts];
}

/** What a finished run writes into its delivery's row (see Store.finishDelivery). */
export interface FinishValues {
  status: DeliveryResult["status"];
  now: number;
  /** When a delivery back to pending is due; the finish time otherwise. */
  nextAt: number;
  /** The run's error as JSON text, null for a run that went well. */
  error: string | null;
  /** Null while the delivery is still to run (back to pending). */
  finishedAt: number | null;
  durationMs: number;
  /** 1 when the attempt is given back (the run never got a fair try). */
  refund: 0 | 1;
  /** 1 or 0 to mark or clear a crash suspect; null keeps what the row says. */
  suspect: 0 | 1 | null;
}

export function finishValues(result: DeliveryResult): FinishValues {
  return {
    status: result.status,
    now: result.now,
    nextAt: result.nextAt ?? result.now,
    error: result.error === undefined ? null : JSON.stringify(result.error),
    finishedAt: result.status === "pending" ? null : result.now,
    durationMs: Math.round(result.durationMs),
    refund: result.refundAttempt ? 1 : 0,
    suspect: result.suspect === undefined ? null : result.suspect ? 1 : 0,
  };
}

/** A kv row's value, or undefined for a key the plugin does not hold. */
export function toKvValue(row: { value: string } | undefined): unknown {
  return row ? JSON.parse(row.value) : undefined;
}

/** `status, COUNT(*)` rows as a count for every status, the ones without deliveries at 0. */
export function toStatusCounts(rows: ReadonlyArray<{ status: DeliveryStatus; n: number }>): Record<DeliveryStatus, number> {
  const counts: Record<DeliveryStatus, number> = { pending: 0, running: 0, done: 0, dead: 0, cancelled: 0, discarded: 0, skipped: 0 };
  for (const row of rows) counts[row.status] = row.n;
  return counts;
}

/** `ctx.event.source`: the channel an event came by, and the workstation's user for the telephony bridge's. */
export function eventSourceOf(channel: string, user: string | null | undefined): EventOrigin {
  return user === null || user === undefined ? { channel: channel as EventSource } : { channel: channel as EventSource, user };
}
