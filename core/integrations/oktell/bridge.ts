/**
 * The telephony workstation bridge, daemon side: a relay beside each operator's Oktell client
 * long-polls for the method calls hookd has for that operator, performs them on the component
 * and posts what they returned. Everything a command goes through is in the store
 * (core/store/oktell-commands.ts), so it survives a restart and any instance on PostgreSQL can serve either
 * half; in-process wake-ups only make it faster, and every wait also re-reads the store.
 *
 * - ctx.oktell calls land in `call()`: checked, queued, answered when the bridge answers (the
 *   wait ends with the command's TTL or with the run, whichever comes first);
 * - the confirm guard rides on the same queue: a TMInterfaceConfirm queues its default answer
 *   due `answerAfterMs` later; a handler's own confirmResult, or a TMInterfaceClose of the task,
 *   cancels it. Nothing but the row has to survive a plugin that throws, pauses or reloads.
 */
import { randomUUID } from "node:crypto";
import type { OktellSettings } from "./settings.ts";
import { HookdError } from "../../../sandbox/contract/errors.ts";
import type { Logger } from "../../base/log.ts";
import type { Store } from "../../store/types.ts";
import type { OktellCommandRecord, OktellCommandStore } from "../../store/oktell-commands.ts";
import { decodeXmlBody } from "./decode.ts";
import { confirmResultArgument, decodeAnswer, isOktellApiMethod, OKTELL_METHODS, specOfComponentMethod } from "./methods.ts";
import { parseOktellData } from "./xml.ts";

/** Who queued a guard's answer. */

/** One ctx.oktell call as the daemon serves it; `signal` aborts when the run ends (its wall time included). */
export interface OktellHostCall {
  plugin: string;
  runId: string;
  method: string;
  user: unknown;
  argument: unknown;
  signal?: AbortSignal | undefined;
}

export const CONFIRM_GUARD = "$confirm-guard";
/** kv namespace where bridges' last polls are recorded (every instance sees them). */
const BRIDGE_KV_NAMESPACE = "$oktell";
/** Polls of one user waiting at once (one bridge, plus a restarted one whose old poll lingers). */
const MAX_POLLS_PER_USER = 4;
/** The longest `wait` a poll may ask for, in seconds. */
export const MAX_POLL_WAIT_SECONDS = 60;
/** Every wait re-reads the store at least this often (another instance may have done the work). */
const STORE_RECHECK_MS = 500;
/** A poll's visit is written to the store at most this often per user. */
const SEEN_WRITE_MS = 10_000;
/** Finished commands are deleted after this long. */
const FINISHED_KEPT_MS = 7 * 24 * 3_600_000;
const SWEEP_MS = 1_000;

export interface OktellBridgeOptions {
  store: Store;
  settings: () => OktellSettings;
  maxDepth: () => number;
  /** Whether a plugin declared `plugin({ oktell: true })`. */
  declaresOktell: (plugin: string) => boolean;
  logger: Logger;
}

/** What a bridge posted as a command's result. */
export type BridgeResult = { kind: "xml"; bytes: Buffer } | { kind: "json"; value: unknown };

export class OktellBridge {
  private readonly log: Logger;
  private readonly commands: OktellCommandStore;
  /** Waiting polls per user, woken when a command for that user is queued here. */
  private readonly polls = new Map<string, Set<() => void>>();
  private pollCount = 0;
  /** ctx.oktell calls waiting for their command's answer, woken when it is posted here. */
  private readonly answers = new Map<string, Set<() => void>>();
  private readonly seenWritten = new Map<string, number>();
  private readonly seenHere = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: OktellBridgeOptions) {
    if (!options.store.oktellCommands) throw new Error("the store has no workstation commands table");
    this.commands = options.store.oktellCommands;
    this.log = options.logger.child({ component: "oktell" });
  }

  /** Expires commands past their TTL (and deletes old finished ones) once a second. */
  start(): void {
    const sweep = () => {
      const now = Date.now();
      this.commands.expire(now, now - FINISHED_KEPT_MS).then(
        (expired) => {
          if (expired > 0) for (const waiters of this.answers.values()) for (const wake of waiters) wake();
        },
        (error: unknown) => this.log.warn({ err: error }, "workstation commands: the expiry sweep failed; it runs again"),
      ).finally(() => {
        if (!this.stopped) this.sweepTimer = setTimeout(sweep, SWEEP_MS).unref();
      });
    };
    this.sweepTimer = setTimeout(sweep, SWEEP_MS).unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.sweepTimer);
    for (const waiters of [...this.polls.values(), ...this.answers.values()]) for (const wake of waiters) wake();
  }

  /** ctx.oktell.<method>(user, argument): resolves to the decoded answer, or rejects with HOOKD_OKTELL_*. */
  async call(host: OktellHostCall): Promise<unknown> {
    const method = host.method;
    if (!this.options.declaresOktell(host.plugin)) throw new HookdError("HOOKD_OKTELL_NOT_DECLARED", [host.plugin, method]);
    if (!isOktellApiMethod(method)) throw new HookdError("HOOKD_OKTELL_BAD_ARGUMENT", [method, "no such method"]);
    const user = checkUser(host.user, () => new HookdError("HOOKD_OKTELL_BAD_ARGUMENT", [method, `the user must be a workstation login (1 to 128 characters), got ${JSON.stringify(host.user) ?? "undefined"}`]));
    const spec = OKTELL_METHODS[method];
    const argument = spec.build([host.argument]);
    const settings = this.options.settings();
    if (!(await this.connected(user, settings.bridgeSeenMs))) throw new HookdError("HOOKD_OKTELL_USER_NOT_CONNECTED", [user, Math.round(settings.bridgeSeenMs / 1000)]);
    const now = Date.now();
    const id = `okc_${randomUUID()}`;
    await this.commands.queue(
      { id, user, method: spec.method, ...argument, requestedBy: host.plugin, createdAt: now, notBefore: now, expiresAt: now + settings.commandTtlMs, guardTask: null },
      // A handler that answers the confirm itself takes the guard's place.
      { cancelGuards: spec.method === "TM_SetConfirmResult" },
    );
    this.wakePolls(user);
    const record = await this.waitForAnswer(id, now + settings.commandTtlMs, host.signal);
    if (record?.state === "answered") return record.answer ?? null;
    if (record?.state === "failed") throw new HookdError("HOOKD_OKTELL_METHOD_FAILED", [spec.method, user, record.error ?? "(no message)"]);
    throw new HookdError("HOOKD_OKTELL_COMMAND_TIMEOUT", [id, spec.method, user, Date.now() - now]);
  }

  /**
   * `GET /oktell/commands?user=&wait=`: the user's deliverable commands, leased to this poll;
   * waits up to `waitMs` for one to come (empty when none did).
   */
  async poll(rawUser: unknown, waitMs: number, signal: AbortSignal): Promise<OktellCommandRecord[]> {
    const user = checkUser(rawUser, () => new HookdError("HOOKD_OKTELL_USER_INVALID", [JSON.stringify(rawUser)]));
    const settings = this.options.settings();
    const waiting = this.polls.get(user) ?? new Set<() => void>();
    if (this.pollCount >= settings.maxPollers) throw new HookdError("HOOKD_OKTELL_TOO_MANY_POLLS", [`${this.pollCount} polls wait already (oktell.maxPollers)`]);
    if (waiting.size >= MAX_POLLS_PER_USER) throw new HookdError("HOOKD_OKTELL_TOO_MANY_POLLS", [`${waiting.size} polls of user ${user} wait already`]);
    this.polls.set(user, waiting);
    this.pollCount++;
    let wake: () => void = () => undefined;
    const woken = () => wake();
    waiting.add(woken);
    try {
      const deadline = Date.now() + waitMs;
      for (;;) {
        await this.markSeen(user);
        const now = Date.now();
        const claimed = await this.commands.claim(user, now, settings.commandLeaseMs, 50);
        if (claimed.length > 0 || now >= deadline || signal.aborted || this.stopped) return claimed;
        const due = await this.commands.nextDueAt(user, now);
        const until = Math.min(deadline, due ?? Infinity, now + STORE_RECHECK_MS);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, until - Date.now()));
          wake = () => (clearTimeout(timer), resolve());
          signal.addEventListener("abort", wake, { once: true });
        });
        signal.removeEventListener("abort", wake);
      }
    } finally {
      waiting.delete(woken);
      if (waiting.size === 0) this.polls.delete(user);
      this.pollCount--;
    }
  }

  /** `POST /oktell/commands/{id}/result`: decoded and recorded, or a 4xx with nothing stored. */
  async answer(id: string, result: BridgeResult, rawBridgeUser: unknown): Promise<OktellCommandRecord> {
    const bridgeUser = rawBridgeUser === undefined ? undefined : checkUser(rawBridgeUser, () => new HookdError("HOOKD_OKTELL_USER_INVALID", [JSON.stringify(rawBridgeUser)]));
    const command = await this.commands.get(id);
    if (!command) throw new HookdError("HOOKD_OKTELL_COMMAND_UNKNOWN", [id]);
    if (bridgeUser !== undefined && bridgeUser !== command.user) throw new HookdError("HOOKD_OKTELL_WRONG_USER", [id, command.user, bridgeUser]);
    const now = Date.now();
    if (command.state === "expired" || (command.state !== "answered" && command.state !== "failed" && command.expiresAt <= now)) {
      throw new HookdError("HOOKD_OKTELL_COMMAND_EXPIRED", [id]);
    }
    if (command.state !== "sent") throw new HookdError("HOOKD_OKTELL_COMMAND_NOT_PENDING", [id, command.state]);
    const outcome = this.decodeResult(command, result);
    const finished = await this.commands.finish(id, outcome, now);
    if (!finished) {
      const current = await this.commands.get(id);
      throw current?.state === "expired" ? new HookdError("HOOKD_OKTELL_COMMAND_EXPIRED", [id]) : new HookdError("HOOKD_OKTELL_COMMAND_NOT_PENDING", [id, current?.state ?? "gone"]);
    }
    for (const wake of this.answers.get(id) ?? []) wake();
    if (finished.requestedBy === CONFIRM_GUARD) this.log.info({ user: finished.user, commandId: id, task: finished.guardTask, returned: finished.answer }, "confirm guard: the workstation took the default answer");
    return finished;
  }

  /** After a telephony request's events are stored: the confirm guard queues or cancels default answers. */
  async eventsAccepted(user: string | undefined, events: ReadonlyArray<{ id: string; name: string; body: Record<string, unknown>; duplicate: boolean }>, arrivedAt = Date.now()): Promise<void> {
    const confirm = this.options.settings().confirm;
    if (user === undefined || confirm === undefined) return;
    const settings = this.options.settings();
    for (const event of events) {
      const task = typeof event.body.idtask === "string" ? event.body.idtask : undefined;
      const now = Date.now();
      if (event.name === "oktell.tminterfaceconfirm") {
        const notBefore = now + confirm.answerAfterMs;
        // Its id comes from the event's: a request repeated after a lost 202 (the same event, by its
        // Idempotency-Key) queues no second guard, and one whose first try failed here queues the missing one.
        await this.commands.queue({
          id: `okg_${event.id}`,
          user,
          method: "TM_SetConfirmResult",
          ...confirmResultArgument(confirm.result),
          requestedBy: CONFIRM_GUARD,
          createdAt: now,
          notBefore,
          expiresAt: notBefore + settings.commandTtlMs,
          guardTask: task ?? "",
        });
        // The confirm's handlers may have answered before the guard was stored (on PostgreSQL the
        // run is claimed as soon as its event commits): a handler's answer since the request
        // arrived takes the guard's place, as it does when it comes later.
        const handlers = await this.commands.list({ user, limit: 100 });
        if (handlers.some((c) => c.method === "TM_SetConfirmResult" && c.requestedBy !== CONFIRM_GUARD && c.createdAt >= arrivedAt)) {
          await this.commands.cancelGuards(user, Date.now(), task);
        }
        this.wakePolls(user);
      } else if (event.name === "oktell.tminterfaceclose" && !event.duplicate) {
        await this.commands.cancelGuards(user, now, task);
      }
    }
  }

  list(filter: Parameters<OktellCommandStore["list"]>[0]) {
    return this.commands.list(filter);
  }

  get(id: string) {
    return this.commands.get(id);
  }

  private decodeResult(command: OktellCommandRecord, result: BridgeResult): { state: "answered" | "failed"; answer: unknown; error: string | null } {
    const spec = specOfComponentMethod(command.method);
    if (!spec) throw new HookdError("HOOKD_OKTELL_RESULT_INVALID", [command.id, `its method ${command.method} is unknown to this hookd`]);
    if (result.kind === "xml") {
      const { text } = decodeXmlBody(result.bytes);
      return { state: "answered", answer: decodeAnswer(spec, { data: parseOktellData(text, this.options.maxDepth()) }), error: null };
    }
    const value = result.value;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new HookdError("HOOKD_OKTELL_RESULT_INVALID", [command.id, `expected the method's XML, {"returned": ...} or {"error": "..."}`]);
    }
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "error" && typeof (value as { error: unknown }).error === "string") {
      return { state: "failed", answer: null, error: (value as { error: string }).error.slice(0, 4000) };
    }
    if (keys.length === 1 && keys[0] === "returned") return { state: "answered", answer: decodeAnswer(spec, { returned: (value as { returned: unknown }).returned }), error: null };
    throw new HookdError("HOOKD_OKTELL_RESULT_INVALID", [command.id, `expected {"returned": ...} or {"error": "..."}, got the fields ${JSON.stringify(keys)}`]);
  }

  private async waitForAnswer(id: string, expiresAt: number, signal: AbortSignal | undefined): Promise<OktellCommandRecord | null> {
    const waiters = this.answers.get(id) ?? new Set<() => void>();
    this.answers.set(id, waiters);
    let wake: () => void = () => undefined;
    const woken = () => wake();
    waiters.add(woken);
    try {
      for (;;) {
        const record = await this.commands.get(id);
        if (!record || (record.state !== "queued" && record.state !== "sent")) return record;
        const now = Date.now();
        if (now >= expiresAt || signal?.aborted || this.stopped) return record;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(STORE_RECHECK_MS, expiresAt - now));
          wake = () => (clearTimeout(timer), resolve());
          signal?.addEventListener("abort", wake, { once: true });
        });
        signal?.removeEventListener("abort", wake);
      }
    } finally {
      waiters.delete(woken);
      if (waiters.size === 0) this.answers.delete(id);
    }
  }

  private wakePolls(user: string): void {
    for (const wake of this.polls.get(user) ?? []) wake();
  }

  /** Records the bridge's visit (here at once, in the store at most every SEEN_WRITE_MS) for connected(). */
  private async markSeen(user: string): Promise<void> {
    const now = Date.now();
    // Bounded: a flood of made-up logins costs at most this many entries (the store keeps the rest).
    if (this.seenHere.size > 100_000) this.seenHere.clear();
    this.seenHere.set(user, now);
    if (now - (this.seenWritten.get(user) ?? 0) < SEEN_WRITE_MS) return;
    this.seenWritten.set(user, now);
    if (this.seenWritten.size > 100_000) this.seenWritten.clear();
    await this.options.store.kvSet(BRIDGE_KV_NAMESPACE, `bridge:${user}`, { lastPollAt: now });
  }

  private async connected(user: string, withinMs: number): Promise<boolean> {
    const now = Date.now();
    if (this.polls.has(user) || now - (this.seenHere.get(user) ?? -Infinity) <= withinMs) return true;
    const seen = (await this.options.store.kvGet(BRIDGE_KV_NAMESPACE, `bridge:${user}`)) as { lastPollAt?: number } | undefined;
    return typeof seen?.lastPollAt === "number" && now - seen.lastPollAt <= withinMs;
  }
}

/** A workstation login: 1 to 128 characters, no control characters. */
export function checkUser(value: unknown, error: () => HookdError): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== "string" || value.length === 0 || value.length > 128 || /[\u0000-\u001f\u007f]/.test(value)) throw error();
  return value;
}
