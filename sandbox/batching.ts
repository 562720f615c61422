/**
 * Messages between the daemon and the sandbox process travel in batches: everything sent during
 * one turn of the event loop goes as one write, so a burst of runs costs one hop, not one each.
 *
 * Under a steady load a turn holds one or two runs, and each write to the other process (a
 * syscall that wakes it) was the daemon's largest single cost: 9% of its CPU end to end. So
 * while writes come faster than one per BUSY_WINDOW_MS, a batch waits COALESCE_MS for more; an
 * idle channel still sends at the end of the turn, with no wait.
 */
const BUSY_WINDOW_MS = 1;
const COALESCE_MS = 1;

export class MessageBatcher<T> {
  private pending: T[] = [];
  private scheduled = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastFlush = Number.NEGATIVE_INFINITY;

  /**
   * `onUnsendable` hears of a message that could not be serialized: the rest of its batch still
   * goes, one by one, instead of the whole batch being lost with it.
   */
  constructor(
    private readonly sendBatch: (batch: T[]) => void,
    private readonly onUnsendable?: (message: T, error: unknown) => void,
  ) {}

  send(message: T): void {
    this.pending.push(message);
    if (this.scheduled) return;
    this.scheduled = true;
    if (performance.now() - this.lastFlush < BUSY_WINDOW_MS) this.timer = setTimeout(() => this.flush(), COALESCE_MS);
    else setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) return;
    this.lastFlush = performance.now();
    const batch = this.pending;
    this.pending = [];
    try {
      this.sendBatch(batch);
    } catch {
      for (const message of batch) {
        try {
          this.sendBatch([message]);
        } catch (error) {
          this.onUnsendable?.(message, error);
        }
      }
    }
  }

  /** Drops what was not sent yet (the other side is gone). */
  discard(): void {
    this.pending = [];
  }
}
