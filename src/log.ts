import { pino } from 'pino';

/** The logging interface wsmod uses: pino's call shape, so a pino logger can be passed as it is. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Log levels, most verbose first; `silent` logs nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** A pino logger writing JSON lines to stderr (stdout stays free for the CLI's own output). */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({ level, base: { name: 'wsmod' } }, pino.destination(2));
}
