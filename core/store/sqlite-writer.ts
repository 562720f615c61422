/**
 * Where the SQLite store's commits happen. With `synchronous=FULL` a commit waits for an fsync
 * (milliseconds on most disks); on the daemon's event loop that wait would stall every request
 * and every run. The thread writer commits on a worker thread with its own connection instead:
 * while it waits for the disk, the daemon parses requests and runs handlers, and the next batch
 * piles up. The inline writer commits on the caller's thread (`:memory:` databases, which one
 * connection owns).
 */
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import * as esbuild from "esbuild";
import { COMPILED, ownFile } from "../../sandbox/contract/locate.ts";
import type { Synchronous } from "./sqlite-schema.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { FromWriterThread, ToWriterThread, WriterThreadData } from "./sqlite-writer-thread.ts";
import { createWriteExecutor, type CommitOutcome, type WriteOp } from "./sqlite-writes.ts";
import { decodeOutcome, encodeOps } from "./sqlite-write-wire.ts";

export interface Writer {
  /** Commits a batch in one transaction; rejects when the commit itself failed. */
  commit(ops: readonly WriteOp[]): Promise<CommitOutcome>;
  close(): Promise<void>;
}

export function inlineWriter(db: Database.Database, synchronous: Synchronous): Writer {
  const executor = createWriteExecutor(db, synchronous);
  return {
    commit: async (ops) => executor.commit(ops),
    close: async () => undefined,
  };
}

export function threadWriter(file: string, synchronous: Synchronous): Writer {
  const pending = new Map<number, { resolve: (outcome: CommitOutcome) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let broken: Error | undefined;
  let onClosed: (() => void) | undefined;
  const failAll = (error: Error) => {
    broken ??= error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };

  const started = writerThreadSource().then(
    (source) =>
      new Promise<Worker>((resolve, reject) => {
        const data: WriterThreadData = { file, synchronous, requireFrom: fileURLToPath(import.meta.url) };
        const worker = new Worker(source, { eval: typeof source === "string", workerData: data });
        worker.on("message", (message: FromWriterThread) => {
          if ("ready" in message) return resolve(worker);
          if ("closed" in message) return onClosed?.();
          const waiter = pending.get(message.id);
          pending.delete(message.id);
          if (pending.size === 0) worker.unref();
          if ("outcome" in message) waiter?.resolve(decodeOutcome(message.outcome));
          else waiter?.reject(Object.assign(new Error(message.failed.message), { code: message.failed.code }));
        });
        // A reply that cannot be deserialized here arrives as `messageerror`, without its id.
        // The thread answers commits in the order they were sent, so the lost reply is the
        // oldest one still waiting: it is rejected rather than left to wait forever (a claim
        // that never settles stops the dispatcher, and the daemon's stop with it).
        worker.on("messageerror", (error) => {
          const oldest = pending.keys().next();
          if (oldest.done) return;
          const waiter = pending.get(oldest.value)!;
          pending.delete(oldest.value);
          if (pending.size === 0) worker.unref();
          waiter.reject(new HookdError("HOOKD_STORE_NO_ANSWER", ["a commit", `its answer could not be read (${error.message})`], { cause: error }));
        });
        worker.on("error", (error) => {
          reject(error);
          failAll(error);
        });
        worker.on("exit", (code) => {
          const error = new Error(`the store's writer thread stopped (exit code ${code})`);
          reject(error);
          failAll(error);
        });
      }),
  );
  // A start failure is reported by the first commit.
  started.catch(() => undefined);

  return {
    async commit(ops) {
      const worker = await started;
      if (broken) throw broken;
      return new Promise<CommitOutcome>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        // Held only while a commit is under way: an idle store does not keep a process alive.
        worker.ref();
        try {
          worker.postMessage({ id, ops: encodeOps(ops) } satisfies ToWriterThread);
        } catch (error) {
          // Not sent (a value structured clone refuses): nothing waits for its answer.
          pending.delete(id);
          if (pending.size === 0) worker.unref();
          throw error;
        }
      });
    },
    async close() {
      const worker = await started.catch(() => undefined);
      if (!worker || broken) return;
      worker.ref();
      await new Promise<void>((resolve) => {
        onClosed = resolve;
        worker.once("exit", () => resolve());
        worker.postMessage({ close: true } satisfies ToWriterThread);
      });
      await worker.terminate();
    },
  };
}

let bundled: Promise<string> | undefined;

/**
 * The writer thread's script. Compiled, it is its own file. From the sources it is code bundled
 * once per process: a worker thread does not inherit the TypeScript loader vitest runs under.
 */
function writerThreadSource(): Promise<string | URL> {
  if (COMPILED) return Promise.resolve(new URL("./sqlite-writer-thread.js", import.meta.url));
  bundled ??= esbuild
    .build({
      entryPoints: [ownFile(import.meta.url, "./sqlite-writer-thread.ts")],
      bundle: true,
      write: false,
      format: "cjs",
      platform: "node",
      target: "node20",
      logLevel: "silent",
    })
    .then((result) => result.outputFiles[0]!.text);
  return bundled;
}
