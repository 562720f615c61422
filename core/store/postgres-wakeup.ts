/**
 * How PostgreSQL instances wake each other: LISTEN/NOTIFY on a channel of the schema. Writes that
 * make work ready call `notify()` after their commit; every instance LISTENs on a connection of
 * its own and wakes its dispatcher (`onRemoteWork`), so an idle instance does not wait for its
 * next sweep.
 *
 * The NOTIFY is sent after the commit, on its own, at most one in flight per instance (the ones
 * asked for meanwhile are merged into the next): a NOTIFY inside the accepting transaction would
 * take the server's global notify lock through that transaction's WAL flush, serializing every
 * accept. Wake-ups are at most one per REMOTE_WAKE_MS, and a dropped listening connection
 * reconnects and wakes once (notifications may have been missed meanwhile).
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { quoteIdent } from "./postgres-schema.ts";

/** How often another instance's work may wake this one's dispatcher, at most. */
const REMOTE_WAKE_MS = 20;

/** After a dropped or refused listening connection, the next try. */
const RECONNECT_MS = 1000;

export class PostgresWakeup {
  private listener: pg.Client | undefined;
  private readonly remoteWork = new Set<() => void>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private notifying = false;
  private notifyAgain = false;
  /** Tells this instance's NOTIFYs from the others'. */
  private readonly token = randomUUID();
  private wakeTimer: NodeJS.Timeout | undefined;
  private lastWake = -Infinity;

  /**
   * @param connection how the listening connection connects (the store's own settings)
   * @param channel the schema's channel
   * @param pool where NOTIFYs are sent from
   */
  constructor(
    private readonly connection: pg.ClientConfig,
    private readonly channel: string,
    private readonly pool: pg.Pool,
  ) {}

  /** Calls `callback` when another instance stored work this one may claim; returns the unsubscribe. */
  onRemoteWork(callback: () => void): () => void {
    this.remoteWork.add(callback);
    return () => this.remoteWork.delete(callback);
  }

  /**
   * Tells the other instances that committed work waits. One NOTIFY in flight at a time; asks
   * that arrive meanwhile are merged into one more after it (sent after their commits).
   */
  notify(): void {
    if (this.closed) return;
    if (this.notifying) {
      this.notifyAgain = true;
      return;
    }
    this.notifying = true;
    this.notifyAgain = false;
    this.pool
      .query("SELECT pg_notify($1, $2)", [this.channel, this.token])
      // A lost NOTIFY only delays the others until their next sweep.
      .catch(() => undefined)
      .finally(() => {
        this.notifying = false;
        if (this.notifyAgain) this.notify();
      });
  }

  /** A connection of its own, LISTENing; when it drops, it reconnects and wakes (notifications may have been missed). */
  async listen(): Promise<void> {
    const client = new pg.Client(this.connection);
    // Our own NOTIFYs are for the others: this instance's dispatcher woke already.
    client.on("notification", (message) => message.payload !== this.token && this.emitRemoteWork());
    client.on("error", () => undefined);
    client.on("end", () => {
      if (this.closed || this.listener !== client) return;
      this.listener = undefined;
      this.reconnectTimer = setTimeout(() => {
        this.listen().then(
          () => this.emitRemoteWork(),
          () => undefined,
        );
      }, RECONNECT_MS);
      this.reconnectTimer.unref();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.channel)}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      if (this.listener === undefined && !this.closed && this.remoteWork.size > 0) {
        // Retried like a dropped connection.
        this.reconnectTimer = setTimeout(() => void this.listen().then(() => this.emitRemoteWork(), () => undefined), RECONNECT_MS);
        this.reconnectTimer.unref();
      }
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
  }

  /** Stops listening and notifying; the pool stays the store's to end. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.wakeTimer);
    this.remoteWork.clear();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }

  /**
   * Wakes the dispatcher, at most once per REMOTE_WAKE_MS: an idle instance starts within that,
   * and a busy one (which claims after each of its own runs anyway) is not made to claim once
   * per event the others store.
   */
  private emitRemoteWork(): void {
    if (this.wakeTimer !== undefined) return;
    const wait = this.lastWake + REMOTE_WAKE_MS - performance.now();
    const emit = () => {
      this.wakeTimer = undefined;
      this.lastWake = performance.now();
      for (const callback of this.remoteWork) callback();
    };
    if (wait <= 0) return emit();
    this.wakeTimer = setTimeout(emit, wait);
    this.wakeTimer.unref();
  }
}
