// Interoperability with the `ws` npm package as an independent client: echo of every length class
// up to 16 MiB, and every close code rule, seen from the client.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { encodeFrame } from '../src/protocol/frame-serializer.ts';
import { definePlugin, type Session } from '../src/plugin/api.ts';
import { echoPlugin, recordingPlugin, startHost, until } from './helpers.ts';

function open(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, ...options });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

describe('text stays text', () => {
  test('send(data) of a received message keeps its type, echoed or forwarded to another session; bytes of its own go as binary', async () => {
    const sessions: Session[] = [];
    const plugin = definePlugin({
      name: 'forward',
      apiVersion: 1,
      onOpen(session) {
        sessions.push(session);
      },
      onMessage(session, data) {
        session.send(data);
        for (const other of sessions) if (other !== session) other.send(data);
        session.send(Buffer.from(data)); // a copy: bytes the plugin made, binary
      },
    });
    const t = await startHost([{ path: '/f', plugin }]);
    try {
      const a = await open(`${t.base}/f`);
      const b = await open(`${t.base}/f`);
      await until(() => sessions.length === 2);
      const got: Array<{ isBinary: boolean; text: string }> = [];
      const two = new Promise<void>((resolve) =>
        a.on('message', (data: Buffer, isBinary: boolean) => {
          got.push({ isBinary, text: data.toString() });
          if (got.length === 2) resolve();
        }),
      );
      const forwarded = nextMessage(b);
      a.send('héllo');
      await two;
      assert.deepEqual(got, [
        { isBinary: false, text: 'héllo' }, // the echo
        { isBinary: true, text: 'héllo' }, // a copy the plugin made
      ]);
      const f = await forwarded;
      assert.equal(f.isBinary, false, 'forwarded to another session as text');
      assert.equal(f.data.toString(), 'héllo');
      a.removeAllListeners('message');
      a.send(Buffer.from([1, 2, 3]));
      const echoed = await nextMessage(a);
      assert.equal(echoed.isBinary, true, 'a binary message echoes as binary');
      a.close();
      b.close();
      await Promise.all([closed(a), closed(b)]);
    } finally {
      await t.close();
    }
  });
});

describe('echo with the ws client', () => {
  const sizes = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024];
  test('text and binary of 0, 125, 126, 65535, 65536 bytes and 16 MiB come back intact', async () => {
    const t = await startHost([{ path: '/echo', plugin: echoPlugin, maxMessageSize: 17 * 1024 * 1024 }]);
    try {
      const ws = await open(`${t.base}/echo`);
      for (const size of sizes) {
        const binary = randomBytes(size);
        ws.send(binary);
        const b = await nextMessage(ws);
        assert.equal(b.isBinary, true);
        assert.ok(b.data.equals(binary), `binary ${size}`);
        // Multi-byte text whose byte length is exactly `size`.
        const text = 'é'.repeat(Math.floor(size / 2)) + 'a'.repeat(size % 2);
        assert.equal(Buffer.byteLength(text), size);
        ws.send(text);
        const s = await nextMessage(ws);
        assert.equal(s.isBinary, false);
        assert.equal(s.data.toString(), text, `text ${size}`);
      }
      const done = closed(ws);
      ws.close(1000, 'bye');
      // The server answers with the same code (RFC 6455 §5.5.1); it does not repeat the reason.
      assert.deepEqual(await done, { code: 1000, reason: '' });
    } finally {
      await t.close();
    }
  });

  test('a message over maxMessageSize is refused with 1009 (default limit 1 MiB)', async () => {
    const t = await startHost();
    try {
      const ws = await open(`${t.base}/echo`);
      const done = closed(ws);
      ws.send(Buffer.alloc(1024 * 1024 + 1));
      assert.equal((await done).code, 1009);
      const ok = await open(`${t.base}/echo`);
      ok.send(Buffer.alloc(1024 * 1024));
      assert.equal((await nextMessage(ok)).data.length, 1024 * 1024, 'exactly the limit is accepted');
      ok.close();
    } finally {
      await t.close();
    }
  });
});

describe('close code rules, seen by the ws client', () => {
  const mask = () => randomBytes(4);
  const f = (opcode: number, payload: Buffer | string, fin = true, rsv = 0, masked = true) =>
    encodeFrame(masked ? { opcode, fin, rsv, maskKey: mask() } : { opcode, fin, rsv }, Buffer.from(payload));
  const close = (code: number, reason: Buffer = Buffer.alloc(0)) => {
    const p = Buffer.alloc(2 + reason.length);
    p.writeUInt16BE(code, 0);
    reason.copy(p, 2);
    return f(0x8, p);
  };
  const cases: Array<{ name: string; bytes: () => Buffer; code: number }> = [
    { name: 'unmasked frame', bytes: () => f(0x1, 'x', true, 0, false), code: 1002 },
    { name: 'RSV1 without extension', bytes: () => f(0x1, 'x', true, 0x40), code: 1002 },
    { name: 'RSV2', bytes: () => f(0x2, 'x', true, 0x20), code: 1002 },
    { name: 'RSV3', bytes: () => f(0x1, 'x', true, 0x10), code: 1002 },
    { name: 'reserved data opcode 0x3', bytes: () => f(0x3, ''), code: 1002 },
    { name: 'reserved control opcode 0xB', bytes: () => f(0xb, ''), code: 1002 },
    { name: 'ping of 126 bytes', bytes: () => f(0x9, Buffer.alloc(126)), code: 1002 },
    { name: 'fragmented ping', bytes: () => f(0x9, 'x', false), code: 1002 },
    { name: 'continuation without a message', bytes: () => f(0x0, 'x'), code: 1002 },
    { name: 'new message inside a fragmented one', bytes: () => Buffer.concat([f(0x1, 'a', false), f(0x1, 'b')]), code: 1002 },
    { name: 'close payload of 1 byte', bytes: () => f(0x8, Buffer.from([0x03])), code: 1002 },
    { name: 'close code 1005', bytes: () => close(1005), code: 1002 },
    { name: 'close code 999', bytes: () => close(999), code: 1002 },
    { name: 'close code 2999', bytes: () => close(2999), code: 1002 },
    { name: 'close code 5000', bytes: () => close(5000), code: 1002 },
    { name: 'invalid UTF-8 text', bytes: () => f(0x1, Buffer.from('cebae1bdb9cebcceb5eda080656469746564', 'hex')), code: 1007 },
    { name: 'invalid UTF-8 across fragments', bytes: () => Buffer.concat([f(0x1, Buffer.from([0xce]), false), f(0x0, Buffer.from([0x41]))]), code: 1007 },
    { name: 'invalid UTF-8 in a close reason', bytes: () => close(1000, Buffer.from([0xff, 0xfe])), code: 1007 },
    { name: 'message over maxMessageSize', bytes: () => f(0x2, Buffer.alloc(2000)), code: 1009 },
    { name: 'valid close 3000 is echoed', bytes: () => close(3000), code: 3000 },
    { name: 'valid close 1014 is echoed', bytes: () => close(1014), code: 1014 },
    { name: 'close without code is answered with 1000', bytes: () => f(0x8, ''), code: 1000 },
  ];
  for (const c of cases) {
    test(`${c.name} -> ${c.code}`, async () => {
      const rec = recordingPlugin();
      const t = await startHost([{ path: '/echo', plugin: rec.plugin, maxMessageSize: 1024 }]);
      try {
        const ws = await open(`${t.base}/echo`);
        const done = closed(ws);
        const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
        const tcpClosed = once(socket, 'close');
        socket.write(c.bytes());
        assert.equal((await done).code, c.code);
        await tcpClosed; // the server closed the TCP connection
        await until(() => rec.closes.length === 1, 5000, 'onClose');
        // The plugin hears the peer's code when it sent one, else the code the server failed with.
        const expected = c.code === 1000 ? 1005 : c.code;
        assert.equal(rec.closes[0]?.code, expected);
      } finally {
        await t.close();
      }
    });
  }
});
