/** Opens the store a URL names: `sqlite:<path>` (embedded default) or `postgres://...`. */
import { HookdError } from "../../sandbox/contract/errors.ts";
import { SqliteStore } from "./sqlite.ts";
import type { Store } from "./types.ts";

export async function openStore(settings: {
  url: string;
  synchronous: "FULL" | "NORMAL" | "OFF";
  statementTimeoutMs?: number | undefined;
  maxConnections?: number | undefined;
}): Promise<Store> {
  if (settings.url.startsWith("sqlite:")) {
    const store = new SqliteStore({ file: settings.url.slice("sqlite:".length), synchronous: settings.synchronous });
    // One daemon owns a SQLite file: runs a killed process left `running` are free again. Not
    // awaited: it is the first write in the queue, so it commits before any claim, while the
    // daemon boots on. If the writer cannot start, every write after it fails the same way.
    store.recoverAfterRestart(Date.now()).catch(() => undefined);
    return store;
  }
  if (/^postgres(ql)?:\/\//.test(settings.url)) {
    // Shared by several instances: migrations wait on an advisory lock, and only expired
    // leases are freed (the other instances' running leases are alive).
    // Loaded only for a PostgreSQL URL: pg and its type parsers cost a SQLite daemon's start-up
    // tens of milliseconds and about 10 MB for nothing.
    const { PostgresStore } = await import("./postgres.ts");
    const store = await PostgresStore.open({ url: settings.url, statementTimeoutMs: settings.statementTimeoutMs, maxConnections: settings.maxConnections });
    await store.recoverAfterRestart(Date.now());
    return store;
  }
  throw new HookdError("HOOKD_STORE_UNSUPPORTED", [settings.url]);
}
