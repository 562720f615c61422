/**
 * Messages between the daemon and the sandbox process travel in batches: everything sent during
 * one turn of the event loop goes as one write, so a burst of runs costs one hop, not one each.
 */
export class MessageBatcher<T> {
  private pending: T[] = [];
  private scheduled = false;

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
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
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
