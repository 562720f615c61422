// The SQLite writer thread answers every commit, even one whose answer cannot cross to the
// daemon's thread (a value nested too deep for structured clone): the caller gets an error with
// a code instead of a promise that never settles, and the writer keeps working.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, expect, it } from "vitest";
import { SqliteStore } from "../../core/store/sqlite.ts";

let dir: string;
let store: SqliteStore;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "hookd-writer-"));
  store = new SqliteStore({ file: path.join(dir, "hookd.db") });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Settles within `ms`, or fails saying it did not (the bug: it never settled). */
function settleWithin<T>(promise: Promise<T>, ms: number): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return Promise.race([
    promise.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error })),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms: the commit never settled`)), ms).unref()),
  ]);
}

it("a commit whose answer is too deep to clone is rejected with HOOKD_STORE_NO_ANSWER; the next commit works", async () => {
  await store.acceptEvent({ id: "e1", name: "deal.close", payload: {}, receivedAt: 1, source: "http", depth: 0 }, [
    { kind: "handler", plugin: "p", target: "deal.close", maxAttempts: 1 },
  ]);
  // A dead run whose stored error nests deep (planted past every bound): a manual retry answers
  // with the run, error included, parsed on the writer thread.
  // 10,000: the thread sends it, the daemon's thread cannot read it (a `messageerror`, no id);
  // 200,000: the thread cannot even send it. Depths where both sides cope answer normally.
  for (const depth of [10_000, 200_000]) {
    const raw = new Database(path.join(dir, "hookd.db"));
    raw.prepare("UPDATE deliveries SET status = 'dead', last_error = ?").run(`{"code":"X","message":"m","deep":${"[".repeat(depth)}${"]".repeat(depth)}}`);
    raw.close();
    const outcome = await settleWithin(store.retryDelivery(1, 2), 10_000);
    expect(outcome.ok ? "answered" : (outcome.error as { code?: string }).code).toBe("HOOKD_STORE_NO_ANSWER");
  }
  const next = await settleWithin(store.acceptEvent({ id: "e2", name: "deal.close", payload: {}, receivedAt: 3, source: "http", depth: 0 }, []), 10_000);
  expect(next).toEqual({ ok: true, value: expect.objectContaining({ kind: "stored" }) });
});
