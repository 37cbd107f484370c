import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHost } from '../host/host.ts';
import { type LogLevel, createLogger } from '../log.ts';
import { loadPlugin } from '../plugin/loader.ts';

/** Options of `wsmod serve`. */
export interface ServeOptions {
  readonly host: string;
  readonly port: number;
  readonly logLevel: LogLevel;
  /** Shutdown deadline on SIGTERM/SIGINT, in ms. */
  readonly shutdownDeadline: number;
}

/** maxMessageSize of the example echo route: 16 MiB plus headroom. */
const ECHO_MAX_MESSAGE = 17 * 1024 * 1024;

/** The package root (two levels above this file, in src/ and in dist/ alike). */
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * `wsmod serve`: the example echo plugin on /echo, standalone. Prints the URL it listens on, and shuts
 * down gracefully (1001 to every client) on SIGTERM or SIGINT.
 */
export async function serve(options: ServeOptions): Promise<void> {
  const logger = createLogger(options.logLevel);
  const echo = await loadPlugin(resolve(packageRoot, 'examples', 'echo.ts'));
  // The echo route is what `wsmod check` tests; Autobahn's group 9 sends messages of 16 MiB, so this
  // route raises maxMessageSize above the 1 MiB default.
  const host = createHost({ routes: [{ path: '/echo', plugin: echo, maxMessageSize: ECHO_MAX_MESSAGE }], logger });
  const addr = await host.listen(options.port, options.host);
  const authority = addr.host.includes(':') ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
  process.stdout.write(`wsmod listening on ws://${authority}/echo\n`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, sessions: host.connections }, 'shutting down');
    host.close({ deadline: options.shutdownDeadline }).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
