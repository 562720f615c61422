/**
 * Accepts on PostgreSQL, many in one statement: the external events with no flow rules that are
 * due now (nearly every event, with or without order keys or idempotency keys) that reach the store
 * while earlier accepts are still committing are inserted together, with their deliveries, by one
 * statement over arrays: one round trip, one transaction and one WAL flush for all of them,
 * instead of one each. A 202 still means on disk: each waiting accept is answered only after the
 * commit that holds its rows.
 *
 * Batches form by themselves, without a timer: at most MAX_IN_FLIGHT statements are with the
 * server at a time, and what arrives meanwhile waits for the next one. A lone event on a quiet
 * daemon goes at once (the next turn of the event loop) in a batch of one.
 *
 * A bad row costs only itself: a batch whose statement fails on its data stored nothing (one
 * statement is one transaction), and each of its accepts is tried again alone, so the one that
 * cannot be stored gets its own error and the others are stored; so does a batch whose key
 * waited too long on another transaction's uncommitted insert of it (see mayBeOneRowsFault). A
 * failure of the server or the connection (a timeout, a restart) is every accept's, as it would
 * be alone: they all get it at once rather than each waiting for it again.
 */
import type pg from "pg";
import { deliveryValues, eventValues } from "./rows.ts";
import type { AcceptOutcome, DeliveryTarget, NewEvent } from "./types.ts";

/**
 * Most events in one statement, and most characters of payloads and inputs (a larger event still
 * goes, alone): a longer queue goes as several, and no statement grows much past a few megabytes.
 */
const MAX_BATCH = 128;
const MAX_BATCH_CHARS = 4 * 1024 * 1024;

/**
 * Statements of accepts with the server at once. Two keep the server busy while a batch's
 * answer travels back (and leave the pool to reads, claims and the other accepts); more would
 * only make each batch smaller.
 */
const MAX_IN_FLIGHT = 2;

/** Whether an accept can go in a batch: an external event, due now, whose deliveries have no flow rules. */
export function isBatchable(event: NewEvent, targets: readonly DeliveryTarget[]): boolean {
  return event.parentId === undefined && event.deliverAt === undefined && targets.every((t) => t.flow === undefined);
}

/** How the store answers what a batch could not: a taken idempotency key, and an accept of a failed batch (alone). */
export interface AcceptFallbacks {
  repeatOf(event: NewEvent): Promise<AcceptOutcome>;
  alone(event: NewEvent, targets: readonly DeliveryTarget[]): Promise<AcceptOutcome>;
}

/** One accept's columns, serialized when it is handed in (a value that cannot be fails that accept alone, at once). */
interface EventRow {
  id: string;
  name: string;
  payload: string;
  receivedAt: number;
  source: string;
  depth: number;
  idempotencyKey: string | null;
  bodyHash: string | null;
  sourceUser: string | null;
  traceparent: string | null;
  deliveries: Array<{
    kind: string;
    plugin: string;
    target: string;
    input: string | null;
    orderKey: string | null;
    /** The order key's lock: one per plugin and key, as the statements for one event take it. */
    orderLock: string | null;
    maxAttempts: number;
    leaseToken: string | null;
    leaseUntil: number | null;
  }>;
  /** Characters of text it adds to the statement (payload and inputs): what bounds a batch. */
  chars: number;
}

interface Waiting {
  event: NewEvent;
  targets: readonly DeliveryTarget[];
  row: EventRow;
  resolve: (outcome: AcceptOutcome) => void;
  reject: (error: unknown) => void;
}

/** A stored event's deliveries as the statement returned them (id and lease token; none for an event without deliveries). */
type StoredDeliveries = Array<{ id: number; leaseToken: string | null }>;

export class AcceptBatcher {
  private queue: Waiting[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** Who waits in drain() for the next batch to end. */
  private drained: Array<() => void> = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly fallbacks: AcceptFallbacks,
  ) {}

  /** Stores a batchable accept (isBatchable) with the others of its batch. */
  accept(event: NewEvent, targets: readonly DeliveryTarget[]): Promise<AcceptOutcome> {
    const row = rowOf(event, targets);
    // A payload or input with no JSON text (a transform's undefined, a BigInt): the statement for
    // one event reports it, for this accept alone.
    if (row === undefined) return this.fallbacks.alone(event, targets);
    return new Promise<AcceptOutcome>((resolve, reject) => {
      this.queue.push({ event, targets, row, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || this.queue.length === 0) return;
    this.scheduled = true;
    // The next turn: the accepts of this turn's requests go together.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Resolves once every accept handed in so far is answered (the store's close). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
  }

  private flush(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const batch = this.queue.splice(0, batchLength(this.queue));
      this.inFlight++;
      void this.write(batch).finally(() => {
        this.inFlight--;
        this.schedule();
        for (const resolve of this.drained.splice(0)) resolve();
      });
    }
  }

  /** Settles every accept of the batch (its repeats' lookups and retries included) before it resolves: drain() relies on it. */
  private async write(batch: Waiting[]): Promise<void> {
    let stored: Map<string, StoredDeliveries>;
    try {
      stored = await this.insert(batch);
    } catch (error) {
      if (batch.length === 1 || !mayBeOneRowsFault(error, batch)) {
        for (const w of batch) w.reject(error);
        return;
      }
      // Nothing of the batch is stored: each accept again on its own, in the order they came (so
      // the first of a key is still the one stored), so that one that cannot be stored fails alone
      // with its own error and the others are stored.
      for (const w of batch) await this.fallbacks.alone(w.event, w.targets).then(w.resolve, w.reject);
      return;
    }
    await Promise.all(
      batch.map(async (w) => {
        const deliveries = stored.get(w.event.id);
        if (deliveries !== undefined) return w.resolve(storedOutcome(w.event, w.targets, deliveries));
        await this.fallbacks.repeatOf(w.event).then(w.resolve, w.reject);
      }),
    );
  }

  /**
   * One statement: the events (one whose idempotency key is taken stores nothing), then the
   * deliveries of the stored ones; what comes back is each stored event's deliveries.
   */
  private async insert(batch: readonly Waiting[]): Promise<Map<string, StoredDeliveries>> {
    const events = batch.map((w) => w.row);
    // Each delivery with the ordinal of its event in the batch (WITH ORDINALITY below counts from 1).
    const deliveries = events.flatMap((row, index) => row.deliveries.map((d) => ({ ...d, event: index + 1 })));
    const column = <T, K extends keyof T>(rows: readonly T[], key: K) => rows.map((row) => row[key]);
    // Named: parsed and planned once per connection. Deliveries are inserted in the order they
    // came (WITH ORDINALITY), so their ids (the order claims take them in) keep the acceptance
    // order; so do the events' sequence numbers, but for events with an idempotency key, which
    // go after the others of their batch, in the order of their keys: two batches in flight that
    // hold the same keys lock them in the same order, one waits for the other's commit, and
    // neither can deadlock. Two accepts of one key in one batch: the second stores nothing, as if
    // it came after the first's commit. A delivery is due at its event's arrival, running under
    // its lease (attempt 1) when it has one, as the single statements store it. RETURNING of an
    // INSERT names only its own table: the deliveries find their event again by its sequence number.
    // Order keys: the batch holds every key's lock (in hash order, the order every accept takes
    // them in) before any of its deliveries draws an id, so a key's deliveries get their ids in
    // the order their batches commit, and within a batch in the order they came, as the
    // statements for one event give them (DELIVERY_INSERT_CTES in postgres.ts). A delivery with an
    // order key never starts at accept: the claim takes it once its key's earlier ones are done.
    // A batch without order keys leaves the locks' step out (the batches of nearly every event
    // have none): two named statements, one per shape.
    const keyed = deliveries.some((d) => d.orderLock !== null);
    const { rows } = await this.pool.query<{ event_id: string; id: number | null; lease_token: string | null }>({
      name: keyed ? "hookd.accept.batch.ordered" : "hookd.accept.batch",
      text: `WITH e AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::text[])
           WITH ORDINALITY AS e(id, name, payload, received_at, source, depth, idempotency_key, body_hash, source_user, traceparent, n)),
       ev AS (
         INSERT INTO events (id, name, payload, received_at, source, depth, idempotency_key, body_hash, source_user, traceparent)
         SELECT id, name, payload, received_at, source, depth, idempotency_key, body_hash, source_user, traceparent FROM e ORDER BY idempotency_key NULLS FIRST, n
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING seq, id),
       d AS (
         SELECT * FROM unnest($11::int[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::int[], $18::text[], $19::bigint[])
           WITH ORDINALITY AS d(n, kind, plugin, target, input, order_key, max_attempts, lease_token, lease_until, m)),
       ${keyed ? `held AS MATERIALIZED (${orderKeyLocksSql("$20")}),` : ""}
       ins AS (
         INSERT INTO deliveries (event_seq, kind, plugin, target, input, order_key, status, max_attempts, next_at, created_at, updated_at, attempts, lease_token, lease_until)
         SELECT ev.seq, d.kind, d.plugin, d.target, d.input, d.order_key, CASE WHEN d.lease_token IS NULL THEN 'pending' ELSE 'running' END, d.max_attempts,
                e.received_at, e.received_at, e.received_at, CASE WHEN d.lease_token IS NULL THEN 0 ELSE 1 END, d.lease_token, d.lease_until
           FROM d JOIN e ON e.n = d.n JOIN ev ON ev.id = e.id
          ${keyed ? "WHERE (SELECT count(*) FROM held) >= 0" : ""}
          ORDER BY d.m
         RETURNING id, event_seq, lease_token)
       SELECT ev.id AS event_id, ins.id, ins.lease_token FROM ev LEFT JOIN ins ON ins.event_seq = ev.seq`,
      values: [
        ...(["id", "name", "payload", "receivedAt", "source", "depth", "idempotencyKey", "bodyHash", "sourceUser", "traceparent"] as const).map((key) => column(events, key)),
        ...(["event", "kind", "plugin", "target", "input", "orderKey", "maxAttempts", "leaseToken", "leaseUntil"] as const).map((key) => column(deliveries, key)),
        ...(keyed ? [column(deliveries, "orderLock")] : []),
      ],
    });
    const stored = new Map<string, StoredDeliveries>();
    for (const row of rows) {
      const of = stored.get(row.event_id) ?? [];
      if (row.id !== null) of.push({ id: Number(row.id), leaseToken: row.lease_token });
      stored.set(row.event_id, of);
    }
    return stored;
  }
}

/** An accept's columns as the statement takes them; undefined when its payload or an input has no JSON text. */
function rowOf(event: NewEvent, targets: readonly DeliveryTarget[]): EventRow | undefined {
  try {
    const text = event.payloadJson ?? JSON.stringify(event.payload);
    if (typeof text !== "string") return undefined;
    const [id, name, payload, receivedAt, source, , depth, idempotencyKey, bodyHash] = eventValues(event, text);
    let chars = payload.length;
    const deliveries = targets.map((target) => {
      const [kind, plugin, targetName, input, orderKey, maxAttempts] = deliveryValues(target);
      chars += input?.length ?? 0;
      // A lease is for a delivery that starts at accept; one with an order key waits for the claim.
      const lease = orderKey === null ? target.lease : undefined;
      return {
        kind, plugin, target: targetName, input, orderKey, orderLock: orderKey === null ? null : orderLockKey(plugin, orderKey),
        maxAttempts, leaseToken: lease?.token ?? null, leaseUntil: lease?.until ?? null,
      };
    });
    return { id, name, payload, receivedAt, source, depth, idempotencyKey, bodyHash, sourceUser: event.sourceUser ?? null, traceparent: event.traceparent ?? null, deliveries, chars };
  } catch {
    return undefined;
  }
}

/** How many of the queue's first accepts the next batch takes: up to MAX_BATCH, and MAX_BATCH_CHARS of text (at least one). */
function batchLength(queue: readonly Waiting[]): number {
  let chars = 0;
  for (let i = 0; i < queue.length && i < MAX_BATCH; i++) {
    chars += queue[i]!.row.chars;
    if (i > 0 && chars > MAX_BATCH_CHARS) return i;
  }
  return Math.min(queue.length, MAX_BATCH);
}

/**
 * Whether a failed batch may owe it to one of its rows, so that its accepts alone would not all
 * meet it: a data exception (class 22), an integrity constraint violation (class 23), a deadlock
 * or serialization failure (class 40); and, in a batch with idempotency keys, a statement or lock
 * timeout (57014, 55P03): one key's insert can wait on another transaction that stored the same
 * key and has not committed, and the rest of the batch must not fail with it. Anything else (a
 * lost connection, a server shutting down, a timeout with no key to wait on) fails them alone too.
 */
function mayBeOneRowsFault(error: unknown, batch: readonly Waiting[]): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  if (/^(22|23|40)/.test(code)) return true;
  return (code === "57014" || code === "55P03") && batch.some((w) => w.row.idempotencyKey !== null);
}

/** A stored event's outcome: which of its targets started at accept. */
function storedOutcome(event: NewEvent, targets: readonly DeliveryTarget[], deliveries: StoredDeliveries): AcceptOutcome {
  const started = startedByLease(targets, deliveries);
  return { kind: "stored", id: event.id, deliveries: targets.length, ...(started.length > 0 ? { started } : {}) };
}

/**
 * Which targets an accept started, from the deliveries it stored: each target's lease token is
 * its own, so a stored row's token tells its target. Every PostgreSQL accept answers with it.
 */
export function startedByLease(targets: readonly DeliveryTarget[], stored: ReadonlyArray<{ id: number; leaseToken: string | null }>): Array<{ index: number; id: number }> {
  return stored.flatMap((d) => {
    const index = d.leaseToken === null ? -1 : targets.findIndex((t) => t.lease?.token === d.leaseToken);
    return index < 0 ? [] : [{ index, id: d.id }];
  });
}

/** The lock an order key takes while its deliveries are numbered: one per plugin and key (every PostgreSQL accept takes the same). */
export function orderLockKey(plugin: string, orderKey: string): string {
  return JSON.stringify([plugin, orderKey]);
}

/**
 * SQL: takes the transaction-scoped advisory lock of every order key in the text array `param`
 * (orderLockKey; nulls skipped), in hash order, so two accepts holding common keys cannot
 * deadlock; one row per lock taken. A delivery insert gated on it numbers a key's deliveries
 * in the order their accepts commit.
 */
export function orderKeyLocksSql(param: string): string {
  return `SELECT pg_advisory_xact_lock(hashtext('hookd.order.' || current_schema()), h) AS locked
           FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(${param}::text[]) AS k WHERE k IS NOT NULL ORDER BY h) AS keys`;
}
