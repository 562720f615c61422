/** Opens the store a URL names: `sqlite:<path>` (embedded default) or `postgres://...`. */
import { HookdError } from "../errors.ts";
import { SqliteStore } from "./sqlite.ts";
import type { Store } from "./types.ts";

export async function openStore(settings: { url: string; synchronous: "FULL" | "NORMAL" | "OFF" }): Promise<Store> {
  if (settings.url.startsWith("sqlite:")) {
    const store = new SqliteStore({ file: settings.url.slice("sqlite:".length), synchronous: settings.synchronous });
    // One daemon owns a SQLite file: runs a killed process left `running` are free again now.
    store.recoverAfterRestart(Date.now());
    return store;
  }
  throw new HookdError("HOOKD_STORE_UNSUPPORTED", [settings.url]);
}
