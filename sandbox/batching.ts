/**
 * Messages between the daemon and the sandbox process travel in batches: everything sent during
 * one turn of the event loop goes as one IPC message, so a burst of runs costs one hop, not one each.
 */
export class MessageBatcher<T> {
  private pending: T[] = [];
  private scheduled = false;

  constructor(private readonly sendBatch: (batch: T[]) => void) {}

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
    this.sendBatch(batch);
  }

  /** Drops what was not sent yet (the other side is gone). */
  discard(): void {
    this.pending = [];
  }
}
