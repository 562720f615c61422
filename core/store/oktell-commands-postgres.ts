/**
 * Workstation commands on PostgreSQL (see oktell-commands.ts for the contract). Several instances
 * share the table: a claim takes rows `FOR UPDATE SKIP LOCKED`, so two polls of one bridge on two
 * instances never both get one command inside its lease, and an answer is recorded only while
 * the command is `sent` (one UPDATE), whichever instance the bridge posts it to.
 */
import type pg from "pg";
import { clamp, commandValues, INSERT_COLUMNS, toCommandRecord, type NewOktellCommand, type OktellCommandFilter, type OktellCommandRecord, type OktellCommandRow, type OktellCommandStore } from "./oktell-commands.ts";

export class PostgresOktellCommands implements OktellCommandStore {
  constructor(private readonly pool: pg.Pool) {}

  async queue(command: NewOktellCommand, options: { cancelGuards?: boolean } = {}): Promise<void> {
    const insert = `INSERT INTO oktell_commands (${INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued') ON CONFLICT (id) DO NOTHING`;
    if (!options.cancelGuards) {
      await this.pool.query(insert, commandValues(command));
      return;
    }
    // One statement, one transaction: the guards go with the insert or not at all.
    await this.pool.query(
      `WITH cancelled AS (
         UPDATE oktell_commands SET state = 'cancelled', finished_at = $7
          WHERE user_login = $2 AND state = 'queued' AND guard_task IS NOT NULL)
       ${insert}`,
      commandValues(command),
    );
  }

  async claim(user: string, now: number, leaseMs: number, limit: number): Promise<OktellCommandRecord[]> {
    const { rows } = await this.pool.query<OktellCommandRow>(
      `UPDATE oktell_commands c SET state = 'sent', sent_at = $2, lease_until = $3, attempts = c.attempts + 1
         FROM (SELECT seq FROM oktell_commands
                WHERE user_login = $1 AND expires_at > $2
                  AND ((state = 'queued' AND not_before <= $2) OR (state = 'sent' AND lease_until <= $2))
                ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED) due
        WHERE c.seq = due.seq
        RETURNING c.*`,
      [user, now, now + leaseMs, limit],
    );
    return rows.map(toCommandRecord).sort((a, b) => a.seq - b.seq);
  }

  async finish(id: string, outcome: { state: "answered" | "failed"; answer: unknown; error: string | null }, now: number): Promise<OktellCommandRecord | null> {
    const { rows } = await this.pool.query<OktellCommandRow>(
      `UPDATE oktell_commands SET state = $2, answer = $3, error = $4, finished_at = $5, lease_until = NULL
        WHERE id = $1 AND state = 'sent' RETURNING *`,
      [id, outcome.state, outcome.answer === undefined ? null : JSON.stringify(outcome.answer), outcome.error, now],
    );
    return rows[0] ? toCommandRecord(rows[0]) : null;
  }

  async get(id: string): Promise<(OktellCommandRecord & { seq: number }) | null> {
    const { rows } = await this.pool.query<OktellCommandRow>("SELECT * FROM oktell_commands WHERE id = $1", [id]);
    return rows[0] ? toCommandRecord(rows[0]) : null;
  }

  async list(filter: OktellCommandFilter): Promise<Array<OktellCommandRecord & { seq: number }>> {
    const { rows } = await this.pool.query<OktellCommandRow>(
      `SELECT * FROM oktell_commands
        WHERE ($1::text IS NULL OR user_login = $1) AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR seq < $3)
        ORDER BY seq DESC LIMIT $4`,
      [filter.user ?? null, filter.state ?? null, filter.before ?? null, clamp(filter.limit)],
    );
    return rows.map(toCommandRecord);
  }

  async expire(now: number, pruneBefore: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      "UPDATE oktell_commands SET state = 'expired', finished_at = $1, lease_until = NULL WHERE state IN ('queued', 'sent') AND expires_at <= $1",
      [now],
    );
    await this.pool.query("DELETE FROM oktell_commands WHERE finished_at IS NOT NULL AND finished_at < $1", [pruneBefore]);
    return rowCount ?? 0;
  }

  async cancelGuards(user: string, now: number, task?: string): Promise<number> {
    const { rowCount } = await this.pool.query(
      `UPDATE oktell_commands SET state = 'cancelled', finished_at = $2
        WHERE user_login = $1 AND state = 'queued' AND guard_task IS NOT NULL AND ($3::text IS NULL OR guard_task = $3)`,
      [user, now, task ?? null],
    );
    return rowCount ?? 0;
  }

  async nextDueAt(user: string, now: number): Promise<number | null> {
    const { rows } = await this.pool.query<{ next: number | null }>(
      `SELECT MIN(CASE WHEN state = 'queued' THEN not_before ELSE lease_until END) AS next FROM oktell_commands
        WHERE user_login = $1 AND state IN ('queued', 'sent') AND expires_at > $2`,
      [user, now],
    );
    return rows[0]?.next === null || rows[0]?.next === undefined ? null : Number(rows[0].next);
  }
}
