/**
 * The store interface: events, their deliveries (one per event and handler), and plugin kv.
 * The SQLite store is the embedded default; a PostgreSQL store implements the same contract.
 *
 * Fencing rules every implementation keeps:
 * - an event, its idempotency key and all its deliveries are written in one transaction;
 * - claiming a delivery writes the attempt count and a lease (token + expiry) before the run;
 * - finishing a delivery checks the token, so a run whose lease was lost changes nothing;
 * - a handler receives deliveries with the same order key one at a time, in acceptance order.
 */

export type EventSource = "http" | "emit" | "action" | "oktell" | "replay";
export type DeliveryKind = "handler" | "route" | "action" | "webhook";
export type DeliveryStatus = "pending" | "running" | "done" | "dead";

export interface NewEvent {
  id: string;
  name: string;
  payload: unknown;
  receivedAt: number;
  source: EventSource;
  /** The event whose handler emitted this one. */
  parentId?: string | undefined;
  /** Length of the emit chain that produced this event (0 for external events). */
  depth: number;
  idempotencyKey?: string | undefined;
  /** Hash of the request body, to tell a repeat from a different body under the same key. */
  bodyHash?: string | undefined;
}

/** Who must run for an accepted event. */
export interface DeliveryTarget {
  kind: DeliveryKind;
  /** The plugin that runs it (for webhooks: `webhook`). */
  plugin: string;
  /** Event name for handlers, action name for routes and actions, endpoint id for webhooks. */
  target: string;
  /** Input for routes and actions (already mapped). */
  input?: unknown;
  maxAttempts: number;
  orderKey?: string | undefined;
}

export type AcceptOutcome =
  | { kind: "stored"; id: string; deliveries: number }
  | { kind: "duplicate"; id: string }
  | { kind: "conflict"; id: string };

export interface ClaimedDelivery {
  id: number;
  kind: DeliveryKind;
  plugin: string;
  target: string;
  attempt: number;
  maxAttempts: number;
  leaseToken: string;
  input: unknown;
  event: { id: string; name: string; payload: unknown; receivedAt: number; depth: number };
}

export interface RunError {
  code: string;
  message: string;
  /** `plugins/foo.ts:12:5` where the error was thrown, when known. */
  location?: string | undefined;
  stack?: string | undefined;
}

export type RunOutcome =
  | { ok: true; durationMs: number }
  | { ok: false; durationMs: number; error: RunError; retriable: boolean };

/** What the dispatcher decided after a run: done, back to pending at `nextAt`, or dead. */
export interface DeliveryResult {
  status: "done" | "pending" | "dead";
  now: number;
  durationMs: number;
  nextAt?: number;
  error?: RunError | undefined;
}

export interface DeliveryRecord {
  id: number;
  eventId: string;
  eventName: string;
  kind: DeliveryKind;
  plugin: string;
  target: string;
  status: DeliveryStatus;
  attempts: number;
  maxAttempts: number;
  nextAt: number;
  lastError: RunError | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  durationMs: number | null;
}

export interface EventRecord {
  id: string;
  name: string;
  payload: unknown;
  receivedAt: number;
  source: EventSource;
  parentId: string | null;
  depth: number;
}

export interface ClaimOptions {
  limit: number;
  leaseMs: number;
  now: number;
  /** Only deliveries of these plugins (the loaded ones); others stay pending. */
  plugins: readonly string[];
}

export interface ListRunsFilter {
  status?: DeliveryStatus | "failed" | undefined;
  plugin?: string | undefined;
  event?: string | undefined;
  eventId?: string | undefined;
  limit?: number | undefined;
  /** Page: only ids below this one. */
  before?: number | undefined;
}

export interface ListEventsFilter {
  name?: string | undefined;
  since?: number | undefined;
  limit?: number | undefined;
  before?: number | undefined;
}

export interface Store {
  /** Stores an event and its deliveries durably (the promise settles after the commit). */
  acceptEvent(event: NewEvent, deliveries: readonly DeliveryTarget[]): Promise<AcceptOutcome>;
  /** Leases up to `limit` ready deliveries, writing their attempt count first. */
  claimDeliveries(options: ClaimOptions): Promise<ClaimedDelivery[]>;
  /** Records a run's outcome if the lease token still owns the delivery; false when it was lost. */
  finishDelivery(id: number, leaseToken: string, result: DeliveryResult): Promise<boolean>;
  /** Extends a live run's lease; false when it was lost. */
  renewLease(id: number, leaseToken: string, until: number): Promise<boolean>;
  /** Returns expired leases to pending (or dead when that was the last attempt). */
  releaseExpiredLeases(now: number): Promise<number>;
  /** Puts a failed or dead delivery back to pending with a fresh attempt budget. */
  retryDelivery(id: number, now: number): Promise<DeliveryRecord>;
  /** Earliest next_at among pending deliveries of these plugins, for the dispatcher's timer. */
  nextDueAt(plugins: readonly string[]): Promise<number | null>;

  getEvent(id: string): Promise<EventRecord | null>;
  listEvents(filter: ListEventsFilter): Promise<EventRecord[]>;
  listRuns(filter: ListRunsFilter): Promise<DeliveryRecord[]>;
  countByStatus(): Promise<Record<DeliveryStatus, number>>;

  kvGet(plugin: string, key: string): Promise<unknown>;
  kvSet(plugin: string, key: string, value: unknown): Promise<void>;
  kvDelete(plugin: string, key: string): Promise<boolean>;
  kvList(plugin: string, prefix: string, limit: number): Promise<string[]>;

  close(): Promise<void>;
}
