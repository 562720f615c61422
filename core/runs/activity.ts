/**
 * What one attempt of a run did, gathered while it runs: its log lines, fetches, emits and kv
 * writes, as the daemon's host services (core/host/services.ts) see them pass. The dispatcher
 * opens an attempt before the run and takes it when the outcome is known, so the activity is
 * stored with the outcome in one write (see `RunAttemptRecord` in core/store/types.ts).
 *
 * Everything is bounded: entries per kind (log lines by the plugin's `maxLogLinesPerRun`, emits
 * by `maxEmitsPerRun`, fetches and kv writes by a fixed count), every string by
 * `log.maxFieldChars`, and the whole attempt by `MAX_ACTIVITY_BYTES` of JSON. What does not fit
 * is counted in `dropped`, never kept. A call for a run with no open attempt is ignored, so no
 * entry outlives its run.
 */
import type { RunActivity, RunFetchRecord, RunLogRecord } from "../store/types.ts";
import { DEFAULT_MAX_TEXT_CHARS, truncateText } from "../base/truncate.ts";

/** The most JSON one attempt's activity may take in the store. */
export const MAX_ACTIVITY_BYTES = 256 * 1024;
/** Fetches and kv writes kept per attempt. */
const MAX_CALLS_PER_KIND = 1000;

export interface ActivityLimits {
  maxLogLines: number;
  maxEmits: number;
  /** Config `log.maxFieldChars`. */
  maxFieldChars: number;
}

interface OpenAttempt {
  activity: RunActivity;
  bytes: number;
  limits: ActivityLimits;
}

export class RunActivityRecorder {
  private readonly open = new Map<string, OpenAttempt>();

  constructor(private readonly limitsOf: (plugin: string) => ActivityLimits) {}

  /** Starts gathering for a run (`runId` is the delivery id as text). */
  begin(runId: string, plugin: string): void {
    this.open.set(runId, { activity: emptyActivity(), bytes: 0, limits: this.limitsOf(plugin) });
  }

  /** Ends gathering and hands over what the attempt did (empty when nothing was opened). */
  take(runId: string): RunActivity {
    const attempt = this.open.get(runId);
    this.open.delete(runId);
    return attempt?.activity ?? emptyActivity();
  }

  get openAttempts(): number {
    return this.open.size;
  }

  log(runId: string | undefined, level: RunLogRecord["level"], msg: string | undefined, fields: Record<string, unknown> | undefined): void {
    const attempt = runId === undefined ? undefined : this.open.get(runId);
    if (!attempt) return;
    const max = attempt.limits.maxFieldChars;
    if (attempt.activity.logs.length >= attempt.limits.maxLogLines) {
      attempt.activity.dropped++;
      return;
    }
    const bounded = fields && Object.keys(fields).length > 0 ? boundFields(fields, max) : undefined;
    const text = msg === undefined ? undefined : truncateText(msg, max);
    const entry: RunLogRecord = { at: Date.now(), level, ...(text === undefined ? {} : { msg: text }), ...(bounded ? { fields: bounded.value } : {}) };
    // Sized from the parts already measured: no second serialization of the line.
    this.add(attempt, attempt.activity.logs, entry, attempt.limits.maxLogLines, 48 + (text?.length ?? 0) + (bounded?.chars ?? 0));
  }

  fetch(runId: string, record: RunFetchRecord): void {
    const attempt = this.open.get(runId);
    if (!attempt) return;
    const max = attempt.limits.maxFieldChars;
    const entry: RunFetchRecord = { ...record, url: truncateText(redactUrl(record.url), max), ...(record.error ? { error: truncateText(record.error, max) } : {}), ...(record.response ? { response: truncateText(record.response, max) } : {}) };
    this.add(attempt, attempt.activity.fetches, entry, MAX_CALLS_PER_KIND);
  }

  emit(runId: string, name: string, eventId: string | undefined, error?: string): void {
    const attempt = this.open.get(runId);
    if (!attempt) return;
    const entry = { at: Date.now(), name, ...(eventId === undefined ? {} : { eventId }), ...(error === undefined ? {} : { error: truncateText(error, attempt.limits.maxFieldChars) }) };
    this.add(attempt, attempt.activity.emits, entry, attempt.limits.maxEmits);
  }

  kvWrite(runId: string, op: "set" | "delete", key: string, bytes: number, error?: string): void {
    const attempt = this.open.get(runId);
    if (!attempt) return;
    const max = attempt.limits.maxFieldChars;
    const entry = { at: Date.now(), op, key: truncateText(key, max), bytes, ...(error === undefined ? {} : { error: truncateText(error, max) }) };
    this.add(attempt, attempt.activity.kvWrites, entry, MAX_CALLS_PER_KIND);
  }

  private add<T>(attempt: OpenAttempt, list: T[], entry: T, maxEntries: number, size?: number): void {
    // Characters, not bytes, when the caller sized it: close enough for a bound on what is kept.
    const bytes = size ?? JSON.stringify(entry).length + 1;
    if (list.length >= maxEntries || attempt.bytes + bytes > MAX_ACTIVITY_BYTES) {
      attempt.activity.dropped++;
      return;
    }
    attempt.bytes += bytes;
    list.push(entry);
  }
}

export function emptyActivity(): RunActivity {
  return { logs: [], fetches: [], emits: [], kvWrites: [], dropped: 0 };
}

/**
 * A URL as the run detail shows it: no user info, and query values blanked (an API key, a
 * token or a signature often travels there); the names stay, so the call is still recognisable.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/\?.*$/s, "?…");
  }
  parsed.username = "";
  parsed.password = "";
  const names = [...new Set([...parsed.searchParams.keys()])];
  parsed.search = "";
  parsed.hash = "";
  return names.length === 0 ? parsed.toString() : `${parsed.toString()}?${names.map((name) => `${encodeURIComponent(name)}=…`).join("&")}`;
}

/** The fields with long strings cut, and their size as JSON; the object itself when nothing was cut. */
function boundFields(fields: Record<string, unknown>, maxChars: number): { value: Record<string, unknown>; chars: number } {
  let text: string;
  let cut = false;
  try {
    text = JSON.stringify(fields, (_key, value: unknown) => {
      if (typeof value !== "string" || value.length <= maxChars) return value;
      cut = true;
      return truncateText(value, maxChars);
    });
  } catch {
    return { value: { unserializable: true }, chars: 24 };
  }
  if (text === undefined) return { value: {}, chars: 2 };
  if (text.length > maxChars * 4) {
    const truncated = truncateText(text, maxChars);
    return { value: { truncated }, chars: truncated.length + 16 };
  }
  return { value: cut ? (JSON.parse(text) as Record<string, unknown>) : fields, chars: text.length };
}

export const DEFAULT_ACTIVITY_LIMITS: ActivityLimits = { maxLogLines: 1000, maxEmits: 100, maxFieldChars: DEFAULT_MAX_TEXT_CHARS };
