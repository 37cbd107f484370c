// Isolation mode `worker`: plugins in worker_threads behind createWorkerPlugin, against real hosts and
// the `ws` client. Fixture plugins live in test/fixtures/worker-*.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { isWsmodError } from '../src/errors.ts';
import { loadPlugin } from '../src/plugin/loader.ts';
import type { Worker } from 'node:worker_threads';
import { LATEST_WORKER, createWorkerPlugin, type WorkerPluginOptions, workerExecArgv } from '../src/plugin/isolation/worker.ts';
import { echoPlugin, memoryLogger, startHost, until } from './helpers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const TIMEOUT = { timeout: 60_000 };

function workerPlugin(file: string, path: string, log = memoryLogger(), extra: Partial<WorkerPluginOptions> = {}) {
  return createWorkerPlugin({ specifier: `./${file}`, baseDir: fixtures, path, log, ...extra });
}

/** A client that queues what it receives, so no message is missed between awaits. */
class Client {
  readonly ws: WebSocket;
  readonly #queue: Array<{ data: Buffer; isBinary: boolean }> = [];
  readonly #waiting: Array<(m: { data: Buffer; isBinary: boolean }) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  upgradeHeaders: IncomingMessage['headers'] = {};

  constructor(url: string, protocols: string[] = []) {
    this.ws = new WebSocket(url, protocols);
    this.ws.on('upgrade', (res) => (this.upgradeHeaders = res.headers));
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      const m = { data, isBinary };
      const w = this.#waiting.shift();
      if (w !== undefined) w(m);
      else this.#queue.push(m);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    );
  }

  static async open(url: string, protocols: string[] = []): Promise<Client> {
    const c = new Client(url, protocols);
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => resolve());
      c.ws.once('error', reject);
    });
    return c;
  }

  next(): Promise<{ data: Buffer; isBinary: boolean }> {
    const m = this.#queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  async text(): Promise<string> {
    const m = await this.next();
    assert.equal(m.isBinary, false, 'a text message');
    return m.data.toString();
  }

  async roundTrip(message: string | Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
    this.ws.send(message, { binary: typeof message !== 'string' });
    return this.next();
  }
}

/** Attempts a handshake that the server refuses; resolves with the status and body. */
function refused(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => reject(new Error('the handshake was accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
        ws.terminate();
      });
    });
  });
}

describe('worker isolation: echo', () => {
  test('text and binary round trips, session.data, onUpgrade accept/reject, subprotocol', TIMEOUT, async () => {
    // Plugin failures are logged by the plugin runtime inside the worker, through the worker plugin's logger.
    const log = memoryLogger();
    const plugin = await workerPlugin('worker-echo.ts', '/w', log);
    assert.equal(plugin.name, 'worker-echo');
    assert.deepEqual(plugin.protocols, ['echo.v2', 'echo.v1']);
    const t = await startHost([{ path: '/w', plugin }]);
    try {
      const c = await Client.open(`${t.base}/w?user=alice`, ['echo.v1', 'echo.v2']);
      assert.equal(c.ws.protocol, 'echo.v2', "the route's preference, from the plugin's protocols");
      assert.equal(c.upgradeHeaders['x-worker-plugin'], 'yes', 'accept headers from the worker');
      c.ws.send('early'); // read by the host only once the worker's async onOpen has settled
      assert.equal(await c.text(), 'welcome', 'sent by the async onOpen in the worker');
      assert.equal(await c.text(), 'early');

      const hello = await c.roundTrip('héllo wörld');
      assert.equal(hello.isBinary, false);
      assert.equal(hello.data.toString(), 'héllo wörld');
      for (const size of [0, 125, 65536, 1024 * 1024]) {
        const payload = randomBytes(size);
        const echoed = await c.roundTrip(payload);
        assert.equal(echoed.isBinary, true, `${size} bytes come back binary`);
        assert.equal(echoed.data.length, size);
        assert.ok(echoed.data.equals(payload), `${size} bytes intact`);
      }
      const stats = JSON.parse(await (c.ws.send('stats'), c.text())) as Record<string, unknown>;
      assert.deepEqual(stats, {
        user: 'alice',
        count: 7,
        protocol: 'echo.v2',
        path: '/w',
        query: 'alice',
        origin: null,
        inWorker: true,
        isBuffer: true,
        readyState: 'open',
      });

      // A second session has its own data.
      const d = await Client.open(`${t.base}/w?user=dave`, ['echo.v1']);
      assert.equal(d.ws.protocol, 'echo.v1');
      assert.equal(await d.text(), 'welcome');
      d.ws.send('stats');
      const dStats = JSON.parse(await d.text()) as { user: string; count: number };
      assert.equal(dStats.user, 'dave');
      assert.equal(dStats.count, 1);

      // Message order per session is preserved, text and binary interleaved, both ways.
      const n = 300;
      for (let i = 0; i < n; i++) c.ws.send(i % 3 === 0 ? Buffer.from(`b${i}`) : `t${i}`, { binary: i % 3 === 0 });
      for (let i = 0; i < n; i++) {
        const m = await c.next();
        assert.equal(m.isBinary, i % 3 === 0);
        assert.equal(m.data.toString(), i % 3 === 0 ? `b${i}` : `t${i}`);
      }

      const denied = await refused(`${t.base}/w?deny=1`);
      assert.equal(denied.status, 403);
      assert.match(denied.body, /denied by the worker plugin/);

      // A throw in the worker's onUpgrade is a 500; in its onOpen, 1011 for that session only.
      const failedUpgrade = await refused(`${t.base}/w?fail=upgrade`);
      assert.equal(failedUpgrade.status, 500);
      const failedOpen = new Client(`${t.base}/w?fail=open`);
      assert.equal((await failedOpen.closed).code, 1011);
      const hooks = log.entries.filter((e) => e.level === 'error').map((e) => (e.obj as { hook?: string }).hook);
      assert.deepEqual(hooks, ['onUpgrade', 'onOpen']);
      assert.equal((await c.roundTrip('still open')).data.toString(), 'still open');

      c.ws.close(1000, 'bye');
      assert.equal((await c.closed).code, 1000);
      d.ws.close();
      await d.closed;
    } finally {
      await t.close();
    }
  });

  test('a plugin factory receives the route options and context inside the worker; its log reaches the host', TIMEOUT, async () => {
    const log = memoryLogger();
    const plugin = await workerPlugin('worker-factory.ts', '/factory', log, { options: { greeting: 'hej', list: [1, 2, 3] } });
    const t = await startHost([{ path: '/factory', plugin }]);
    try {
      const c = await Client.open(`${t.base}/factory`);
      const reply = JSON.parse((await c.roundTrip('ping?')).data.toString()) as Record<string, unknown>;
      assert.deepEqual(reply, { greeting: 'hej', list: [1, 2, 3], path: '/factory', inWorker: true, got: 'ping?' });
      const line = log.entries.find((e) => e.msg === 'factory called in the worker');
      assert.ok(line, 'context.log in the worker reached the host logger');
      assert.equal(line.level, 'info');
      assert.deepEqual(line.obj, { fixture: 'worker-factory', path: '/factory' });
      c.ws.close();
      await c.closed;
    } finally {
      await t.close();
    }
  });
});

describe('worker isolation: a busy or failing plugin', () => {
  test('a worker busy-looping for 5 s does not stop an inline route from echoing', TIMEOUT, async () => {
    const plugin = await workerPlugin('worker-busy.ts', '/busy');
    const t = await startHost([
      { path: '/busy', plugin },
      { path: '/echo', plugin: echoPlugin },
    ]);
    try {
      const busy = await Client.open(`${t.base}/busy`);
      const inline = await Client.open(`${t.base}/echo`);
      const order: string[] = [];
      busy.ws.send('spin');
      assert.equal(await busy.text(), 'spinning', 'the worker is now spinning');
      const spun = busy.text().then((m) => order.push(m));
      const echoed = await inline.roundTrip('still here');
      order.push('inline echo');
      assert.equal(echoed.data.toString(), 'still here');
      await spun;
      assert.deepEqual(order, ['inline echo', 'spun'], 'the inline echo completed while the worker was spinning');
      busy.ws.close();
      inline.ws.close();
      await Promise.all([busy.closed, inline.closed]);
    } finally {
      await t.close();
    }
  });

  for (const how of ['crash'] as const) {
    test('a worker that dies (process.exit): its sessions get 1011, others keep serving, it restarts', TIMEOUT, async () => {
      const plugin = await workerPlugin('worker-crash.ts', '/crash', memoryLogger(), { restartDelay: 50 });
      const other = await workerPlugin('worker-crash.ts', '/other');
      const t = await startHost([
        { path: '/crash', plugin },
        { path: '/other', plugin: other },
        { path: '/echo', plugin: echoPlugin },
      ]);
      try {
        const a = await Client.open(`${t.base}/crash`);
        const b = await Client.open(`${t.base}/crash`);
        const o = await Client.open(`${t.base}/other`);
        const inline = await Client.open(`${t.base}/echo`);
        const firstThread = (await a.roundTrip('thread')).data.toString();
        assert.equal((await b.roundTrip('before')).data.toString(), 'before');

        a.ws.send(how);
        assert.equal((await a.closed).code, 1011);
        assert.equal((await b.closed).code, 1011, 'every session of the crashed worker');

        assert.equal(inline.ws.readyState, WebSocket.OPEN, 'the inline session stays open');
        assert.equal((await inline.roundTrip('inline ok')).data.toString(), 'inline ok');
        assert.equal(o.ws.readyState, WebSocket.OPEN, "another worker route's session stays open");
        assert.equal((await o.roundTrip('other ok')).data.toString(), 'other ok');

        // A new connection waits for the restarted worker and is served by it.
        const c = await Client.open(`${t.base}/crash`);
        const secondThread = (await c.roundTrip('thread')).data.toString();
        assert.notEqual(secondThread, firstThread, 'a new worker');
        assert.equal((await c.roundTrip('after restart')).data.toString(), 'after restart');
        c.ws.close();
        o.ws.close();
        inline.ws.close();
        await Promise.all([c.closed, o.closed, inline.closed]);
      } finally {
        await t.close();
      }
    });
  }

  test('the crash is logged and the restart is reported', TIMEOUT, async () => {
    const log = memoryLogger();
    const plugin = await workerPlugin('worker-crash.ts', '/crash', log, { restartDelay: 10 });
    const t = await startHost([{ path: '/crash', plugin }]);
    try {
      const a = await Client.open(`${t.base}/crash`);
      a.ws.send('crash');
      assert.equal((await a.closed).code, 1011);
      await until(() => log.entries.some((e) => e.msg?.includes('worker restarted') === true), 10_000, 'the restart');
      const crash = log.entries.find((e) => e.level === 'error');
      assert.ok(crash, 'an error line');
      assert.match(crash.msg ?? '', /worker-crash/);
      assert.equal((crash.obj as { exitCode?: number }).exitCode, 1);
      assert.equal((crash.obj as { sessions?: number }).sessions, 1);
    } finally {
      await t.close();
    }
  });

  test('upgrades wait for a restarting worker, get 503 while restarts fail, and are served once one succeeds', TIMEOUT, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsmod-worker-'));
    const control = join(dir, 'control');
    writeFileSync(control, 'ok');
    const log = memoryLogger();
    try {
      const plugin = await workerPlugin('worker-flaky.ts', '/flaky', log, { options: { control }, restartDelay: 50 });
      const t = await startHost([{ path: '/flaky', plugin }]);
      try {
        const a = await Client.open(`${t.base}/flaky`);
        assert.equal((await a.roundTrip('one')).data.toString(), 'one');
        writeFileSync(control, 'fail'); // the running worker is loaded already; its restarts will fail
        a.ws.send('crash');
        assert.equal((await a.closed).code, 1011);
        const r = await refused(`${t.base}/flaky`);
        assert.equal(r.status, 503);
        assert.match(r.body, /plugin worker/);
        await until(() => log.entries.some((e) => e.msg?.includes('could not be restarted') === true), 10_000, 'a failed restart logged');
        const failed = log.entries.find((e) => e.msg?.includes('could not be restarted') === true);
        assert.ok(isWsmodError((failed?.obj as { err?: unknown }).err, 'WSMOD_ERR_PLUGIN_INVALID'));

        writeFileSync(control, 'ok');
        // The next attempt (the delay doubles while restarts fail, up to 5 s) succeeds; this upgrade
        // either waits for it or, arriving just as an attempt fails, is refused and retried.
        let b: Client | undefined;
        for (let attempt = 0; b === undefined; attempt++) {
          try {
            b = await Client.open(`${t.base}/flaky`);
          } catch (err) {
            if (attempt > 20) throw err;
          }
        }
        assert.equal((await b.roundTrip('back')).data.toString(), 'back');
        b.ws.close();
        await b.closed;
      } finally {
        await t.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a plugin that throws or rejects in onMessage: only that session gets 1011, the worker keeps serving', TIMEOUT, async () => {
    const log = memoryLogger();
    const plugin = await workerPlugin('worker-crash.ts', '/crash', log);
    const t = await startHost([{ path: '/crash', plugin }]);
    try {
      const a = await Client.open(`${t.base}/crash`);
      const b = await Client.open(`${t.base}/crash`);
      const c = await Client.open(`${t.base}/crash`);
      const thread = (await b.roundTrip('thread')).data.toString();

      a.ws.send('throw');
      assert.equal((await a.closed).code, 1011);
      c.ws.send('reject');
      assert.equal((await c.closed).code, 1011);

      assert.equal(b.ws.readyState, WebSocket.OPEN);
      assert.equal((await b.roundTrip('still echoing')).data.toString(), 'still echoing');
      assert.equal((await b.roundTrip('thread')).data.toString(), thread, 'the same worker');
      const d = await Client.open(`${t.base}/crash`);
      assert.equal((await d.roundTrip('new session')).data.toString(), 'new session');

      const errors = log.entries.filter((e) => e.level === 'error');
      assert.equal(errors.length, 2);
      for (const e of errors) {
        assert.equal((e.obj as { hook?: string }).hook, 'onMessage');
        assert.equal((e.obj as { plugin?: string }).plugin, 'worker-crash');
        assert.ok((e.obj as { err?: unknown }).err instanceof Error);
      }
      assert.match(String((errors[0]?.obj as { err: Error }).err.message), /thrown by onMessage/);
      b.ws.close();
      d.ws.close();
      await Promise.all([b.closed, d.closed]);
    } finally {
      await t.close();
    }
  });
});

describe('worker isolation: loading and shutdown', () => {
  test('a missing file (WSMOD_ERR_PLUGIN_LOAD), an invalid plugin or refused options (WSMOD_ERR_PLUGIN_INVALID) reject naming the file', TIMEOUT, async () => {
    const cases: Array<{ file: string; options?: unknown; problem: RegExp }> = [
      { file: 'worker-missing.ts', problem: /no such file/ },
      { file: 'worker-invalid.ts', problem: /"onMessage" must be a function/ },
      { file: 'worker-factory.ts', options: { nope: true }, problem: /refused its options: options\.greeting must be a string/ },
    ];
    for (const { file, options, problem } of cases) {
      const where = join(fixtures, file);
      let workerError: unknown;
      await assert.rejects(
        workerPlugin(file, '/x', memoryLogger(), options === undefined ? {} : { options }),
        (err: unknown) => {
          workerError = err;
          return true;
        },
      );
      assert.ok(isWsmodError(workerError, file === 'worker-missing.ts' ? 'WSMOD_ERR_PLUGIN_LOAD' : 'WSMOD_ERR_PLUGIN_INVALID'), `${file}: ${String(workerError)}`);
      assert.ok(workerError.message.includes(where), `the message names ${where}: ${workerError.message}`);
      assert.match(workerError.message, problem);
      // The same code and message as loading it inline.
      let inlineError: unknown;
      await assert.rejects(loadPlugin(`./${file}`, { baseDir: fixtures, ...(options !== undefined && { options }) }), (err: unknown) => {
        inlineError = err;
        return true;
      });
      assert.ok(isWsmodError(inlineError));
      assert.equal(workerError.code, inlineError.code);
      assert.equal(workerError.message, inlineError.message);
    }
    // Options that cannot cross the thread boundary.
    await assert.rejects(workerPlugin('worker-factory.ts', '/x', memoryLogger(), { options: { greeting: 'x', fn: () => 1 } }), (err: unknown) => {
      assert.ok(isWsmodError(err, 'WSMOD_ERR_PLUGIN_INVALID'));
      assert.match(err.message, /worker-factory\.ts: the options must be structured-cloneable/);
      return true;
    });
  });

  test('restartDelay is checked like every other option: key, expected, found, what to write', async () => {
    for (const bad of [-5, 1.5, '100ms', Number.NaN]) {
      await assert.rejects(workerPlugin('worker-echo.ts', '/w', memoryLogger(), { restartDelay: bad as number }), (err: unknown) => {
        assert.ok(isWsmodError(err, 'WSMOD_ERR_INVALID_OPTION'));
        assert.match(err.message, /worker plugin \/w: restartDelay: expected a duration ≥ 0 ms, found /);
        return true;
      });
    }
  });

  test('host.close() runs onShutdown in the worker, then terminates the worker', TIMEOUT, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsmod-worker-'));
    const marker = join(dir, 'marker');
    const heartbeat = join(dir, 'heartbeat');
    try {
      const plugin = await workerPlugin('worker-shutdown.ts', '/s', memoryLogger(), { options: { marker, heartbeat } });
      const t = await startHost([{ path: '/s', plugin }]);
      const c = await Client.open(`${t.base}/s`);
      assert.equal((await c.roundTrip('up')).data.toString(), 'up');
      await until(() => existsSync(heartbeat), 5000, 'the worker heartbeat');
      assert.equal(existsSync(marker), false);
      const worker = (plugin as unknown as Record<symbol, () => Worker | undefined>)[LATEST_WORKER]!();
      assert.ok(worker !== undefined && worker.threadId > 0, 'a running worker');
      await t.close();
      assert.equal((await c.closed).code, 1001);
      assert.match(readFileSync(marker, 'utf8'), /^shutdown in thread \d+$/, 'onShutdown ran (and was awaited) in the worker');
      assert.equal(worker.threadId, -1, 'the worker was terminated once close() resolved');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a worker inherits the host's Node options except those about the main program", () => {
    assert.deepEqual(
      workerExecArgv([
        '--import', 'tsx', '--input-type=module', '-e', 'code', '--enable-source-maps', '--test-reporter', 'tap', '--test',
        '--conditions=dev', '--stack-trace-limit=10', '--node-snapshot', '-r', 'x.cjs', '--experimental-vm-modules',
      ]),
      ['--import', 'tsx', '--enable-source-maps', '--conditions=dev', '-r', 'x.cjs', '--experimental-vm-modules'],
    );
  });

  test('from the built dist/ (no tsx in the process): a worker plugin loads a TypeScript plugin and echoes', TIMEOUT, async () => {
    const built = join(root, 'dist/plugin/isolation/worker.js');
    assert.ok(existsSync(built), `${built} is missing: run \`npm run build\` first (npm test does)`);
    const script = `
      import WebSocket from 'ws';
      import { createHost } from './dist/index.js';
      import { createWorkerPlugin } from './dist/plugin/isolation/worker.js';
      const log = { debug() {}, info() {}, warn() {}, error(obj, msg) { console.error(msg, obj); } };
      const plugin = await createWorkerPlugin({ specifier: './test/fixtures/worker-echo.ts', baseDir: process.cwd(), path: '/w', log });
      const host = createHost({ routes: [{ path: '/w', plugin }], logger: log });
      const { port } = await host.listen(0, '127.0.0.1');
      const ws = new WebSocket('ws://127.0.0.1:' + port + '/w?user=dist', ['echo.v1']);
      const got = [];
      ws.on('message', (data) => {
        got.push(data.toString());
        if (got.length === 2) ws.send('stats');
        if (got.length === 3) ws.close();
      });
      ws.on('open', () => ws.send('from dist'));
      await new Promise((resolve) => ws.on('close', resolve));
      await host.close({ deadline: 2000 });
      console.log(JSON.stringify({ flags: process.execArgv.filter((a) => a.startsWith('-')), got }));
    `;
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(killer);
    assert.equal(code, 0, `the child exits by itself once the host is closed; stderr: ${err}`);
    const result = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { flags: string[]; got: string[] };
    assert.deepEqual(result.flags, ['--input-type=module', '-e'], 'no TypeScript loader in the host process');
    assert.equal(result.got[0], 'welcome');
    assert.equal(result.got[1], 'from dist');
    const stats = JSON.parse(result.got[2] ?? '{}') as Record<string, unknown>;
    assert.equal(stats['user'], 'dist');
    assert.equal(stats['inWorker'], true);
    assert.equal(stats['protocol'], 'echo.v1');
  });
});
