import type { Host } from '../host/host.ts';
import type { Logger } from '../log.ts';
import { type PrimaryCommand, type WorkerCounters, type WorkerReport, isWire, processChannel } from './messages.ts';

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  /** The worker's host, already listening on every configured address. */
  readonly host: Host;
  /** The URLs it serves, for the primary to print once. */
  readonly urls: readonly string[];
  readonly logger: Logger;
  /** How often the counters go to the primary, in ms. Default 1000. */
  readonly statsInterval?: number;
}

/**
 * After stopping accepting, how long a retiring worker lets connections it already accepted finish
 * their handshake before it shuts down: a request still on its way is served, not refused.
 */
const RETIRE_GRACE_MS = 1000;

/** True in a process the `--workers` primary forked (docs/workers.md). */
export function isClusterWorker(): boolean {
  return process.env['WSMOD_WORKER_SLOT'] !== undefined && typeof process.send === 'function';
}

/**
 * The worker side of `wsmod serve --workers N`: tells the primary it listens, reports its counters,
 * and follows the primary's lifecycle commands (shutdown, retire, stats). SIGTERM/SIGINT sent to the
 * worker itself (a terminal's Ctrl-C reaches the whole process group) shut it down gracefully too;
 * SIGHUP is the primary's to handle (a rolling reload replaces this process).
 */
export function runWorker(options: WorkerOptions): void {
  const { host, logger: log } = options;
  const channel = processChannel();
  const counters = (): WorkerCounters => {
    const { messagesIn, messagesOut, bytesIn, bytesOut } = host.stats;
    return { connections: host.connections, messagesIn, messagesOut, bytesIn, bytesOut };
  };
  const report = (message: WorkerReport): void => {
    if (channel.connected) channel.send(message, ignore);
  };
  const timer = setInterval(() => report({ wsmod: 'stats', counters: counters() }), options.statsInterval ?? 1000);
  timer.unref();

  let stopping = false;
  const stop = (retire: boolean): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    const close = async (): Promise<void> => {
      if (retire) {
        host.stopAccepting();
        await new Promise((resolve) => setTimeout(resolve, RETIRE_GRACE_MS));
      }
      // The last counters, so the primary's totals keep what this worker carried.
      report({ wsmod: 'stats', counters: counters() });
      await host.close();
    };
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'worker shutdown failed');
        process.exit(1);
      },
    );
  };

  channel.on('message', (raw) => {
    if (isWire(raw, 'shutdown')) stop(false);
    else if (isWire(raw, 'retire')) stop(true);
    else if (isWire(raw, 'stats')) {
      const { seq } = raw as unknown as PrimaryCommand & { wsmod: 'stats' };
      report({ wsmod: 'stats', counters: counters(), seq });
    }
  });
  process.on('SIGTERM', () => stop(false));
  process.on('SIGINT', () => stop(false));
  process.on('SIGHUP', ignore);
  report({ wsmod: 'ready', urls: options.urls });
}

function ignore(): void {
  // Nothing to do: see the caller.
}
