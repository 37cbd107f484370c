// The connection's life against real clients: keepalive (dead vs idle peers), fragmentation at scale,
// plugin failures, backpressure, write coalescing, the closing handshake and graceful shutdown.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, mock, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createHost } from '../src/host/host.ts';
import { isWsmodError } from '../src/errors.ts';
import { definePlugin, type SendResult } from '../src/plugin/api.ts';
import { closeCodeOf, echoPlugin, memoryLogger, parseServerFrames, rawClient, recordingPlugin, startHost, until } from './helpers.ts';

function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Resolves at the `count`th ping from the server; rejects if the connection closes first. */
function pings(ws: WebSocket, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const onClose = (code: number) => reject(new Error(`closed (${code}) after ${seen} pings, waiting for ${count}`));
    const onPing = () => {
      if (++seen < count) return;
      ws.off('ping', onPing);
      ws.off('close', onClose);
      resolve();
    };
    ws.on('ping', onPing);
    ws.once('close', onClose);
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

describe('keepalive', () => {
  test('a peer that stops answering pings is closed; the plugin hears 1006', async () => {
    const rec = recordingPlugin();
    const t = await startHost([{ path: '/echo', plugin: rec.plugin, idleTimeout: 200, pongTimeout: 200 }]);
    try {
      const c = await rawClient(t.port); // never reads frames, never answers a ping
      const bytes = await c.closed();
      const frames = parseServerFrames(bytes);
      assert.ok(frames.some((fr) => fr.opcode === 0x9), 'the server pinged first');
      await until(() => rec.closes.length === 1);
      assert.equal(rec.closes[0]?.code, 1006);
    } finally {
      await t.close();
    }
  });

  test('an idle peer that answers pings stays open and still echoes', async () => {
    const t = await startHost([{ path: '/echo', plugin: echoPlugin, idleTimeout: 100, pongTimeout: 100 }]);
    try {
      const ws = await open(`${t.base}/echo`);
      // ws answers every ping. A third ping means the connection outlived two pong deadlines: a server
      // that did not count the pongs would have closed it after the first (the wait fails on 'close').
      await pings(ws, 3);
      assert.equal(ws.readyState, WebSocket.OPEN);
      ws.send('alive');
      const [data] = (await once(ws, 'message')) as [Buffer];
      assert.equal(data.toString(), 'alive');
      ws.close();
    } finally {
      await t.close();
    }
  });
});

test('a 1 MiB message in one-byte fragments is echoed intact', async () => {
  const t = await startHost();
  try {
    const c = await rawClient(t.port);
    const size = 1024 * 1024;
    const message = randomBytes(size);
    // 7 bytes per fragment: header, length|mask bit, 4-byte mask key, 1 payload byte (mask key 0x11223344).
    const wire = Buffer.alloc(size * 7);
    const key = [0x11, 0x22, 0x33, 0x44];
    for (let i = 0; i < size; i++) {
      const o = i * 7;
      wire[o] = (i === size - 1 ? 0x80 : 0) | (i === 0 ? 0x2 : 0x0);
      wire[o + 1] = 0x81;
      wire[o + 2] = key[0]!;
      wire[o + 3] = key[1]!;
      wire[o + 4] = key[2]!;
      wire[o + 5] = key[3]!;
      wire[o + 6] = message[i]! ^ key[0]!;
    }
    const received: Buffer[] = [];
    let total = 0;
    const got = new Promise<Buffer>((resolve) =>
      c.socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        total += chunk.length;
        if (total >= size + 10) resolve(Buffer.concat(received));
      }),
    );
    c.write(wire);
    const frames = parseServerFrames(await got);
    assert.equal(frames[0]?.opcode, 0x2);
    assert.ok(frames[0]?.payload.equals(message), 'the echoed message matches');
    c.socket.destroy();
  } finally {
    await t.close();
  }
});

describe('plugin failures', () => {
  test('a plugin that throws or rejects closes only its own session with 1011, and is logged', async () => {
    const fragile = definePlugin({
      name: 'fragile',
      apiVersion: 1,
      async onMessage(session, data) {
        const text = data.toString();
        if (text === 'throw') throw new Error('sync failure');
        if (text === 'reject') {
          await Promise.resolve();
          throw new Error('async failure');
        }
        session.send(text);
      },
    });
    const syncFragile = definePlugin({
      name: 'fragile-sync',
      apiVersion: 1,
      onMessage(session, data) {
        if (data.toString() === 'throw') throw new Error('sync failure');
        session.send(data.toString());
      },
    });
    const t = await startHost([
      { path: '/fragile', plugin: fragile },
      { path: '/sync', plugin: syncFragile },
    ]);
    try {
      const bystander = await open(`${t.base}/sync`);
      for (const [path, trigger] of [
        ['/sync', 'throw'],
        ['/fragile', 'reject'],
      ] as const) {
        const victim = await open(`${t.base}${path}`);
        const done = closed(victim);
        victim.send(trigger);
        assert.equal((await done).code, 1011);
      }
      assert.equal(t.log.entries.filter((e) => e.level === 'error').length, 2);
      bystander.send('still serving');
      const [data] = (await once(bystander, 'message')) as [Buffer];
      assert.equal(data.toString(), 'still serving');
      const fresh = await open(`${t.base}/sync`);
      fresh.send('new ones too');
      assert.equal(((await once(fresh, 'message')) as [Buffer])[0].toString(), 'new ones too');
      fresh.close();
      bystander.close();
    } finally {
      await t.close();
    }
  });

  test('an async onOpen settles before the first onMessage', async () => {
    let openDone: () => void = () => {};
    const gate = new Promise<void>((resolve) => (openDone = resolve));
    const slowOpen = definePlugin<{ ready: boolean }>({
      name: 'slow-open',
      apiVersion: 1,
      async onOpen(session) {
        session.data = { ready: false };
        await gate;
        session.data.ready = true;
      },
      onMessage(session) {
        session.send(session.data.ready ? 'ready' : 'too early');
      },
    });
    const t = await startHost([{ path: '/slow', plugin: slowOpen }]);
    try {
      const ws = await open(`${t.base}/slow`);
      const reply = once(ws, 'message') as Promise<[Buffer]>;
      // onOpen finishes only once the message is in the server's receive buffer (loopback delivers it
      // within the write) and the event loop has polled since: a host that read before onOpen settled
      // would already have called onMessage.
      await new Promise<void>((resolve, reject) => ws.send('now', (err) => (err ? reject(err) : resolve())));
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
      openDone();
      const [data] = await reply;
      assert.equal(data.toString(), 'ready');
      ws.close();
    } finally {
      await t.close();
    }
  });
});

describe('backpressure', () => {
  test('send reports sent, then queued, then dropped when the peer stops reading; onDrain follows', async () => {
    const results: SendResult[] = [];
    let maxBuffered = 0;
    let drained = 0;
    let session: { send(d: Uint8Array): SendResult; bufferedAmount: number } | undefined;
    const flood = definePlugin({
      name: 'flood',
      apiVersion: 1,
      onOpen(s) {
        session = s;
      },
      onMessage() {},
      onDrain() {
        drained++;
      },
    });
    const limit = 256 * 1024;
    const t = await startHost([{ path: '/flood', plugin: flood, maxBackpressure: limit, backpressurePolicy: 'drop' }]);
    try {
      const c = await rawClient(t.port, '/flood');
      c.socket.pause(); // stop reading: the kernel buffers fill, then ours
      await until(() => session !== undefined);
      const chunk = Buffer.alloc(16 * 1024);
      for (let i = 0; i < 2000 && !results.includes('dropped'); i++) {
        results.push(session!.send(chunk));
        maxBuffered = Math.max(maxBuffered, session!.bufferedAmount);
        if (i % 16 === 0) await new Promise((r) => setImmediate(r));
      }
      assert.equal(results[0], 'sent');
      assert.ok(results.includes('queued'), 'queued once the socket backed up');
      assert.equal(results.at(-1), 'dropped');
      assert.equal(t.host.stats.messagesDropped, results.filter((r) => r === 'dropped').length, 'every drop counted');
      assert.ok(maxBuffered <= limit + chunk.length, `bounded: ${maxBuffered} <= ${limit + chunk.length}`);
      c.socket.resume();
      await until(() => drained === 1, 5000, 'onDrain');
      c.socket.destroy();
    } finally {
      await t.close();
    }
  });

  test('onDrain follows a drop even when maxBackpressure is below the socket buffer size', async () => {
    let session: { send(d: Uint8Array): SendResult } | undefined;
    let drained = 0;
    const t = await startHost([
      {
        path: '/small',
        plugin: definePlugin({ name: 'small', apiVersion: 1, onOpen: (s) => void (session = s), onMessage() {}, onDrain: () => void drained++ }),
        maxBackpressure: 1000,
        backpressurePolicy: 'drop',
      },
    ]);
    try {
      const c = await rawClient(t.port, '/small');
      c.socket.pause();
      await until(() => session !== undefined);
      const results: SendResult[] = [];
      for (let i = 0; i < 100000 && !results.includes('dropped'); i++) {
        // One send per turn: each is flushed on its own, so the drop meets bytes queued without a callback.
        results.push(session!.send(Buffer.alloc(900)));
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(results.at(-1), 'dropped');
      c.socket.resume();
      await until(() => drained === 1, 5000, 'onDrain after the drop');
      c.socket.destroy();
    } finally {
      await t.close();
    }
  });

  test('a route without backpressurePolicy takes the plugin\'s declared one, else close; a bad declaration is refused', () => {
    const base = { apiVersion: 1 as const, onMessage() {} };
    const host = createHost({
      logger: memoryLogger(),
      routes: [
        { path: '/plain', plugin: { ...base, name: 'plain' } },
        { path: '/declares', plugin: { ...base, name: 'declares', backpressurePolicy: 'drop' } },
        { path: '/overrides', plugin: { ...base, name: 'overrides', backpressurePolicy: 'drop' }, backpressurePolicy: 'close' },
      ],
    });
    assert.equal(host.routes.get('/plain')?.backpressurePolicy, 'close');
    assert.equal(host.routes.get('/declares')?.backpressurePolicy, 'drop');
    assert.equal(host.routes.get('/overrides')?.backpressurePolicy, 'close');
    assert.throws(
      () => createHost({ routes: [{ path: '/x', plugin: { ...base, name: 'x', backpressurePolicy: 'maybe' as 'drop' } }] }),
      (err: unknown) => isWsmodError(err, 'WSMOD_ERR_PLUGIN_INVALID') && /"backpressurePolicy" must be 'drop' or 'close', got "maybe"/.test(err.message),
    );
  });

  test('policy "close" (the default: no message is lost silently) closes the session with 1008 instead of dropping, and counts it', async () => {
    let result: SendResult | undefined;
    const flood = definePlugin({
      name: 'flood-close',
      apiVersion: 1,
      async onOpen(s) {
        for (let i = 0; i < 2000; i++) {
          result = s.send(Buffer.alloc(16 * 1024));
          if (result === 'dropped') return;
          if (i % 16 === 0) await new Promise((r) => setImmediate(r));
        }
      },
      onMessage() {},
    });
    const rec: number[] = [];
    // No backpressurePolicy given: the default applies.
    const t = await startHost([{ path: '/f', plugin: { ...flood, onClose: (_s, code) => void rec.push(code) }, maxBackpressure: 128 * 1024, closeTimeout: 200 }]);
    try {
      const c = await rawClient(t.port, '/f');
      c.socket.pause();
      await until(() => result === 'dropped', 10000, 'the limit');
      c.socket.resume();
      const frames = parseServerFrames(await c.closed());
      const close = frames.find((fr) => fr.opcode === 0x8);
      assert.equal(close === undefined ? 1006 : closeCodeOf(close.payload), 1008);
      await until(() => rec.length === 1);
      assert.equal(rec[0], 1008);
      assert.equal(t.host.stats.closedForBackpressure, 1);
    } finally {
      await t.close();
    }
  });
});

test('write coalescing: the frames produced by one incoming chunk leave in one write', async () => {
  const server = createServer();
  const host = createHost({ routes: [{ path: '/echo', plugin: echoPlugin }], logger: memoryLogger() });
  let writes = 0;
  let chunks = 0;
  server.on('upgrade', (req, socket: Socket, head) => {
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    const writev = (socket as unknown as { _writev?: unknown })._writev;
    socket.write = ((...args: unknown[]) => {
      writes++;
      return write(...args);
    }) as typeof socket.write;
    assert.ok(writev !== undefined);
    socket.on('data', () => chunks++);
    host.handleUpgrade(req, socket, head);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const ws = await open(`ws://127.0.0.1:${port}/echo`);
    const socket = (ws as unknown as { _socket: Socket })._socket;
    const n = 200;
    const frames: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const payload = Buffer.from(`m${i}`);
      const key = randomBytes(4);
      const f = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), key, payload.map((b, j) => b ^ key[j % 4]!)]);
      frames.push(f);
    }
    let got = 0;
    const all = new Promise<void>((resolve) => ws.on('message', () => ++got === n && resolve()));
    socket.write(Buffer.concat(frames)); // one write of 200 frames
    await all;
    const afterHandshake = writes - 1; // the 101 response was one write
    assert.ok(afterHandshake <= chunks, `${afterHandshake} writes for ${chunks} incoming chunks and ${n} messages`);
    ws.close();
  } finally {
    await host.close({ deadline: 500 });
    server.close();
  }
});

describe('closing', () => {
  test('a close the peer never answers ends at closeTimeout', async () => {
    const rec = recordingPlugin();
    let target: { close(code?: number): void } | undefined;
    const closer = definePlugin({ ...rec.plugin, onOpen: (s) => void (target = s) });
    const t = await startHost([{ path: '/c', plugin: closer, closeTimeout: 200 }]);
    try {
      const c = await rawClient(t.port, '/c');
      await until(() => target !== undefined);
      target!.close(4000);
      const frames = parseServerFrames(await c.closed()); // the server destroys the connection
      assert.equal(closeCodeOf(frames[0]!.payload), 4000);
      await until(() => rec.closes.length === 1);
      assert.equal(rec.closes[0]?.code, 4000);
    } finally {
      await t.close();
    }
  });
});

describe('graceful shutdown', () => {
  test('host.close() sends 1001 to every client, refuses new upgrades, then runs onShutdown', async () => {
    const rec = recordingPlugin();
    const t = await startHost([{ path: '/echo', plugin: rec.plugin }]);
    const clients = await Promise.all([1, 2, 3].map(() => open(`${t.base}/echo`)));
    const codes = Promise.all(clients.map(closed));
    const stopping = t.host.close({ deadline: 2000 });
    const during = new WebSocket(`${t.base}/echo`);
    const refused = new Promise<number | 'closed'>((resolve) => {
      during.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      during.once('error', () => resolve('closed'));
    });
    assert.deepEqual((await codes).map((c) => c.code), [1001, 1001, 1001]);
    await stopping;
    const r = await refused;
    assert.ok(r === 503 || r === 'closed', `new upgrades are refused (${r})`);
    assert.equal(rec.closes.length, 3);
    assert.equal(rec.shutdowns, 1);
  });

  test('an onShutdown that never settles does not hold shutdown past the deadline', async () => {
    const stuck = definePlugin({ name: 'stuck', apiVersion: 1, onMessage() {}, onShutdown: () => new Promise<void>(() => {}) });
    const t = await startHost([{ path: '/stuck', plugin: stuck }]);
    await t.host.close({ deadline: 200 });
    assert.ok(t.log.entries.some((e) => e.level === 'warn' && /onShutdown/.test(e.msg ?? '')));
  });

  test('a client that ignores the close is destroyed at the deadline', { timeout: 30_000 }, async () => {
    // closeTimeout far beyond the deadline: only the shutdown deadline can end this connection.
    const t = await startHost([{ path: '/echo', plugin: echoPlugin, closeTimeout: 600_000 }]);
    const c = await rawClient(t.port);
    let gone = false;
    void c.closed().then(() => (gone = true));
    const closeFrame = once(c.socket, 'data');
    // The deadline runs on fake time: it passes when the test says so.
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const stopping = t.host.close({ deadline: 300 });
      const [bytes] = (await closeFrame) as [Buffer];
      assert.equal(closeCodeOf(parseServerFrames(bytes)[0]!.payload), 1001);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(gone, false, 'the client is still connected before the deadline');
      mock.timers.tick(300);
      await c.closed();
      await stopping;
      assert.ok(t.log.entries.some((e) => e.level === 'warn' && /deadline/.test(e.msg ?? '')), 'the forced end is logged');
    } finally {
      mock.timers.reset();
    }
  });

  test('wsmod serve shuts down gracefully on SIGTERM: open clients receive 1001, exit status 0', async () => {
    const cli = fileURLToPath(new URL('../dist/cli/wsmod.js', import.meta.url));
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /ws:\/\/\S+\/echo/.exec(out);
          if (m !== null) resolve(m[0]);
        });
        child.once('exit', (code) => reject(new Error(`wsmod serve exited early (${code})`)));
      });
      const ws = await open(url);
      ws.send('hi');
      await once(ws, 'message');
      const done = closed(ws);
      const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
      child.kill('SIGTERM');
      assert.equal((await done).code, 1001);
      const [status] = await exited;
      assert.equal(status, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
