/**
 * One pino logger for the daemon; every part takes a `child({ component })`. JSON lines on
 * stdout (journald reads them); `hookd dev` pretty-prints the same records.
 */
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export interface LoggerOptions {
  level: string;
  pretty?: boolean;
  /** Where JSON lines go (default stdout); tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (options.pretty) {
    return pino(base, pretty({ colorize: process.stdout.isTTY ?? false, ignore: "pid,hostname", translateTime: "HH:MM:ss.l", sync: true }));
  }
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: false }));
}
