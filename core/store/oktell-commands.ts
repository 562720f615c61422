/**
 * Workstation commands in the store: a method call for one operator's bridge waits here (durable,
 * so a restart loses none) until that bridge polls for it, is leased to the poll (a command sent
 * and not answered goes again on a poll after its lease), and ends answered, failed, expired
 * (its TTL passed) or cancelled (a confirm guard whose confirm was answered or closed).
 *
 * The tables are created with the store's own schema (sqlite-schema.ts, postgres-schema.ts);
 * this file holds the contract and the SQLite side. The SQLite commands are written on the
 * store's reading connection, in the daemon's thread: they are few (one per method call), each
 * one short transaction, and WAL lets that connection write beside the writer thread's. As in the
 * store's own writes, only the commit that stores something promised (a queued command) waits for
 * the fsync under `synchronous=FULL`; leases, answers and expiries are covered by the next one (a
 * power loss before it can only make a command go to its bridge again, which at-least-once allows).
 */
import type Database from "better-sqlite3";

export type OktellCommandState = "queued" | "sent" | "answered" | "failed" | "expired" | "cancelled";

export interface NewOktellCommand {
  id: string;
  user: string;
  /** The component method (`SetUserState`, ...), as core/integrations/oktell/methods.ts names them. */
  method: string;
  xml: string | null;
  arg: boolean | null;
  /** The plugin that asked, or `$confirm-guard`. */
  requestedBy: string;
  createdAt: number;
  /** Not handed to a bridge before this (the confirm guard's delay). */
  notBefore: number;
  expiresAt: number;
  /** For confirm guards: the task of the TMInterfaceConfirm it answers (TMInterfaceClose cancels it). */
  guardTask: string | null;
}

export interface OktellCommandRecord extends NewOktellCommand {
  state: OktellCommandState;
  sentAt: number | null;
  attempts: number;
  finishedAt: number | null;
  answer: unknown;
  error: string | null;
}

export interface OktellCommandFilter {
  user?: string | undefined;
  state?: OktellCommandState | undefined;
  limit?: number | undefined;
  /** Page newest first: only commands older than this one's position. */
  before?: number | undefined;
}

export interface OktellCommandStore {
  /**
   * Queues a command; with `cancelGuards`, that user's held confirm guards are cancelled in the
   * same transaction. A command whose id is stored already is left as it is (a guard's id comes
   * from its event's, so a repeated request queues it once).
   */
  queue(command: NewOktellCommand, options?: { cancelGuards?: boolean }): Promise<void>;
  /** Leases the user's deliverable commands (queued and due, or sent with an expired lease), oldest first. */
  claim(user: string, now: number, leaseMs: number, limit: number): Promise<OktellCommandRecord[]>;
  /** Records the answer if the command is still `sent`; returns the stored record, or null when it was not sent. */
  finish(id: string, outcome: { state: "answered" | "failed"; answer: unknown; error: string | null }, now: number): Promise<OktellCommandRecord | null>;
  get(id: string): Promise<(OktellCommandRecord & { seq: number }) | null>;
  list(filter: OktellCommandFilter): Promise<Array<OktellCommandRecord & { seq: number }>>;
  /** Marks commands past their TTL expired and deletes finished ones older than `pruneBefore`; returns how many expired. */
  expire(now: number, pruneBefore: number): Promise<number>;
  /** Cancels the user's held confirm guards (of one task, or all); returns how many. */
  cancelGuards(user: string, now: number, task?: string): Promise<number>;
  /** When the user's next command becomes deliverable (a guard's delay, a lease running out), or null. */
  nextDueAt(user: string, now: number): Promise<number | null>;
}

/** Columns of `oktell_commands` as both stores return them. */
export interface OktellCommandRow {
  seq: number;
  id: string;
  user_login: string;
  method: string;
  xml: string | null;
  arg: number | null;
  state: OktellCommandState;
  requested_by: string;
  created_at: number;
  not_before: number;
  expires_at: number;
  sent_at: number | null;
  lease_until: number | null;
  attempts: number;
  finished_at: number | null;
  answer: string | null;
  error: string | null;
  guard_task: string | null;
}

export function toCommandRecord(row: OktellCommandRow): OktellCommandRecord & { seq: number } {
  return {
    seq: Number(row.seq),
    id: row.id,
    user: row.user_login,
    method: row.method,
    xml: row.xml,
    arg: row.arg === null ? null : row.arg === 1,
    state: row.state,
    requestedBy: row.requested_by,
    createdAt: Number(row.created_at),
    notBefore: Number(row.not_before),
    expiresAt: Number(row.expires_at),
    sentAt: row.sent_at === null ? null : Number(row.sent_at),
    attempts: row.attempts,
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    answer: row.answer === null ? null : JSON.parse(row.answer),
    error: row.error,
    guardTask: row.guard_task,
  };
}

/** Insert values in the column order of INSERT_COLUMNS. */
export function commandValues(c: NewOktellCommand): Array<string | number | null> {
  return [c.id, c.user, c.method, c.xml, c.arg === null ? null : c.arg ? 1 : 0, c.requestedBy, c.createdAt, c.notBefore, c.expiresAt, c.guardTask];
}

export const INSERT_COLUMNS = "id, user_login, method, xml, arg, requested_by, created_at, not_before, expires_at, guard_task, state";

export class SqliteOktellCommands implements OktellCommandStore {
  private readonly s;
  /** The connection's level (2 FULL, 1 NORMAL, 0 OFF): bookkeeping commits drop from FULL to NORMAL. */
  private readonly full: boolean;

  constructor(private readonly db: Database.Database) {
    this.full = db.pragma("synchronous", { simple: true }) === 2;
    this.s = {
      insert: db.prepare(`INSERT INTO oktell_commands (${INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued') ON CONFLICT (id) DO NOTHING`),
      claim: db.prepare(
        `UPDATE oktell_commands SET state = 'sent', sent_at = @now, lease_until = @until, attempts = attempts + 1
          WHERE seq IN (SELECT seq FROM oktell_commands
                         WHERE user_login = @user AND expires_at > @now
                           AND ((state = 'queued' AND not_before <= @now) OR (state = 'sent' AND lease_until <= @now))
                         ORDER BY seq LIMIT @limit)
          RETURNING *`,
      ),
      finish: db.prepare(
        `UPDATE oktell_commands SET state = @state, answer = @answer, error = @error, finished_at = @now, lease_until = NULL
          WHERE id = @id AND state = 'sent' RETURNING *`,
      ),
      // Reads first: polls and the expiry sweep ask often and mostly find nothing, and a read
      // costs no write lock (which the store's writer thread wants too).
      anyDue: db.prepare(
        `SELECT 1 FROM oktell_commands WHERE user_login = @user AND expires_at > @now
            AND ((state = 'queued' AND not_before <= @now) OR (state = 'sent' AND lease_until <= @now)) LIMIT 1`,
      ),
      anyExpired: db.prepare("SELECT 1 FROM oktell_commands WHERE state IN ('queued', 'sent') AND expires_at <= ? LIMIT 1"),
      anyPrunable: db.prepare("SELECT 1 FROM oktell_commands WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT 1"),
      get: db.prepare("SELECT * FROM oktell_commands WHERE id = ?"),
      list: db.prepare(
        `SELECT * FROM oktell_commands
          WHERE (@user IS NULL OR user_login = @user) AND (@state IS NULL OR state = @state) AND (@before IS NULL OR seq < @before)
          ORDER BY seq DESC LIMIT @limit`,
      ),
      expire: db.prepare(`UPDATE oktell_commands SET state = 'expired', finished_at = @now, lease_until = NULL WHERE state IN ('queued', 'sent') AND expires_at <= @now`),
      prune: db.prepare("DELETE FROM oktell_commands WHERE finished_at IS NOT NULL AND finished_at < ?"),
      cancelGuards: db.prepare(
        `UPDATE oktell_commands SET state = 'cancelled', finished_at = @now
          WHERE user_login = @user AND state = 'queued' AND guard_task IS NOT NULL AND (@task IS NULL OR guard_task = @task)`,
      ),
      nextDue: db.prepare(
        `SELECT MIN(CASE WHEN state = 'queued' THEN not_before ELSE lease_until END) AS next FROM oktell_commands
          WHERE user_login = ? AND state IN ('queued', 'sent') AND expires_at > ?`,
      ),
    };
  }

  async queue(command: NewOktellCommand, options: { cancelGuards?: boolean } = {}): Promise<void> {
    this.db.transaction(() => {
      if (options.cancelGuards) this.s.cancelGuards.run({ user: command.user, now: command.createdAt, task: null });
      this.s.insert.run(...commandValues(command));
    }).immediate();
  }

  async claim(user: string, now: number, leaseMs: number, limit: number): Promise<OktellCommandRecord[]> {
    if (this.s.anyDue.get({ user, now }) === undefined) return [];
    const rows = this.bookkeeping(() => this.db.transaction(() => this.s.claim.all({ user, now, until: now + leaseMs, limit }) as OktellCommandRow[]).immediate());
    return rows.map(toCommandRecord).sort((a, b) => a.seq - b.seq);
  }

  async finish(id: string, outcome: { state: "answered" | "failed"; answer: unknown; error: string | null }, now: number): Promise<OktellCommandRecord | null> {
    const row = this.bookkeeping(() => this.s.finish.get({ id, state: outcome.state, answer: outcome.answer === undefined ? null : JSON.stringify(outcome.answer), error: outcome.error, now }) as OktellCommandRow | undefined);
    return row ? toCommandRecord(row) : null;
  }

  async get(id: string): Promise<(OktellCommandRecord & { seq: number }) | null> {
    const row = this.s.get.get(id) as OktellCommandRow | undefined;
    return row ? toCommandRecord(row) : null;
  }

  async list(filter: OktellCommandFilter): Promise<Array<OktellCommandRecord & { seq: number }>> {
    const rows = this.s.list.all({ user: filter.user ?? null, state: filter.state ?? null, before: filter.before ?? null, limit: clamp(filter.limit) }) as OktellCommandRow[];
    return rows.map(toCommandRecord);
  }

  async expire(now: number, pruneBefore: number): Promise<number> {
    if (this.s.anyExpired.get(now) === undefined && this.s.anyPrunable.get(pruneBefore) === undefined) return 0;
    return this.bookkeeping(() =>
      this.db.transaction(() => {
        const expired = this.s.expire.run({ now }).changes;
        this.s.prune.run(pruneBefore);
        return expired;
      }).immediate(),
    );
  }

  async cancelGuards(user: string, now: number, task?: string): Promise<number> {
    return this.bookkeeping(() => this.s.cancelGuards.run({ user, now, task: task ?? null }).changes);
  }

  /** Runs a bookkeeping write without its own fsync (see the file comment); the level is restored after. */
  private bookkeeping<T>(write: () => T): T {
    if (!this.full) return write();
    // Not a prepared statement: SQLite applies this pragma when it is compiled.
    this.db.pragma("synchronous = NORMAL");
    try {
      return write();
    } finally {
      this.db.pragma("synchronous = FULL");
    }
  }

  async nextDueAt(user: string, now: number): Promise<number | null> {
    return (this.s.nextDue.get(user, now) as { next: number | null }).next;
  }
}

export function clamp(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? 100, 1), 1000);
}
