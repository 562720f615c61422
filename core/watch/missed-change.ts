/**
 * What both file watchers (the plugins folder, core/plugins/watcher.ts, and the config and its
 * imports, core/config/watch.ts) add to chokidar: a second look at a changed file once chokidar
 * could have reported another change, so the last save of a quick burst is never lost.
 */
import { createHash } from "node:crypto";
import { readSourceFileSync } from "../compile/source-file.ts";

/** chokidar drops a `change` that follows another change of the same file within this window. */
const CHOKIDAR_CHANGE_THROTTLE_MS = 50;

/**
 * chokidar reports at most one change per file per 50 ms and drops the rest, so the last save of
 * a quick burst (a broken save fixed at once, an editor writing twice) can go unseen. After each
 * change this looks at the file once more, past that window, and reports it again if it differs
 * from what the last reload read.
 */
export class MissedChangeCheck {
  private readonly read = new Map<string, string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly onMissed: (file: string) => void) {}

  /** A change of this file was reported: look at it again once chokidar could report another. */
  arm(file: string): void {
    clearTimeout(this.timers.get(file));
    const timer = setTimeout(() => {
      this.timers.delete(file);
      const now = contentFingerprint(file);
      if (now === undefined || now === this.read.get(file)) return;
      // Remembered first, so a file nobody reloads is reported once, not every window.
      this.read.set(file, now);
      this.onMissed(file);
    }, CHOKIDAR_CHANGE_THROTTLE_MS + 15);
    this.timers.set(file, timer);
  }

  /** A reload is about to read this file: what it sees now is what was acted on. */
  reading(file: string): void {
    const now = contentFingerprint(file);
    if (now === undefined) this.read.delete(file);
    else this.read.set(file, now);
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

const FINGERPRINT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The content's hash: modification times move in kernel ticks (several ms), so two quick saves
 * of the same length can look identical to `stat`.
 */
export function contentFingerprint(file: string): string | undefined {
  try {
    // Synchronous on the main thread: a FIFO named like a plugin must not block it (it is
    // refused at once), nor a huge file take it for long (the compile refuses those anyway).
    return createHash("sha1").update(readSourceFileSync(file, FINGERPRINT_MAX_BYTES)).digest("base64url");
  } catch {
    return undefined;
  }
}
