// Headless Chromium as a test peer: a page server on 127.0.0.1 whose page reports back by POST, and
// a launcher that runs Debian's Chromium against it and always kills it afterwards. Shared by the
// Chromium interop tests.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';
/** How long the page gets to report back before the test gives up (only to avoid hangs). */
export const RESULT_TIMEOUT_MS = 60_000;

// ---- the test's HTTP side ----

/** Answers a request the test's own routes do not handle. */
export type Fallback = (req: IncomingMessage, res: ServerResponse) => void;

export interface PageServer {
  readonly server: Server;
  readonly port: number;
  /** The JSON the page POSTed to /result (waits for it). */
  readonly result: Promise<unknown>;
  close(): Promise<void>;
}

/**
 * An HTTP server on 127.0.0.1 and a free port: `GET /` serves `html`, `POST /result` takes the page's
 * report, anything else goes to `fallback` (default 404).
 */
export async function startPageServer(html: () => string, fallback?: Fallback): Promise<PageServer> {
  let deliver: (value: unknown) => void = () => {};
  let fail: (err: Error) => void = () => {};
  const result = new Promise<unknown>((resolve, reject) => {
    deliver = resolve;
    fail = reject;
  });
  result.catch(() => {}); // observed by whoever awaits it
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/') {
      const body = html();
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        'Cache-Control': 'no-store',
      });
      res.end(body);
      return;
    }
    if (req.method === 'POST' && path === '/result') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(204);
        res.end();
        try {
          deliver(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          fail(new Error(`the page posted invalid JSON: ${String(err)}`));
        }
      });
      return;
    }
    if (fallback !== undefined) {
      fallback(req, res);
      return;
    }
    res.writeHead(404, { 'Content-Length': 0 });
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    result,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An HTML page whose only content is an inline script, given `config` as the constant CONFIG. */
export function page(config: object, script: string): string {
  // JSON inside <script>: "<" is escaped so no "</script>" can end the element early.
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>wsmod interop</title><link rel="icon" href="data:,"></head>
<body><script>
'use strict';
const CONFIG = ${json};
${script}
</script></body></html>
`;
}

/** The page-side reporting helpers shared by both pages: `result`, `report()` (once), a page timeout. */
export const REPORTING = `
const result = { errors: [] };
let reported = false;
function report() {
  if (reported) return;
  reported = true;
  fetch('/result', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(result) })
    .catch(() => {});
}
setTimeout(() => { result.errors.push('page timeout'); report(); }, 30000);
`;

// ---- Chromium ----

/** Runs headless Chromium on `url` until the page reports (or exits, or the deadline passes). */
export async function withChromium<T>(url: string, report: Promise<T>): Promise<T> {
  assert.ok(url.startsWith('http://127.0.0.1:'), 'Chromium is only ever pointed at 127.0.0.1');
  if (!existsSync(CHROMIUM)) {
    assert.fail(
      `${CHROMIUM} not found: the Chromium interop tests need Debian's chromium package. ` +
        'Install it with `apt-get install chromium` (npm test does this when it can).',
    );
  }
  const profile = mkdtempSync(join(tmpdir(), 'wsmod-chromium-'));
  let child: ChildProcess | undefined;
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-8192);
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const proc = spawn(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        `--user-data-dir=${profile}`,
        url,
      ],
      // Its own process group, so the browser and every helper process it forks die together.
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const exited = new Promise<never>((_resolve, reject) => {
      proc.once('error', (err) => reject(new Error(`could not start ${CHROMIUM}: ${err.message}`)));
      proc.once('exit', (code, signal) =>
        reject(new Error(`Chromium exited (code ${String(code)}, signal ${String(signal)}) before the page reported.\n${output}`)),
      );
    });
    exited.catch(() => {});
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the page did not report within ${RESULT_TIMEOUT_MS} ms. Chromium output:\n${output}`)),
        RESULT_TIMEOUT_MS,
      );
    });
    return await Promise.race([report, exited, expired]);
  } finally {
    clearTimeout(timer);
    if (child !== undefined) await killGroup(child);
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

/** SIGKILLs the process group of a detached child and waits for the child to be gone. */
export async function killGroup(child: ChildProcess): Promise<void> {
  const gone = child.exitCode !== null || child.signalCode !== null;
  const exited = gone ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is already gone.
    }
  }
  if (child.pid !== undefined) await exited;
  child.stdout?.destroy();
  child.stderr?.destroy();
}
