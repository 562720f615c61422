/**
 * `hookd replay --event <name> --since <time> [--until <time>] [--plugin P] [--detach]`: schedules
 * the replay batch by batch through `POST /api/replay`, showing how far it got, then follows the
 * replayed runs (`GET /api/replays/{id}`) until every one is done or dead. Ctrl-C stops watching;
 * the runs go on in the daemon. Exit code 1 when some replayed runs ended dead.
 */
import { HookdError } from "../../sandbox/contract/errors.ts";

export interface ReplayCommandOptions {
  event?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  plugin?: string | undefined;
  /** Schedule only; do not follow the runs. */
  detach?: boolean | undefined;
  /** Events per batch. */
  batch?: number | undefined;
  /** Time between two progress polls while following the runs. */
  pollMs?: number | undefined;
}

export type ApiRequest = (pathname: string, init: RequestInit) => Promise<{ status: number; body: unknown }>;

interface ScheduleAnswer {
  replayId: string;
  total: number;
  events: number;
  deliveries: number;
  until: number;
  after: number;
  done: boolean;
}

type RunCounts = Record<"pending" | "running" | "done" | "dead", number>;

export async function runReplayCommand(options: ReplayCommandOptions, request: ApiRequest, out: NodeJS.WriteStream): Promise<number> {
  if (!options.event || !options.since) {
    throw new HookdError("HOOKD_CLI_USAGE", ["usage: hookd replay --event <name> --since <time> [--until <time>] [--plugin P] [--detach]"]);
  }
  const progress = new ProgressLine(out);
  const body: Record<string, unknown> = {
    event: options.event,
    since: parseCliTime(options.since, "--since"),
    until: options.until === undefined ? undefined : parseCliTime(options.until, "--until"),
    plugin: options.plugin,
    batch: options.batch ?? 500,
  };
  let events = 0;
  let runs = 0;
  let answer: ScheduleAnswer;
  do {
    const { status, body: reply } = await request("/api/replay", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (status >= 400) return fail(progress, reply);
    answer = reply as ScheduleAnswer;
    events += answer.events;
    runs += answer.deliveries;
    Object.assign(body, { replayId: answer.replayId, until: answer.until, after: answer.after });
    progress.update(`replay ${answer.replayId}: scheduled ${events}/${answer.total} events, ${runs} runs`);
  } while (!answer.done);
  progress.finish();
  if (options.detach || runs === 0) {
    out.write(`follow it with: hookd runs --replay ${answer.replayId}\n`);
    return 0;
  }

  for (;;) {
    const { status, body: reply } = await request(`/api/replays/${encodeURIComponent(answer.replayId)}`, { method: "GET" });
    if (status >= 400) return fail(progress, reply);
    const counts = (reply as { runs: RunCounts }).runs;
    const finished = counts.done + counts.dead;
    progress.update(`runs: ${finished}/${runs} finished (${counts.done} done, ${counts.dead} dead, ${counts.running} running, ${counts.pending} pending)`);
    if (finished >= runs) {
      progress.finish();
      return counts.dead > 0 ? 1 : 0;
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
  }
}

/** ISO-8601, epoch milliseconds, or a time ago: `30m`, `2h`, `7d`. */
export function parseCliTime(value: string, flag: string, now = Date.now()): string {
  const ago = /^(\d+)\s*(s|m|h|d)$/.exec(value.trim());
  if (ago) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as "s" | "m" | "h" | "d"];
    return new Date(now - Number(ago[1]) * unit).toISOString();
  }
  if (/^\d+$/.test(value)) return value;
  if (Number.isNaN(Date.parse(value))) {
    throw new HookdError("HOOKD_CLI_USAGE", [`${flag} takes an ISO-8601 time, epoch milliseconds, or a time ago like 2h or 7d`]);
  }
  return value;
}

function fail(progress: ProgressLine, reply: unknown): number {
  progress.finish();
  const error = (reply as { error?: { code?: string; message?: string } } | null)?.error;
  process.stderr.write(error ? `${error.code}: ${error.message}\n` : `${JSON.stringify(reply)}\n`);
  return 1;
}

/** One line rewritten in place on a terminal; a line per change otherwise (logs, pipes). */
class ProgressLine {
  private last = "";
  constructor(private readonly out: NodeJS.WriteStream) {}

  update(text: string): void {
    if (text === this.last) return;
    this.last = text;
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${text}`);
    else this.out.write(`${text}\n`);
  }

  finish(): void {
    if (this.out.isTTY && this.last !== "") this.out.write("\n");
    this.last = "";
  }
}
