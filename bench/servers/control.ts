/**
 * The control channel every bench server shares: the first stdout line announces the port, then the
 * orchestrator sends commands on stdin, one per line, and reads one JSON reply line per command.
 *
 *   gc     → runs a forced GC (the server runs with --expose-gc) and replies with process.memoryUsage()
 *   conns  → replies with the number of open WebSocket connections
 *   heapsnapshot <file> → forced GC, then a V8 heap snapshot written to <file> (profiling runs only)
 *   exit   → exits (so `--cpu-prof` writes its profile); a closed stdin exits too
 */
import { createInterface } from 'node:readline';
import { setImmediate as tick } from 'node:timers/promises';
import { writeHeapSnapshot } from 'node:v8';

export interface ServerAnnouncement {
  readonly name: string;
  readonly port: number;
  readonly info: Record<string, unknown>;
}

function reply(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** Announces the server and serves the control commands until stdin closes. */
export function serveControl(announcement: ServerAnnouncement, connections: () => number): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  reply({ ...announcement, node: process.version, pid: process.pid });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const cmd = line.trim();
    if (cmd === 'gc') {
      void (async () => {
        // Three times, with turns of the event loop between, so weak callbacks and finalizers run.
        for (let i = 0; i < 3; i++) {
          gc?.();
          await tick();
        }
        reply({ reply: 'gc', forced: gc !== undefined, mem: process.memoryUsage(), conns: connections() });
      })();
    } else if (cmd.startsWith('heapsnapshot ')) {
      void (async () => {
        for (let i = 0; i < 3; i++) {
          gc?.();
          await tick();
        }
        const file = writeHeapSnapshot(cmd.slice('heapsnapshot '.length));
        reply({ reply: 'heapsnapshot', file, conns: connections() });
      })();
    } else if (cmd === 'conns') {
      reply({ reply: 'conns', conns: connections() });
    } else if (cmd === 'exit') {
      process.exit(0);
    }
  });
  lines.on('close', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}
