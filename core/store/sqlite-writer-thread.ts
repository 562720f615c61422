/**
 * The SQLite store's writer thread (see sqlite-writer.ts): its own connection to the database
 * file, one commit per batch the store sends, results back in order.
 */
import { createRequire } from "node:module";
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import type Database from "better-sqlite3";
import { configureConnection, type Synchronous } from "./sqlite-schema.ts";
import { createWriteExecutor, type CommitOutcome, type WriteError } from "./sqlite-writes.ts";
import { decodeOps, encodeOutcome, type WireOp } from "./sqlite-write-wire.ts";

/** What the writer thread is started with. */
export interface WriterThreadData {
  file: string;
  synchronous: Synchronous;
  /** better-sqlite3 is resolved from here: hookd's own folder (this code has no location). */
  requireFrom: string;
}

/** Writes and results in their wire form (sqlite-write-wire.ts). */
export type ToWriterThread = { id: number; ops: readonly WireOp[] } | { close: true };
export type FromWriterThread = { ready: true } | { closed: true } | { id: number; outcome: ReturnType<typeof encodeOutcome> } | { id: number; failed: WriteError };

const data = workerData as WriterThreadData;
const port = parentPort!;
const Driver = createRequire(data.requireFrom)("better-sqlite3") as typeof Database;
const db = new Driver(data.file);
configureConnection(db, data.synchronous);
const executor = createWriteExecutor(db, data.synchronous);

// Batches that arrived while the last commit waited for the disk are committed together: one
// transaction, one fsync, however many the store sent meanwhile (group commit across batches).
port.on("message", (first: ToWriterThread) => {
  const batches: ToWriterThread[] = [first];
  for (let next = receiveMessageOnPort(port); next !== undefined; next = receiveMessageOnPort(port)) batches.push(next.message as ToWriterThread);
  const commits = batches.filter((b): b is Extract<ToWriterThread, { id: number }> => "id" in b);
  if (commits.length > 0) commitTogether(commits);
  if (batches.some((b) => "close" in b)) {
    db.close();
    port.postMessage({ closed: true } satisfies FromWriterThread);
    port.close();
  }
});

function commitTogether(commits: Array<Extract<ToWriterThread, { id: number }>>): void {
  let outcome: CommitOutcome;
  try {
    outcome = executor.commit(commits.flatMap((c) => decodeOps(c.ops)));
  } catch (error) {
    // The commit itself failed (disk full, read-only file): none of these writes is stored.
    const code = (error as { code?: unknown }).code;
    const failed: WriteError = { message: error instanceof Error ? error.message : String(error), ...(typeof code === "string" ? { code } : {}) };
    for (const c of commits) answer(c.id, { id: c.id, failed });
    return;
  }
  let offset = 0;
  for (const c of commits) {
    const results = outcome.results.slice(offset, offset + c.ops.length);
    offset += c.ops.length;
    answer(c.id, { id: c.id, outcome: encodeOutcome({ ...outcome, results }) });
  }
}

/**
 * Every commit gets an answer: one that cannot be serialized (a value too deep to clone) is
 * answered with the failure instead, so the store's caller is never left waiting.
 */
function answer(id: number, message: FromWriterThread): void {
  try {
    port.postMessage(message);
  } catch (error) {
    const failed: WriteError = { message: `the commit's answer could not be sent: ${error instanceof Error ? error.message : String(error)}`, code: "HOOKD_STORE_NO_ANSWER" };
    port.postMessage({ id, failed } satisfies FromWriterThread);
  }
}

port.postMessage({ ready: true } satisfies FromWriterThread);
