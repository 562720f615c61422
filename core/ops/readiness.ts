/**
 * Readiness: the daemon takes events only when the store commits writes, the sandbox process is
 * up and the plugins folder has been loaded. `GET /readyz` answers 503 with the first reason
 * that fails; the systemd watchdog withholds its ping while the store cannot write.
 *
 * The store check is a real write (a committed row in the store's meta table): a file system
 * remounted read-only, a full disk or a foreign lock shows up there and nowhere cheaper. Its
 * result is kept for a moment, so a load balancer polling /readyz costs one write per second at
 * most, and concurrent checks share one write.
 */
export interface ReadinessOptions {
  /** Why the daemon as a whole is not serving (starting, stopping, sandbox restarting), or undefined. */
  lifecycle: () => string | undefined;
  /** Resolves once a tiny write committed; rejects with the reason otherwise. */
  checkStoreWritable: () => Promise<void>;
  /** How long one store check answers for. */
  cacheMs?: number;
  now?: () => number;
}

export class Readiness {
  private lastCheck: { at: number; result: Promise<string | undefined> } | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ReadinessOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The first reason the daemon is not ready, or undefined when it is. */
  async notReadyReason(): Promise<string | undefined> {
    const lifecycle = this.options.lifecycle();
    if (lifecycle !== undefined) return lifecycle;
    return this.storeUnwritableReason();
  }

  /** Why the store cannot take writes now, or undefined when a write just committed. */
  storeUnwritableReason(): Promise<string | undefined> {
    const at = this.now();
    if (this.lastCheck && at - this.lastCheck.at < (this.options.cacheMs ?? 1000)) return this.lastCheck.result;
    const result = this.options.checkStoreWritable().then(
      () => undefined,
      (error: unknown) => `store is not writable: ${describe(error)}`,
    );
    this.lastCheck = { at, result };
    return result;
  }
}

function describe(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : String(error);
  return typeof code === "string" && !text.includes(code) ? `${text} (${code})` : text;
}
