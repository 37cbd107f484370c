import { createRequire } from 'node:module';
import type { Logger as PinoLogger } from 'pino';

/** The logging interface wsmod uses: pino's call shape, so a pino logger can be passed as it is. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Log levels, most verbose first; `silent` logs nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/**
 * A pino logger writing JSON lines to stderr (stdout stays free for the CLI's own output).
 *
 * pino is loaded on the first line that passes `level`, not before: every host gets this logger by
 * default, and an embedder that never logs (or passes its own logger) should not pay for pino's
 * module graph at `import 'wsmod'`. Lines below `level` are dropped here without loading anything.
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  const threshold = RANK[level];
  let pino: PinoLogger | undefined;
  const write = (at: Exclude<LogLevel, 'silent'>, obj: object, msg: string | undefined): void => {
    if (RANK[at] < threshold) return;
    pino ??= loadPino(level);
    if (msg === undefined) pino[at](obj);
    else pino[at](obj, msg);
  };
  return {
    debug: (obj, msg) => write('debug', obj, msg),
    info: (obj, msg) => write('info', obj, msg),
    warn: (obj, msg) => write('warn', obj, msg),
    error: (obj, msg) => write('error', obj, msg),
  };
}

/**
 * pino is CommonJS, so require() gives it synchronously on the first log call (a dynamic import would
 * make logging asynchronous and could lose the lines written just before a crash).
 */
function loadPino(level: LogLevel): PinoLogger {
  const { pino } = createRequire(import.meta.url)('pino') as typeof import('pino');
  return pino({ level, base: { name: 'wsmod' } }, pino.destination(2));
}
