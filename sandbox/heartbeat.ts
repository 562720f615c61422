/**
 * The daemon's watch on one sandbox process's main thread. Exiting is not the only way to fail:
 * a worker whose event loop is blocked (host-side code spinning on a hostile input, a bug) keeps
 * its runs and their leases forever while answering nothing. So the daemon pings it every
 * `sandbox.heartbeatMs`; the worker answers from its event loop, with its resident memory. After
 * `sandbox.heartbeatMisses` pings in a row without an answer the process counts as hung.
 *
 * The same answers carry the process's RSS, which the isolates' heap limits do not bound (host
 * buffers, WebAssembly memory): above `sandbox.processMemoryMb` the owner replaces the process.
 */
export interface HeartbeatSettings {
  /** Time between pings. */
  intervalMs: number;
  /** Pings in a row without an answer after which the process is hung. */
  misses: number;
  /** Resident memory of the process above which it should be replaced; 0: not watched. */
  processMemoryMb: number;
}

export const DEFAULT_HEARTBEAT: Readonly<HeartbeatSettings> = Object.freeze({ intervalMs: 1000, misses: 10, processMemoryMb: 2048 });

export interface HeartbeatHandlers {
  ping: (seq: number) => void;
  /** The process missed `missed` pings in a row; the watch has stopped. */
  onHung: (info: { missed: number; intervalMs: number }) => void;
  /** An answer put the process above `processMemoryMb`. */
  onMemoryHigh: (info: { rssBytes: number; limitMb: number }) => void;
}

export class Heartbeat {
  /** Pings in a row left unanswered so far (0 while the process answers). */
  missed = 0;
  /** Resident memory in the latest answer. */
  rssBytes = 0;
  /** Answers received so far. */
  answers = 0;
  private outstanding: number | undefined;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The first answer's RSS was above the ceiling already: replacing would not help. */
  private baselineAbove: boolean | undefined;

  constructor(
    private readonly settings: () => HeartbeatSettings,
    private readonly handlers: HeartbeatHandlers,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  get intervalMs(): number {
    return this.settings().intervalMs;
  }

  /** The worker's answer to ping `seq`. */
  answer(seq: number, rssBytes: number): void {
    if (seq !== this.outstanding || this.stopped) return;
    this.outstanding = undefined;
    this.missed = 0;
    this.rssBytes = rssBytes;
    this.answers++;
    const { processMemoryMb } = this.settings();
    if (processMemoryMb <= 0) return;
    const above = rssBytes > processMemoryMb * 1024 * 1024;
    // A process that starts above the ceiling (a ceiling set too low for the plugins it loads)
    // would be replaced by one just as big, again and again: only growth past it counts.
    this.baselineAbove ??= above;
    if (above && !this.baselineAbove) this.handlers.onMemoryHigh({ rssBytes, limitMb: processMemoryMb });
  }

  private schedule(): void {
    if (this.stopped) return;
    // Read each time: a reloaded config's interval applies from the next beat.
    this.timer = setTimeout(() => this.beat(), this.settings().intervalMs);
    this.timer.unref();
  }

  private beat(): void {
    if (this.stopped) return;
    const { misses, intervalMs } = this.settings();
    if (this.outstanding !== undefined) {
      // Still waiting: one more ping would only queue behind the first.
      this.missed++;
      if (this.missed >= misses) {
        this.stop();
        this.handlers.onHung({ missed: this.missed, intervalMs });
        return;
      }
    } else {
      this.outstanding = ++this.seq;
      this.handlers.ping(this.outstanding);
    }
    this.schedule();
  }
}
