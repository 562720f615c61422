/**
 * The store interface: events, their deliveries (one per event and handler), and plugin kv.
 * The SQLite store is the embedded default; a PostgreSQL store implements the same contract.
 *
 * Fencing rules every implementation keeps:
 * - an event, its idempotency key and all its deliveries are written in one transaction;
 * - claiming a delivery writes the attempt count and a lease (token + expiry) before the run;
 * - finishing a delivery checks the token, so a run whose lease was lost changes nothing;
 * - a handler receives deliveries with the same order key one at a time, in acceptance order
 *   (a later delivery waits while an earlier one of the same plugin and key is pending or running;
 *   a dead one no longer holds the key);
 * - a crash suspect (a run in flight when the sandbox process died) is claimed only on its own,
 *   so the next crash is pinned on the run that caused it, not on the runs beside it;
 * - a claim takes round-robin across plugins (see `ClaimOptions.shares`), each plugin's ready
 *   deliveries found through an index that leads with the plugin, so a backlog of one plugin (or
 *   of one no longer loaded) is never scanned by the claims of the others;
 * - an emitted event counts against its root event's `maxDescendants` in the transaction that
 *   stores it: the check and the count are one atomic step, whatever runs beside it.
 */
import type { OktellCommandStore } from "./oktell-commands.ts";

export type EventSource = "http" | "emit" | "action" | "oktell" | "replay" | "schedule";

/** Where an event came from, as handlers see it (`ctx.event.source`): the telephony bridge's carry the workstation's user. */
export interface EventOrigin {
  channel: EventSource;
  user?: string;
}
export type DeliveryKind = "handler" | "route" | "action" | "webhook";
/**
 * `cancelled`: a delayed event's delivery, cancelled before it ran (POST /api/events/{id}/cancel).
 * `discarded`: a dead letter an operator gave up on (POST /api/dead-letters/discard); finished, kept in history.
 * `skipped`: flow control kept it from running (a rate limit, a later event of a debounce); its
 * `lastError` says which (HOOKD_FLOW_RATE_LIMITED, HOOKD_FLOW_DEBOUNCED). Finished, never retried.
 */
export type DeliveryStatus = "pending" | "running" | "done" | "dead" | "cancelled" | "discarded" | "skipped";

export interface NewEvent {
  id: string;
  name: string;
  payload: unknown;
  /** The payload as JSON text, when the caller has it already (stored as it is, not serialized again). */
  payloadJson?: string | undefined;
  receivedAt: number;
  source: EventSource;
  /** The telephony workstation's user (`POST /ingest/oktell?user=`), stored with the event. */
  sourceUser?: string | undefined;
  /** The event whose handler emitted this one. */
  parentId?: string | undefined;
  /** Length of the emit chain that produced this event (0 for external events). */
  depth: number;
  /**
   * With `parentId`: how many events the chain's root event may cause in total. The store counts
   * this one against its root in the accepting transaction and refuses it (HOOKD_EVENT_EMIT_BUDGET)
   * once the root has caused that many.
   */
  maxDescendants?: number | undefined;
  idempotencyKey?: string | undefined;
  /** Hash of the request body, to tell a repeat from a different body under the same key. */
  bodyHash?: string | undefined;
  /** A delayed event (core/time/delay.ts): its deliveries are due then, not at `receivedAt`. */
  deliverAt?: number | undefined;
  /** W3C trace context of the event's ingress span (tracing on): its runs continue that trace. */
  traceparent?: string | undefined;
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
  /** Deliveries of one plugin with the same key run one at a time, in acceptance order. */
  orderKey?: string | undefined;
  /** The handler's flow control (core/routing/flow-rules.ts), its keys read from this event. */
  flow?: DeliveryFlow | undefined;
  /**
   * Start in the accepting transaction (core/delivery/start-at-accept.ts): the delivery is stored
   * `running` under this lease, its first attempt counted, unless a rule holds it back (an order
   * key, flow rules, a delayed event) or, on SQLite, the plugin has ready deliveries waiting
   * already (they go first: it is stored pending then, and the claim takes it in turn).
   */
  lease?: { token: string; until: number } | undefined;
}

/**
 * What a flow-controlled delivery is stored with: each rule's scope (the event name and the key's
 * value, so two events' rules never share a count) and its numbers. The store adds the plugin to
 * each scope. How the stores enforce them: flow-windows.ts.
 */
export interface DeliveryFlow {
  concurrency?: { scope: string; limit: number } | undefined;
  throttle?: { scope: string; limit: number; periodMs: number } | undefined;
  rateLimit?: { scope: string; limit: number; periodMs: number } | undefined;
  debounce?: { scope: string; periodMs: number } | undefined;
}

/** Why a pending delivery is not running yet, in run records (`waiting: throttled until ...`). */
export type FlowWaiting = "throttled" | "debounced" | "concurrency";

export type AcceptOutcome =
  | {
      kind: "stored";
      id: string;
      deliveries: number;
      /** The deliveries stored running under the lease they were given (DeliveryTarget.lease): their index in the targets, their id. */
      started?: Array<{ index: number; id: number }>;
    }
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
  /** Claimed on its own (see `ClaimOptions.suspects`); a crash now is its own doing. */
  suspect: boolean;
  input: unknown;
  /** `payloadJson`: the payload as stored (JSON text), handed to the sandbox as it is. */
  event: { id: string; name: string; payload: unknown; payloadJson?: string; receivedAt: number; depth: number; source?: EventOrigin };
  /**
   * Why the stored payload or input could not be read (not JSON): the delivery is claimed anyway,
   * so the dispatcher dead-letters it instead of the whole claim failing over and over.
   */
  unreadable?: string;
}

// The run contract is the sandbox's (the lower layer); the store records it as it is.
import type { RunError, RunOutcome } from "../../sandbox/contract/run.ts";
export type { RunError, RunOutcome };

/** What the dispatcher decided after a run: done, back to pending at `nextAt`, or dead. */
export interface DeliveryResult {
  status: "done" | "pending" | "dead";
  now: number;
  durationMs: number;
  nextAt?: number;
  error?: RunError | undefined;
  /** The run never got a fair try (sandbox down or crashed by another run): its attempt is not counted. */
  refundAttempt?: boolean | undefined;
  /** Mark the delivery a crash suspect: from now on it is claimed only on its own. */
  suspect?: boolean | undefined;
  /** What this attempt did (run detail): stored with the finish, only if the lease still held. */
  attempt?: RunAttemptRecord | undefined;
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
  orderKey: string | null;
  suspect: boolean;
  /** The replay that created this delivery, if any. */
  replayId: string | null;
  /** Where its event came from (`ctx.event.source`), in run lists. */
  eventSource?: EventOrigin;
  /** A pending delivery held by flow control: why, and until when (`nextAt`) for a throttle or debounce. */
  waiting?: FlowWaiting;
}

export interface EventRecord {
  /** Acceptance order; `before`/`after` page on it. */
  seq: number;
  id: string;
  name: string;
  payload: unknown;
  receivedAt: number;
  source: EventSource;
  parentId: string | null;
  depth: number;
  /** Set in lists bounded by `maxPayloadBytes`: the payload was left out, it is this large. */
  payloadTruncated?: { bytes: number };
  /** The accepted event whose emit chain produced this one (null for an event from outside). */
  rootId: string | null;
  /** When a delayed event's deliveries are due (epoch ms); null for an event delivered at once. */
  deliverAt: number | null;
  /** `source` with the telephony workstation's user: what handlers get as `ctx.event.source`. */
  origin: EventOrigin;
}

export interface ClaimOptions {
  limit: number;
  leaseMs: number;
  now: number;
  /** Only deliveries of these plugins (the loaded ones); others stay pending. */
  plugins: readonly string[];
  /** Claim crash suspects (to run alone) instead of regular deliveries. */
  suspects?: boolean | undefined;
  /**
   * Fair shares: groups of plugins (one owner's handlers and actions, one webhook endpoint) and
   * how many this claim may take from each. Absent: each plugin is its own group, bounded only by
   * `limit`. Either way a claim picks round-robin across groups (each group's oldest ready
   * delivery first, then each one's second...), never global FIFO, so one group's backlog cannot
   * push another's work behind it.
   */
  shares?: ReadonlyArray<{ plugins: readonly string[]; limit: number }> | undefined;
  /**
   * A serving plugin declares flow control (core/routing/flow-rules.ts): a store that claims
   * flow-controlled deliveries apart (PostgreSQL) should look for them on this claim.
   */
  flowControlled?: boolean | undefined;
}

export interface ListRunsFilter {
  status?: DeliveryStatus | "failed" | undefined;
  plugin?: string | undefined;
  event?: string | undefined;
  eventId?: string | undefined;
  replayId?: string | undefined;
  /** Created at or after (epoch ms). */
  since?: number | undefined;
  /** Created before (epoch ms). */
  until?: number | undefined;
  limit?: number | undefined;
  /** Page: only ids below this one. */
  before?: number | undefined;
}

export interface ListEventsFilter {
  name?: string | undefined;
  /** Received at or after (epoch ms). */
  since?: number | undefined;
  /** Received before (epoch ms). */
  until?: number | undefined;
  limit?: number | undefined;
  /** Page newest first: only events with a smaller seq. */
  before?: number | undefined;
  /** Page oldest first: only events with a larger seq (implies ascending order). */
  after?: number | undefined;
  /**
   * A list for people (newest first): a payload larger than this many bytes of JSON is not read
   * at all and comes back as `payload: null` with `payloadTruncated` (getEvent has it whole).
   */
  maxPayloadBytes?: number | undefined;
}

/** New deliveries for an event already stored (a replay). */
export interface AddedDeliveries {
  eventId: string;
  targets: readonly DeliveryTarget[];
}

export interface PruneOptions {
  /** Events whose deliveries are all done and that were received before this are deleted. */
  doneBefore: number;
  /** Events with dead letters (and the rest done) received before this are deleted too. */
  deadBefore: number;
  /** Events per transaction, so pruning never holds the writer for long. */
  limit: number;
  /** The prune's clock: flow control's windows that expired before it go too (default: the wall clock). */
  now?: number | undefined;
}

/** Delayed events still waiting, soonest first (core/time). */
export interface ListScheduledFilter {
  /** Only events due after this time (epoch ms): the ones not due yet. */
  now: number;
  limit?: number | undefined;
  /** As in ListEventsFilter: a larger payload is not read and comes back as `payload: null` with `payloadTruncated`. */
  maxPayloadBytes?: number | undefined;
}

export interface DeliveryCountFilter {
  replayId?: string | undefined;
}

// --- Run detail: each attempt of a run with what it did (core/runs/activity.ts). ---
import type { RunStatsRows } from "./run-stats.ts";
export type { RunStatsRows };

export interface RunLogRecord {
  at: number;
  level: "debug" | "info" | "warn" | "error";
  msg?: string;
  fields?: Record<string, unknown>;
}

export interface RunFetchRecord {
  at: number;
  method: string;
  /** Without user info or query values (core/runs/activity.ts redactUrl). */
  url: string;
  /** HTTP status; absent when no answer came (see `error`). */
  status?: number;
  durationMs: number;
  /** Bytes of the answer's body. */
  bytes?: number;
  error?: string;
  /** The start of the answer's body (webhook deliveries keep one for the event's page). */
  response?: string;
}

export interface RunActivity {
  logs: RunLogRecord[];
  fetches: RunFetchRecord[];
  emits: Array<{ at: number; name: string; eventId?: string; error?: string }>;
  kvWrites: Array<{ at: number; op: "set" | "delete"; key: string; bytes: number; error?: string }>;
  /** Entries left out by the bounds. */
  dropped: number;
}

/** The error of an attempt with the lines of TypeScript around where it was thrown. */
export interface RunAttemptError extends RunError {
  source?: { file: string; line: number; lines: Array<{ line: number; text: string }> } | undefined;
}

export interface RunAttemptRecord {
  attempt: number;
  startedAt: number;
  durationMs: number;
  status: "done" | "failed";
  code: string | null;
  error: RunAttemptError | null;
  activity: RunActivity;
}

export interface Store {
  /**
   * True when an accept stores a leased delivery pending if its plugin has ready deliveries
   * waiting (DeliveryTarget.lease): the dispatcher then gives leases even while it knows of a
   * backlog. SQLite checks in the accepting transaction; PostgreSQL leaves it to the dispatcher.
   */
  readonly checksWaitingAtAccept?: boolean;
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
  /** Returns leases a stopping daemon still holds to pending, without counting their attempt. */
  releaseDeliveries(leases: ReadonlyArray<{ id: number; leaseToken: string }>, now: number): Promise<number>;
  /** Puts a failed or dead delivery back to pending, due now, with a fresh attempt budget. */
  retryDelivery(id: number, now: number): Promise<DeliveryRecord>;
  /** Marks these dead letters discarded (finished, never claimed again); returns the ids that were dead. */
  discardDeliveries(ids: readonly number[], now: number): Promise<number[]>;
  /** Earliest next_at among pending deliveries of these plugins (regular ones, or crash suspects). */
  nextDueAt(plugins: readonly string[], suspects?: boolean): Promise<number | null>;
  /** Adds deliveries to stored events (replay), all in one transaction; returns how many. */
  addDeliveries(items: readonly AddedDeliveries[], now: number, replayId?: string): Promise<number>;
  /**
   * Cancels the deliveries of a delayed event that have not started (pending, no attempt made),
   * in one transaction; returns how many. HOOKD_EVENT_NOT_FOUND when there is no such event,
   * HOOKD_EVENT_NOT_SCHEDULED when it was not delayed or nothing of it is left to cancel.
   */
  cancelScheduledEvent(id: string, now: number): Promise<number>;
  /** Delayed events not due yet with deliveries still waiting, soonest first. */
  listScheduledEvents(filter: ListScheduledFilter): Promise<EventRecord[]>;
  /**
   * A schedule's tick (core/time/scheduler.ts): claims tick `at` of `scheduleId` and stores its
   * event and deliveries, in one transaction. The claim succeeds only when no tick at or after
   * `at` was claimed before (by this instance or any other): the insert of a tick is its claim,
   * so a tick runs once however many instances reach it. Returns false when it was taken.
   */
  claimScheduleTick(scheduleId: string, at: number, event: NewEvent, deliveries: readonly DeliveryTarget[]): Promise<boolean>;
  /** The last claimed tick of every schedule that ever ticked (epoch ms), by schedule id. */
  lastScheduleTicks(): Promise<Map<string, number>>;
  /** Deletes old finished events with their deliveries; returns how many events went. */
  pruneEvents(options: PruneOptions): Promise<number>;

  getEvent(id: string): Promise<EventRecord | null>;
  /** One run (delivery) by id, or null. */
  getRun(id: number): Promise<DeliveryRecord | null>;
  /** A run's recorded attempts, oldest first (run detail). */
  listRunAttempts(deliveryId: number): Promise<RunAttemptRecord[]>;
  /** Events emitted by the runs of `parentId`, oldest first, at most `limit`. */
  listChildEvents(parentId: string, limit: number): Promise<EventRecord[]>;
  /** The console's charts: attempts, failures, durations, accepted events and dead letters since `since` (core/store/run-stats.ts). */
  runStats(since: number): Promise<RunStatsRows>;
  /** The trace context stored with an event (`NewEvent.traceparent`), or null. */
  eventTraceparent(id: string): Promise<string | null>;
  listEvents(filter: ListEventsFilter): Promise<EventRecord[]>;
  listRuns(filter: ListRunsFilter): Promise<DeliveryRecord[]>;
  countEvents(filter: Pick<ListEventsFilter, "name" | "since" | "until">): Promise<number>;
  countByStatus(filter?: DeliveryCountFilter): Promise<Record<DeliveryStatus, number>>;
  /**
   * When the oldest pending delivery started to wait (epoch ms), null when none waits: the
   * queue's age. A delayed delivery waits from its due time (a future time while it is not due).
   */
  oldestPendingAt(): Promise<number | null>;
  /** Deliveries flow control holds or held, by plugin and state (core/store/flow-windows.ts FLOW_COUNTS_SQL), for /metrics. */
  flowCounts(): Promise<Array<{ plugin: string; state: string; n: number }>>;
  /**
   * Resolves once a tiny write committed; rejects with the reason when the store cannot take
   * writes (read-only file system, disk full, a foreign lock). Readiness and the watchdog use it.
   */
  checkWritable(): Promise<void>;

  kvGet(plugin: string, key: string): Promise<unknown>;
  /**
   * With `maxKeys`, a new key is refused (HOOKD_KV_LIMIT) when the plugin holds that many keys
   * already: counted and written atomically, so concurrent sets cannot overshoot the limit.
   */
  kvSet(plugin: string, key: string, value: unknown, limits?: { maxKeys?: number | undefined }): Promise<void>;
  kvDelete(plugin: string, key: string): Promise<boolean>;
  kvList(plugin: string, prefix: string, limit: number): Promise<string[]>;

  /**
   * Shared stores (PostgreSQL): calls `callback` when another instance stored work this one may
   * claim, so an idle instance wakes without polling; returns the unsubscribe.
   */
  onRemoteWork?(callback: () => void): () => void;

  /** The telephony workstation commands (core/store/oktell-commands.ts), in the same database. */
  readonly oktellCommands?: OktellCommandStore;

  close(): Promise<void>;
}
