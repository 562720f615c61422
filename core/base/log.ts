/**
 * One pino logger for the daemon; every part takes a `child({ component })`. JSON lines on
 * stdout (journald reads them); `hookd dev` pretty-prints the same records.
 */
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";
import { DEFAULT_MAX_TEXT_CHARS, truncateText } from "./truncate.ts";

export type { Logger };

export interface LoggerOptions {
  level: string;
  pretty?: boolean;
  /** Where JSON lines go (default stdout); tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
  /** Config `log.maxFieldChars`: longer strings in a line are cut, saying so. */
  maxFieldChars?: number;
}

export function createLogger(options: LoggerOptions): Logger {
  const max = options.maxFieldChars ?? DEFAULT_MAX_TEXT_CHARS;
  // pino bounds nothing itself: a handler's 20 MB error message was written whole at every attempt.
  const base = {
    level: options.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // The message (and printf-style arguments).
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...args: unknown[]) => void) {
        method.apply(this, args.map((arg) => (typeof arg === "string" ? truncateText(arg, max) : arg)));
      },
    },
    // The fields; errors are bounded by their serializer, which runs after this.
    formatters: { log: (fields: Record<string, unknown>) => (tooLong(fields, max, 0) ? (boundFields(fields, max, 0) as Record<string, unknown>) : fields) },
    serializers: {
      err: (error: Error) => {
        const serialized = pino.stdSerializers.err(error);
        return tooLong(serialized, max, 0) ? boundFields(serialized, max, 0) : serialized;
      },
    },
  };
  if (options.pretty) {
    return pino(base, pretty({ colorize: process.stdout.isTTY ?? false, ignore: "pid,hostname", translateTime: "HH:MM:ss.l", sync: true }));
  }
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: false }));
}

/** Whether boundFields would change anything (most lines: no, and they are not copied). */
function tooLong(value: unknown, max: number, depth: number): boolean {
  if (typeof value === "string") return value.length > max;
  if (typeof value !== "object" || value === null || value instanceof Error || depth > 4) return false;
  if (Array.isArray(value)) return value.length <= 1000 && value.some((item) => tooLong(item, max, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return false;
  for (const field of Object.values(value)) if (tooLong(field, max, depth + 1)) return true;
  return false;
}

/** Strings of a log record cut to `max`; nested objects a few levels down too (copies, never the caller's object). */
function boundFields(value: unknown, max: number, depth: number): unknown {
  if (typeof value === "string") return truncateText(value, max);
  if (typeof value !== "object" || value === null || value instanceof Error || depth > 4) return value;
  if (Array.isArray(value)) return value.length > 1000 ? value : value.map((item) => boundFields(item, max, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const bounded: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) bounded[key] = boundFields(field, max, depth + 1);
  return bounded;
}
