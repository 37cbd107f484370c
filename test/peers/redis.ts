// A real redis-server (Debian's `redis-server`, which scripts/peers.mjs installs) as a child process
// on a free 127.0.0.1 port, without persistence: the backplane tests start, kill and restart it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A redis-server the test owns. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Resolves when the process has exited (after SHUTDOWN, a kill, or a crash). */
  readonly exited: Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and waits for the exit. */
  stop(): Promise<void>;
}

/** A port nobody listens on right now (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts redis-server on `port` (a free one when omitted) and resolves once it accepts connections.
 * Rejects (the test fails, it is not skipped) when redis-server is missing or exits first.
 */
export async function startRedis(port?: number): Promise<RedisServer> {
  const p = port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'wsmod-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    // --dir: nothing lands in the working folder even if something tried to save.
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'notice'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  void exited.then(() => rm(dir, { recursive: true, force: true }));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${p} not ready after 10 s:\n${output}`));
    }, 10_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`redis-server could not start (is the redis-server package installed?): ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${p} exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });
  // Keep reading, or a chatty server would block on a full pipe.
  child.stdout?.resume();
  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
