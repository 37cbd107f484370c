// Isolation mode `process` (websocketd-compatible): real hosts, real processes, the `ws` client.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createProcessPlugin, type ProcessPluginOptions } from '../src/plugin/isolation/process.ts';
import { memoryLogger, startHost, until } from './helpers.ts';

const examples = fileURLToPath(new URL('../examples/process/', import.meta.url));

/** A connected client that records every message and the close. */
interface Client {
  readonly ws: WebSocket;
  readonly messages: Array<{ data: Buffer; isBinary: boolean }>;
  /** The next message not yet taken, as text. */
  next(): Promise<string>;
  readonly closed: Promise<{ code: number; reason: string }>;
}

function connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const ws = new WebSocket(url, { headers });
  const messages: Array<{ data: Buffer; isBinary: boolean }> = [];
  let taken = 0;
  let wake: (() => void) | undefined;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    messages.push({ data, isBinary });
    wake?.();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code: number, reason: Buffer) => {
      resolve({ code, reason: reason.toString() });
      wake?.();
    }),
  );
  const next = async (): Promise<string> => {
    while (messages.length <= taken) {
      if (ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed before message ${taken + 1}`);
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    return messages[taken++]!.data.toString();
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, next, closed }));
    ws.once('error', reject);
  });
}

/** Opens a connection that must be refused; resolves with the HTTP status. */
function refusedStatus(url: string): Promise<number> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('the connection was accepted')));
    ws.on('error', () => {});
  });
}

function proc(path: string, log: ProcessPluginOptions['log'], rest: Omit<ProcessPluginOptions, 'path' | 'log' | 'baseDir'> & { baseDir?: string }) {
  return createProcessPlugin({ baseDir: examples, path, log, ...rest });
}

describe('the C example (count.c)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wsmod-count-'));
    const r = spawnSync('cc', ['-O2', '-o', join(dir, 'count'), join(examples, 'count.c')], { encoding: 'utf8' });
    if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      assert.fail('cc (a C compiler) is missing: install one (Debian: apt-get install gcc) to run this test');
    }
    assert.equal(r.status, 0, `cc failed to compile examples/process/count.c:\n${r.stderr}`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('greets, echoes with a counter, and exits on EOF when the client closes', async () => {
    const log = memoryLogger();
    // A long killGrace: only stdin EOF can end the process within the test.
    const plugin = proc('/count', log, { command: ['./count'], baseDir: dir, killGrace: 10_000 });
    const t = await startHost([{ path: '/count', plugin }], { logger: log });
    try {
      const c = await connect(`${t.base}/count`);
      assert.equal(await c.next(), 'hello 127.0.0.1');
      c.ws.send('hello');
      assert.equal(await c.next(), '1: hello');
      c.ws.send('world');
      assert.equal(await c.next(), '2: world');
      c.ws.send('');
      assert.equal(await c.next(), '3: ');
      assert.equal(plugin.processes, 1);
      c.ws.close(1000);
      assert.equal((await c.closed).code, 1000);
      await until(() => plugin.processes === 0, 5000, 'the process to exit on EOF');
      // It exited by itself, with status 0: no signal was sent.
      const ended = log.entries.find((e) => e.msg === 'process ended');
      assert.deepEqual([(ended?.obj as { code?: unknown }).code, (ended?.obj as { signal?: unknown }).signal], [0, null]);
    } finally {
      await t.close();
    }
  });
});

test('the script example (greeter.py) in line mode', async () => {
  const log = memoryLogger();
  const plugin = proc('/greet', log, { command: ['python3', 'greeter.py'] });
  const t = await startHost([{ path: '/greet', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/greet`);
    assert.equal(await c.next(), 'hi');
    c.ws.send('hello');
    assert.equal(await c.next(), 'olleh');
    c.ws.send('wsmod ✓');
    assert.equal(await c.next(), '✓ domsw');
    // A message holding a newline is written as it is: two lines in, two answers out.
    c.ws.send('ab\ncd');
    assert.equal(await c.next(), 'ba');
    assert.equal(await c.next(), 'dc');
    c.ws.close();
    await c.closed;
    await until(() => plugin.processes === 0, 5000, 'the script to exit');
  } finally {
    await t.close();
  }
});

test('the environment: CGI variables and headers, and nothing else of the host', async () => {
  process.env['WSMOD_SECRET_TEST'] = '1';
  const log = memoryLogger();
  const plugin = proc('/env', log, {
    command:
      'echo "$REMOTE_ADDR|$QUERY_STRING|$PATH_INFO|$HTTP_X_TEST|$SERVER_NAME|$SERVER_PORT|$REQUEST_METHOD|$SCRIPT_NAME|$REQUEST_URI|$GATEWAY_INTERFACE|$SERVER_SOFTWARE|$WSMOD_OPTIONS|$EXTRA|${WSMOD_SECRET_TEST-absent}"; ' +
      'echo "$REMOTE_PORT|$REMOTE_HOST|$UNIQUE_ID|$SERVER_PROTOCOL"; env',
    options: { greeting: 'x' },
    env: { EXTRA: 'extra' },
  });
  const t = await startHost([{ path: '/env', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/env?a=1&b=2`, { 'X-Test': 'yes' });
    const { code } = await c.closed;
    assert.equal(code, 1000);
    const lines = c.messages.map((m) => m.data.toString());
    assert.equal(
      lines[0],
      `127.0.0.1|a=1&b=2|/env|yes|127.0.0.1|${t.port}|GET|/env|/env?a=1&b=2|websocketd-CGI/0.1|wsmod|{"greeting":"x"}|extra|absent`,
    );
    const [remotePort, remoteHost, uniqueId, protocol] = (lines[1] ?? '').split('|');
    assert.match(remotePort ?? '', /^[1-9]\d*$/);
    assert.equal(remoteHost, '127.0.0.1');
    assert.match(uniqueId ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(protocol, 'HTTP/1.1');
    const names = lines.slice(2).map((l) => l.split('=')[0]);
    assert.ok(names.includes('HTTP_SEC_WEBSOCKET_KEY'), 'every request header is passed');
    assert.ok(!names.includes('WSMOD_SECRET_TEST'), 'the host environment does not leak');
    if (process.env['HOME'] !== undefined) assert.ok(!names.includes('HOME'), 'HOME does not leak');
  } finally {
    delete process.env['WSMOD_SECRET_TEST'];
    await t.close();
  }
});

test("SERVER_PORT is the listener's port, whatever the Host header says; no HTTPS on a plain listener", async () => {
  const log = memoryLogger();
  const plugin = proc('/port', log, { command: 'echo "$SERVER_NAME|$SERVER_PORT|${HTTPS-unset}"' });
  const t = await startHost([{ path: '/port', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/port`, { Host: 'example.test:99999999' });
    assert.equal((await c.closed).code, 1000);
    assert.equal(c.messages[0]?.data.toString(), `example.test|${t.port}|unset`);
  } finally {
    await t.close();
  }
});

test('process exit closes the WebSocket: 1000 on status 0, 1011 on another status or a signal', async () => {
  const log = memoryLogger();
  const t = await startHost([
    { path: '/ok', plugin: proc('/ok', log, { command: 'echo done; exit 0' }) },
    { path: '/fail', plugin: proc('/fail', log, { command: 'echo bad; exit 3' }) },
    { path: '/signal', plugin: proc('/signal', log, { command: 'echo x; kill -KILL $$' }) },
  ], { logger: log });
  try {
    const ok = await connect(`${t.base}/ok`);
    assert.equal(await ok.next(), 'done');
    assert.equal((await ok.closed).code, 1000);

    const fail = await connect(`${t.base}/fail`);
    assert.equal(await fail.next(), 'bad');
    assert.equal((await fail.closed).code, 1011);
    assert.ok(log.entries.some((e) => e.level === 'error' && (e.obj as { code?: unknown }).code === 3));

    const sig = await connect(`${t.base}/signal`);
    assert.equal(await sig.next(), 'x');
    assert.equal((await sig.closed).code, 1011);
    assert.ok(log.entries.some((e) => e.level === 'error' && (e.obj as { signal?: unknown }).signal === 'SIGKILL'));
  } finally {
    await t.close();
  }
});

test('a process that ignores EOF and SIGTERM is SIGKILLed after the client leaves', async () => {
  const log = memoryLogger();
  const plugin = proc('/stubborn', log, {
    command: "echo $$; trap '' TERM; while true; do sleep 0.1; done",
    killGrace: 200,
  });
  const t = await startHost([{ path: '/stubborn', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/stubborn`);
    const pid = Number(await c.next());
    assert.ok(Number.isInteger(pid) && pid > 0);
    process.kill(pid, 0); // alive
    c.ws.close();
    await c.closed;
    await until(() => plugin.processes === 0, 10_000, 'the process to be killed');
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    assert.ok(log.entries.some((e) => (e.obj as { signal?: unknown }).signal === 'SIGTERM'), 'SIGTERM came first');
    assert.ok(log.entries.some((e) => e.level === 'warn' && (e.obj as { signal?: unknown }).signal === 'SIGKILL'), 'then SIGKILL');
  } finally {
    await t.close();
  }
});

test('maxProcesses: over the cap the upgrade is refused with 503, and a slot frees when a process ends', async () => {
  const log = memoryLogger();
  const plugin = proc('/cat', log, { command: ['cat'], maxProcesses: 2 });
  const t = await startHost([{ path: '/cat', plugin }], { logger: log });
  try {
    const a = await connect(`${t.base}/cat`);
    const b = await connect(`${t.base}/cat`);
    assert.equal(plugin.processes, 2);
    assert.equal(await refusedStatus(`${t.base}/cat`), 503);
    a.ws.close();
    await a.closed;
    await until(() => plugin.processes === 1, 5000, 'a slot to free');
    const c = await connect(`${t.base}/cat`);
    c.ws.send('still works');
    assert.equal(await c.next(), 'still works');
    b.ws.close();
    c.ws.close();
    await Promise.all([b.closed, c.closed]);
  } finally {
    await t.close();
  }
});

test('binary mode: cat echoes 100 KB of random bytes intact', async () => {
  const log = memoryLogger();
  const plugin = proc('/bin', log, { command: ['cat'], binary: true });
  const t = await startHost([{ path: '/bin', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/bin`);
    const payload = randomBytes(100 * 1024);
    c.ws.send(payload, { binary: true });
    const total = () => c.messages.reduce((n, m) => n + m.data.length, 0);
    await until(() => total() >= payload.length, 5000, 'the echo');
    assert.ok(c.messages.every((m) => m.isBinary));
    assert.ok(Buffer.concat(c.messages.map((m) => m.data)).equals(payload));
    c.ws.close();
    await c.closed;
  } finally {
    await t.close();
  }
});

test('stderr lines go to the host log (warn, with the route path and pid)', async () => {
  const log = memoryLogger();
  const plugin = proc('/err', log, { command: 'echo oops >&2; echo "second line" >&2; echo ok' });
  const t = await startHost([{ path: '/err', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/err`);
    assert.equal(await c.next(), 'ok');
    assert.equal((await c.closed).code, 1000);
    const stderr = () => log.entries.filter((e) => e.level === 'warn' && 'stderr' in e.obj).map((e) => e.obj as { stderr: string; path: string; pid: number });
    await until(() => stderr().length === 2, 5000, 'the stderr lines');
    assert.deepEqual(
      stderr().map((e) => e.stderr),
      ['oops', 'second line'],
    );
    for (const e of stderr()) {
      assert.equal(e.path, '/err');
      assert.ok(Number.isInteger(e.pid) && e.pid > 0);
    }
  } finally {
    await t.close();
  }
});

test('a program that cannot be started closes the session with 1011 and is logged', async () => {
  const log = memoryLogger();
  const plugin = proc('/missing', log, { command: ['./does-not-exist'] });
  const t = await startHost([{ path: '/missing', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/missing`);
    assert.equal((await c.closed).code, 1011);
    assert.ok(log.entries.some((e) => e.level === 'error' && (e.obj as { code?: unknown }).code === 'ENOENT'));
    await until(() => plugin.processes === 0, 5000, 'the count to settle');
  } finally {
    await t.close();
  }
});

test('a process that does not read its input: the session is closed with 1008 past maxInputBuffer', async () => {
  const log = memoryLogger();
  const plugin = proc('/deaf', log, { command: 'exec sleep 30', maxInputBuffer: 1024, killGrace: 100 });
  const t = await startHost([{ path: '/deaf', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/deaf`);
    // More than the pipe holds (64 KiB on Linux) plus the bound.
    for (let i = 0; i < 8; i++) c.ws.send(Buffer.alloc(64 * 1024, 0x61), { binary: false });
    assert.equal((await c.closed).code, 1008);
    await until(() => plugin.processes === 0, 5000, 'the process to be terminated');
  } finally {
    await t.close();
  }
});

describe('backpressure', () => {
  test('line mode: 1,000,000 lines from a fast producer to a slow client arrive complete and in order', async () => {
    const log = memoryLogger();
    const plugin = proc('/seq', log, { command: ['seq', '1', '1000000'] });
    // The default outbound bound (1 MiB): sends come back 'queued' before any would be dropped.
    const t = await startHost([{ path: '/seq', plugin }], { logger: log });
    try {
      const c = await connect(`${t.base}/seq`);
      c.ws.pause(); // stop reading for a while: the kernel buffers fill, then the session's queue
      await new Promise((r) => setTimeout(r, 300));
      c.ws.resume();
      assert.equal((await c.closed).code, 1000);
      assert.equal(c.messages.length, 1_000_000);
      for (let i = 0; i < c.messages.length; i++) {
        if (c.messages[i]!.data.toString() !== String(i + 1)) assert.fail(`message ${i + 1} is ${c.messages[i]!.data.toString()}`);
      }
    } finally {
      await t.close();
    }
  });

  test('binary mode: a client that stops reading loses nothing; the producer waits for it', async () => {
    const log = memoryLogger();
    const size = 16 * 1024 * 1024;
    const plugin = proc('/zeros', log, { command: `head -c ${size} /dev/zero`, binary: true });
    // A small outbound bound: without stdout pausing, messages would be dropped.
    const t = await startHost([{ path: '/zeros', plugin, maxBackpressure: 64 * 1024, maxMessageSize: 1024 * 1024 }], { logger: log });
    try {
      const c = await connect(`${t.base}/zeros`);
      c.ws.pause(); // stop reading: the kernel buffers fill, then the session's queue
      await new Promise((r) => setTimeout(r, 300));
      c.ws.resume();
      assert.equal((await c.closed).code, 1000);
      const total = c.messages.reduce((n, m) => n + m.data.length, 0);
      assert.equal(total, size);
      assert.ok(c.messages.every((m) => m.isBinary && m.data.every((b) => b === 0)));
    } finally {
      await t.close();
    }
  });
});

test('host shutdown ends the processes and waits for them', async () => {
  const log = memoryLogger();
  const plugin = proc('/cat', log, { command: ['cat'] });
  const t = await startHost([{ path: '/cat', plugin }], { logger: log });
  const c = await connect(`${t.base}/cat`);
  c.ws.send('x');
  assert.equal(await c.next(), 'x');
  assert.equal(plugin.processes, 1);
  await t.close();
  assert.equal((await c.closed).code, 1001);
  assert.equal(plugin.processes, 0);
});

test("the plugin's onShutdown (a reload) ends live processes; their sessions close with 1001", async () => {
  const log = memoryLogger();
  const plugin = proc('/cat', log, { command: ['cat'] });
  const t = await startHost([{ path: '/cat', plugin }], { logger: log });
  try {
    const c = await connect(`${t.base}/cat`);
    c.ws.send('y');
    assert.equal(await c.next(), 'y');
    await plugin.onShutdown?.();
    assert.equal(plugin.processes, 0);
    assert.equal((await c.closed).code, 1001);
    assert.equal(await refusedStatus(`${t.base}/cat`), 503);
  } finally {
    await t.close();
  }
});
