// permessage-deflate (RFC 7692) against real hosts: negotiation seen by the `ws` client, echo through
// compression with and without context takeover, the threshold and the RSV rules on the raw wire, a
// malformed offer, a deflate bomb, ordering across many connections under the host's zlib job cap,
// and interoperability with python3-websockets (Debian, /usr/bin/python3, test/peers/python_client.py).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import type { RouteOptions } from '../src/host/options.ts';
import { definePlugin } from '../src/plugin/api.ts';
import { encodeFrame } from '../src/protocol/frame-serializer.ts';
import { ZLIB_CONCURRENCY } from '../src/protocol/permessage-deflate.ts';
import { type RawClient, closeCodeOf, echoPlugin, handshakeLines, parseServerFrames, rawClient, rawRequest, startHost, until } from './helpers.ts';

const TEXT = 0x1;
const BINARY = 0x2;
const CONT = 0x0;
const CLOSE = 0x8;
const PING = 0x9;
const RSV1 = 0x40;
const RSV2 = 0x20;
const RSV3 = 0x10;
const MiB = 1024 * 1024;

/** RFC 7692 §7.2.1: the tail a sender removes and a receiver appends. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** A compressed message payload, as a client without context takeover sends it. */
function deflateMessage(data: Buffer, options: zlib.ZlibOptions = {}): Buffer {
  return zlib.deflateRawSync(data, { ...options, finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
}

/** Inflates one compressed message sent without context takeover. */
function inflateMessage(payload: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

/** Compressible UTF-8 text of exactly `size` bytes (ASCII). */
function text(size: number): string {
  let s = '';
  for (let i = 0; s.length < size; i++) s += `${i % 89} the quick brown fox jumps over the lazy dog; `;
  return s.slice(0, size);
}

/** Compressible binary: byte i is (i * 31 + 7) mod 256. */
function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

// ---- the ws client ----

interface Opened {
  readonly ws: WebSocket;
  /** The 101 response (its headers, and the socket underneath). */
  readonly response: IncomingMessage;
}

function open(url: string, options: WebSocket.ClientOptions = {}): Promise<Opened> {
  const ws = new WebSocket(url, { maxPayload: 64 * MiB, ...options });
  let response: IncomingMessage | undefined;
  ws.once('upgrade', (res: IncomingMessage) => {
    response = res;
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, response: response! }));
    ws.once('error', reject);
  });
}

/** Collects every message of a ws client, in order; `take(n)` waits for the next n. */
function inbox(ws: WebSocket) {
  const queue: Array<{ data: Buffer; isBinary: boolean }> = [];
  let wake: (() => void) | undefined;
  let closed: { code: number; reason: string } | undefined;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    queue.push({ data, isBinary });
    wake?.();
  });
  ws.on('close', (code: number, reason: Buffer) => {
    closed = { code, reason: reason.toString() };
    wake?.();
  });
  return {
    async take(n: number): Promise<Array<{ data: Buffer; isBinary: boolean }>> {
      while (queue.length < n) {
        if (closed !== undefined) throw new Error(`closed (${closed.code}) with ${queue.length} of ${n} messages`);
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      return queue.splice(0, n);
    },
    get closed() {
      return closed;
    },
  };
}

function closedWs(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

// ---- raw wire ----

interface WireFrame {
  /** The first header byte: FIN, RSV1-3, opcode. */
  readonly b1: number;
  readonly opcode: number;
  readonly rsv1: boolean;
  readonly payload: Buffer;
}

/** Reads the server's (unmasked) frames off a raw client's socket as they arrive. */
function frameReader(client: RawClient) {
  let buf = Buffer.alloc(0);
  const frames: WireFrame[] = [];
  let taken = 0;
  let wake: (() => void) | undefined;
  let ended = false;
  client.socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) break;
      const b1 = buf[0]!;
      let len = buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) break;
      frames.push({ b1, opcode: b1 & 0x0f, rsv1: (b1 & RSV1) !== 0, payload: Buffer.from(buf.subarray(at, at + len)) });
      buf = buf.subarray(at + len);
    }
    wake?.();
  });
  client.socket.on('close', () => {
    ended = true;
    wake?.();
  });
  return {
    async next(): Promise<WireFrame> {
      while (frames.length <= taken) {
        if (ended) throw new Error('connection closed while waiting for a frame');
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      return frames[taken++]!;
    },
  };
}

/** A raw client that offered plain permessage-deflate. */
function deflateClient(port: number, path: string, offer = 'permessage-deflate'): Promise<RawClient> {
  return rawClient(port, path, { 'Sec-WebSocket-Extensions': offer });
}

/** The close code the server sent before closing TCP (undefined when it sent no close frame). */
async function serverCloseCode(client: RawClient): Promise<number | undefined> {
  const frames = parseServerFrames(await client.closed());
  const close = frames.find((f) => f.opcode === CLOSE);
  return close === undefined ? undefined : closeCodeOf(close.payload);
}

function extensionsHeader(response: string): string | undefined {
  return /^sec-websocket-extensions:\s*(.*)$/im.exec(response)?.[1]?.trim();
}

// ---- routes ----

/** A plugin that echoes, except the text "?ext", answered with session.extensions. */
const extPlugin = definePlugin({
  name: 'ext-echo',
  apiVersion: 1,
  onMessage(session, data, isBinary) {
    if (!isBinary && data.toString() === '?ext') session.send(`ext=${session.extensions}`);
    else session.send(data, { binary: isBinary });
  },
});

// Messages waiting to be compressed count towards maxBackpressure at their plain size: echoing two
// 1 MiB messages back to back needs more than the default 1 MiB (see docs/compression.md).
const BIG = { maxMessageSize: 2 * MiB, maxBackpressure: 8 * MiB };
const ROUTES: RouteOptions[] = [
  { path: '/plain', plugin: extPlugin, ...BIG },
  { path: '/z', plugin: extPlugin, compression: true, ...BIG },
  { path: '/zt', plugin: extPlugin, compression: { serverNoContextTakeover: false, clientNoContextTakeover: false }, ...BIG },
  { path: '/z0', plugin: extPlugin, compression: { threshold: 0 } },
];

// ---- tests ----

describe('negotiation with the ws client', () => {
  test('only routes with compression negotiate; the 101 answer and session.extensions agree', async () => {
    const t = await startHost(ROUTES);
    try {
      const cases: Array<[string, WebSocket.ClientOptions['perMessageDeflate'], string | undefined]> = [
        ['/plain', true, undefined],
        ['/plain', { threshold: 0 }, undefined],
        ['/z', true, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover'],
        ['/z', false, undefined],
        ['/zt', true, 'permessage-deflate'],
        ['/z0', { threshold: 0 }, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover'],
      ];
      for (const [path, perMessageDeflate, expected] of cases) {
        const what = `${path} with perMessageDeflate ${JSON.stringify(perMessageDeflate)}`;
        const { ws, response } = await open(`${t.base}${path}`, { perMessageDeflate });
        assert.equal(response.headers['sec-websocket-extensions'], expected, what);
        assert.equal(ws.extensions, expected === undefined ? '' : 'permessage-deflate', what);
        const box = inbox(ws);
        ws.send('?ext');
        const [answer] = await box.take(1);
        assert.equal(answer?.data.toString(), `ext=${expected ?? ''}`, `${what}: session.extensions`);
        ws.close();
        await closedWs(ws);
      }
    } finally {
      await t.close();
    }
  });

  test('the offer ws sends with server_max_window_bits and client_max_window_bits is answered within them', async () => {
    const t = await startHost(ROUTES);
    try {
      const { ws, response } = await open(`${t.base}/zt`, {
        perMessageDeflate: { serverMaxWindowBits: 10, clientMaxWindowBits: 11, threshold: 0 },
      });
      assert.equal(response.headers['sec-websocket-extensions'], 'permessage-deflate; server_max_window_bits=10; client_max_window_bits=11');
      const box = inbox(ws);
      const data = text(200_000);
      ws.send(data);
      const [echo] = await box.take(1);
      assert.equal(echo?.data.toString(), data);
      ws.close();
      await closedWs(ws);
    } finally {
      await t.close();
    }
  });
});

describe('echo through compression (ws client)', () => {
  const sizes = [0, 100, 1024, 65536, MiB];
  for (const [path, mode] of [
    ['/z', 'no context takeover (defaults)'],
    ['/zt', 'context takeover both ways'],
  ] as const) {
    for (const clientThreshold of [0, 1024]) {
      test(`text and binary of 0, 100, 1024, 65536 bytes and 1 MiB, ${mode}, client threshold ${clientThreshold}`, async () => {
        const t = await startHost(ROUTES);
        try {
          const { ws, response } = await open(`${t.base}${path}`, { perMessageDeflate: { threshold: clientThreshold } });
          assert.match(response.headers['sec-websocket-extensions'] ?? '', /^permessage-deflate/);
          const socket = response.socket as Socket;
          const read0 = socket.bytesRead;
          const written0 = socket.bytesWritten;
          const box = inbox(ws);
          let plain = 0;
          // Twice, so context takeover carries state across messages of every size.
          for (let round = 0; round < 2; round++) {
            for (const size of sizes) {
              const s = text(size);
              const b = size === 65536 ? randomBytes(size) : pattern(size);
              ws.send(s);
              ws.send(b);
              const [te, be] = await box.take(2);
              assert.equal(te?.isBinary, false);
              assert.equal(te?.data.toString(), s, `text ${size}`);
              assert.equal(be?.isBinary, true);
              assert.ok(be?.data.equals(b), `binary ${size}`);
              plain += 2 * size;
            }
          }
          // The messages really crossed the wire compressed, both ways.
          const read = socket.bytesRead - read0;
          const written = socket.bytesWritten - written0;
          assert.ok(read < plain / 2, `server → client: ${read} bytes on the wire for ${plain} bytes of messages`);
          assert.ok(written < plain / 2, `client → server: ${written} bytes on the wire for ${plain} bytes of messages`);
          const done = closedWs(ws);
          ws.close(1000);
          assert.equal((await done).code, 1000);
        } finally {
          await t.close();
        }
      });
    }
  }

  test('a plugin that sends and then closes: the compressed message arrives before the close', async () => {
    const sendThenClose = definePlugin({
      name: 'send-then-close',
      apiVersion: 1,
      onMessage(session, data, isBinary) {
        session.send(data, { binary: isBinary });
        session.send(Buffer.concat([data, data]), { binary: true });
        session.close(4000, 'done');
      },
    });
    const t = await startHost([{ path: '/c', plugin: sendThenClose, compression: true }]);
    try {
      for (let i = 0; i < 10; i++) {
        const { ws } = await open(`${t.base}/c`, { perMessageDeflate: true });
        const box = inbox(ws);
        const done = closedWs(ws);
        const data = text(100_000 + i);
        ws.send(data);
        const [a, b] = await box.take(2);
        assert.equal(a?.data.toString(), data);
        assert.equal(b?.data.length, 2 * data.length);
        assert.deepEqual(await done, { code: 4000, reason: 'done' });
      }
    } finally {
      await t.close();
    }
  });
});

describe('the threshold, on the raw wire', () => {
  test('server messages under the threshold go out uncompressed (0x81/0x82), at or above it compressed (0xC1/0xC2)', async () => {
    const t = await startHost(ROUTES);
    try {
      const c = await deflateClient(t.port, '/z');
      assert.equal(extensionsHeader(c.response), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
      const reader = frameReader(c);
      const cases: Array<[number, number, number]> = [
        // [opcode, size, expected first byte]
        [TEXT, 100, 0x81],
        [TEXT, 1023, 0x81],
        [TEXT, 1024, 0xc1],
        [TEXT, 5000, 0xc1],
        [BINARY, 10, 0x82],
        [BINARY, 2000, 0xc2],
      ];
      for (const [opcode, size, b1] of cases) {
        const payload = opcode === TEXT ? Buffer.from(text(size)) : pattern(size);
        c.frame(opcode, payload);
        const f = await reader.next();
        assert.equal(f.b1, b1, `${size}-byte ${opcode === TEXT ? 'text' : 'binary'}: first byte 0x${f.b1.toString(16)}`);
        const data = f.rsv1 ? inflateMessage(f.payload) : f.payload;
        assert.ok(data.equals(payload), `${size} bytes come back intact`);
        if (f.rsv1) assert.ok(f.payload.length < size / 2, 'compressed');
      }
      // The client may compress too (RSV1 on its frame), whatever the size.
      for (const size of [0, 1, 100, 3000]) {
        const payload = Buffer.from(text(size));
        c.frame(TEXT, deflateMessage(payload), true, RSV1);
        const f = await reader.next();
        assert.equal(f.b1, size >= 1024 ? 0xc1 : 0x81);
        assert.ok((f.rsv1 ? inflateMessage(f.payload) : f.payload).equals(payload), `compressed ${size} bytes`);
      }
      c.frame(CLOSE, Buffer.from([0x03, 0xe8]));
      assert.equal(await serverCloseCode(c), 1000);
    } finally {
      await t.close();
    }
  });

  test('threshold 0: every message is compressed, the empty one too', async () => {
    const t = await startHost(ROUTES);
    try {
      const c = await deflateClient(t.port, '/z0');
      const reader = frameReader(c);
      for (const size of [0, 1, 10]) {
        const payload = Buffer.from(text(size));
        c.frame(TEXT, payload);
        const f = await reader.next();
        assert.equal(f.b1, 0xc1, `${size} bytes`);
        assert.ok(inflateMessage(f.payload).equals(payload));
      }
      c.socket.destroy();
    } finally {
      await t.close();
    }
  });

  test('a compressed message fragmented over three frames (RSV1 on the first only) is reassembled, then inflated', async () => {
    const t = await startHost(ROUTES);
    try {
      const c = await deflateClient(t.port, '/z');
      const reader = frameReader(c);
      const payload = Buffer.from(text(50_000));
      const z = deflateMessage(payload);
      const third = Math.floor(z.length / 3);
      c.frame(TEXT, z.subarray(0, third), false, RSV1);
      c.frame(CONT, z.subarray(third, 2 * third), false);
      c.frame(CONT, z.subarray(2 * third), true);
      const f = await reader.next();
      assert.equal(f.b1, 0xc1);
      assert.ok(inflateMessage(f.payload).equals(payload));
      // A ping between fragments of a compressed message is answered; the message still arrives.
      c.frame(BINARY, z.subarray(0, third), false, RSV1);
      c.frame(PING, 'between');
      c.frame(CONT, z.subarray(third), true);
      const pong = await reader.next();
      assert.equal(pong.opcode, 0xa);
      assert.equal(pong.payload.toString(), 'between');
      const g = await reader.next();
      assert.equal(g.b1, 0xc2);
      assert.ok(inflateMessage(g.payload).equals(payload));
      c.socket.destroy();
    } finally {
      await t.close();
    }
  });
});

describe('RSV rules and invalid compressed data, on the raw wire', () => {
  const invalidUtf8 = Buffer.from([0x68, 0x69, 0xc3, 0x28, 0x21]);
  const cases: Array<{ name: string; path: string; offer: boolean; send: (c: RawClient) => void; expect: number }> = [
    {
      name: 'RSV1 on a continuation frame',
      path: '/z',
      offer: true,
      send: (c) => {
        const z = deflateMessage(Buffer.from(text(3000)));
        c.frame(TEXT, z.subarray(0, 10), false, RSV1);
        c.frame(CONT, z.subarray(10), true, RSV1);
      },
      expect: 1002,
    },
    {
      name: 'RSV1 on a continuation frame of an uncompressed message',
      path: '/z',
      offer: true,
      send: (c) => {
        c.frame(TEXT, 'abc', false);
        c.frame(CONT, 'def', true, RSV1);
      },
      expect: 1002,
    },
    { name: 'RSV1 on a ping', path: '/z', offer: true, send: (c) => c.frame(PING, '', true, RSV1), expect: 1002 },
    { name: 'RSV1 on a close', path: '/z', offer: true, send: (c) => c.frame(CLOSE, Buffer.from([0x03, 0xe8]), true, RSV1), expect: 1002 },
    {
      name: 'RSV1 on a text frame, route without compression (offered anyway)',
      path: '/plain',
      offer: true,
      send: (c) => c.frame(TEXT, deflateMessage(Buffer.from('hello')), true, RSV1),
      expect: 1002,
    },
    {
      name: 'RSV1 on a text frame, compression route, but the client did not offer it',
      path: '/z',
      offer: false,
      send: (c) => c.frame(TEXT, deflateMessage(Buffer.from('hello')), true, RSV1),
      expect: 1002,
    },
    { name: 'RSV2 on a text frame, compression negotiated', path: '/z', offer: true, send: (c) => c.frame(TEXT, 'x', true, RSV2), expect: 1002 },
    { name: 'RSV3 on a binary frame, compression negotiated', path: '/z', offer: true, send: (c) => c.frame(BINARY, 'x', true, RSV3), expect: 1002 },
    {
      name: 'a compressed frame whose payload is not DEFLATE (reserved block type)',
      path: '/z',
      offer: true,
      send: (c) => c.frame(BINARY, Buffer.from([0xff, 0xff, 0xff, 0xff]), true, RSV1),
      expect: 1007,
    },
    {
      name: 'a compressed frame whose payload is text, not DEFLATE',
      path: '/zt',
      offer: true,
      send: (c) => c.frame(TEXT, Buffer.from('definitely not deflate data'), true, RSV1),
      expect: 1007,
    },
    {
      name: 'a compressed text message that inflates to invalid UTF-8',
      path: '/z',
      offer: true,
      send: (c) => c.frame(TEXT, deflateMessage(invalidUtf8), true, RSV1),
      expect: 1007,
    },
    {
      name: 'a compressed text message that inflates to a truncated code point',
      path: '/zt',
      offer: true,
      send: (c) => c.frame(TEXT, deflateMessage(Buffer.from('abc\xe2\x82', 'latin1')), true, RSV1),
      expect: 1007,
    },
  ];
  for (const k of cases) {
    test(`${k.name} → ${k.expect}`, async () => {
      const t = await startHost(ROUTES);
      try {
        const c = k.offer ? await deflateClient(t.port, k.path) : await rawClient(t.port, k.path);
        // A normal exchange first: the connection works until the violation.
        const reader = frameReader(c);
        c.frame(TEXT, 'warmup');
        assert.equal((await reader.next()).payload.toString(), 'warmup');
        k.send(c);
        assert.equal(await serverCloseCode(c), k.expect, k.name);
        await until(() => t.host.connections === 0, 5000, 'the session to end');
      } finally {
        await t.close();
      }
    });
  }

  test('a compressed binary message may inflate to any bytes (no UTF-8 check)', async () => {
    const t = await startHost(ROUTES);
    try {
      const c = await deflateClient(t.port, '/z');
      const reader = frameReader(c);
      const payload = Buffer.concat([invalidUtf8, Buffer.alloc(2000, 0xff)]);
      c.frame(BINARY, deflateMessage(payload), true, RSV1);
      const f = await reader.next();
      assert.equal(f.b1, 0xc2);
      assert.ok(inflateMessage(f.payload).equals(payload));
      c.socket.destroy();
    } finally {
      await t.close();
    }
  });
});

describe('the offer header', () => {
  test('a malformed Sec-WebSocket-Extensions is 400 on a compression route, ignored elsewhere', async () => {
    const t = await startHost(ROUTES);
    try {
      for (const header of ['permessage-deflate;', 'permessage-deflate; a="1 0"', '"permessage-deflate"', 'permessage-deflate server_no_context_takeover']) {
        const refused = await rawRequest(t.port, handshakeLines(t.port, '/z', { 'Sec-WebSocket-Extensions': header }));
        assert.equal(refused.status, 400, `${header} on /z`);
        assert.match(refused.body, /WSMOD_ERR_EXTENSIONS_HEADER|Sec-WebSocket-Extensions/, 'the body says why');
        const ignored = await rawRequest(t.port, handshakeLines(t.port, '/plain', { 'Sec-WebSocket-Extensions': header }));
        assert.equal(ignored.status, 101, `${header} on /plain`);
        assert.equal(ignored.headers['sec-websocket-extensions'], undefined);
      }
    } finally {
      await t.close();
    }
  });

  test('well-formed offers that cannot be accepted are declined (101 without the header); a fallback offer is taken', async () => {
    const t = await startHost(ROUTES);
    try {
      for (const header of ['permessage-deflate; server_max_window_bits', 'permessage-deflate; foo=1', 'x-webkit-deflate-frame', 'permessage-deflate; client_max_window_bits=16']) {
        const r = await rawRequest(t.port, handshakeLines(t.port, '/z', { 'Sec-WebSocket-Extensions': header }));
        assert.equal(r.status, 101, header);
        assert.equal(r.headers['sec-websocket-extensions'], undefined, header);
      }
      const r = await rawRequest(
        t.port,
        handshakeLines(t.port, '/zt', { 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=20, permessage-deflate; client_max_window_bits' }),
      );
      assert.equal(r.status, 101);
      assert.equal(r.headers['sec-websocket-extensions'], 'permessage-deflate');
      // Two header lines are one list.
      const two = await rawRequest(t.port, [
        ...handshakeLines(t.port, '/z', { 'Sec-WebSocket-Extensions': 'x-foo' }),
        'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12',
      ]);
      assert.equal(two.status, 101);
      assert.equal(two.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12');
    } finally {
      await t.close();
    }
  });
});

describe('a deflate bomb over the wire', () => {
  test('~70 KiB inflating to 70 MiB on a 1 MiB route: 1009, memory stays flat, the host serves on', async () => {
    let received = 0;
    const counting = definePlugin({
      name: 'counting-echo',
      apiVersion: 1,
      onMessage(session, data, isBinary) {
        received++;
        session.send(data, { binary: isBinary });
      },
    });
    const t = await startHost([
      { path: '/bomb', plugin: counting, compression: true, maxMessageSize: MiB },
      { path: '/bombt', plugin: counting, compression: { serverNoContextTakeover: false, clientNoContextTakeover: false }, maxMessageSize: MiB },
    ]);
    const gc = getGc();
    try {
      const bomb = deflateMessage(Buffer.alloc(70 * MiB), { level: 9 });
      assert.ok(bomb.length <= 72 * 1024, `the bomb is ${bomb.length} bytes`);
      for (const path of ['/bomb', '/bombt']) {
        gc();
        const before = process.memoryUsage();
        const c = await deflateClient(t.port, path);
        c.frame(BINARY, bomb, true, RSV1);
        assert.equal(await serverCloseCode(c), 1009, `${path}: close code`);
        await until(() => t.host.connections === 0, 5000, 'the bombed session to end');
        gc();
        const after = process.memoryUsage();
        const grew = (after.rss - before.rss) / MiB;
        const buffers = (after.arrayBuffers - before.arrayBuffers) / MiB;
        assert.ok(grew < 32, `${path}: rss grew by ${grew.toFixed(1)} MiB`);
        assert.ok(buffers < 32, `${path}: arrayBuffers grew by ${buffers.toFixed(1)} MiB`);
        assert.equal(received, 0, 'the plugin never saw the bomb');

        // The host still serves: a new connection echoes, compressed, up to the limit.
        const { ws } = await open(`${t.base}${path}`, { perMessageDeflate: { threshold: 0 } });
        const box = inbox(ws);
        const ok = Buffer.alloc(MiB, 0x61);
        ws.send(ok);
        const [echo] = await box.take(1);
        assert.ok(echo?.data.equals(ok), 'exactly maxMessageSize inflated is accepted');
        ws.close();
        await closedWs(ws);
        received = 0;
      }
      // One byte over the limit after inflation is refused too.
      const c = await deflateClient(t.port, '/bomb');
      c.frame(BINARY, deflateMessage(Buffer.alloc(MiB + 1, 0x61)), true, RSV1);
      assert.equal(await serverCloseCode(c), 1009);
    } finally {
      await t.close();
    }
  });
});

describe('ordering under concurrent compression', () => {
  const CONNECTIONS = 50;
  const MESSAGES = 40;
  /** Message i of connection k: 10 bytes or 5 KiB (alternating), tagged with both indexes. */
  const message = (k: number, i: number): string => {
    const tag = `${k}:${i}|`;
    return i % 2 === 0 ? tag.padEnd(10, '.') : tag + text(5 * 1024 - tag.length);
  };

  for (const path of ['/z', '/zt']) {
    test(`${CONNECTIONS} ws clients × ${MESSAGES} messages back to back, mixed sizes, on ${path}: every echo in order`, async () => {
      assert.ok(CONNECTIONS > ZLIB_CONCURRENCY, 'more connections than zlib slots');
      const t = await startHost(ROUTES);
      try {
        const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => open(`${t.base}${path}`, { perMessageDeflate: true })));
        await Promise.all(
          clients.map(async ({ ws }, k) => {
            const box = inbox(ws);
            for (let i = 0; i < MESSAGES; i++) {
              // Odd messages alternate text and binary, so both kinds interleave.
              const m = message(k, i);
              ws.send(i % 4 === 3 ? Buffer.from(m) : m, { binary: i % 4 === 3 });
            }
            const echoes = await box.take(MESSAGES);
            echoes.forEach((e, i) => {
              assert.equal(e.isBinary, i % 4 === 3, `connection ${k}, message ${i}: type`);
              assert.equal(e.data.toString(), message(k, i), `connection ${k}, message ${i}: in order and intact`);
            });
            ws.close();
            await closedWs(ws);
          }),
        );
      } finally {
        await t.close();
      }
    });
  }

  test(`${CONNECTIONS} raw clients sending compressed and plain messages: order kept, the zlib cap reached and never passed`, async () => {
    // Server-side zlib jobs, counted by the host's own pool (this test's client side uses zlib's
    // synchronous API only).
    const t = await startHost(ROUTES);
    const jobs = t.host.zlibPool;
    try {
      const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => deflateClient(t.port, '/z')));
      await Promise.all(
        clients.map(async (c, k) => {
          const reader = frameReader(c);
          // All of a connection's frames in one write: the server parses them in one go.
          const frames: Buffer[] = [];
          const sent = Array.from({ length: MESSAGES }, (_, i) => Buffer.from(message(k, i)));
          for (const [i, m] of sent.entries()) {
            // Even messages go plain, odd ones compressed (RSV1): plain ones must wait their turn.
            const maskKey = randomBytes(4);
            frames.push(i % 2 === 0 ? encodeFrame({ opcode: TEXT, fin: true, maskKey }, m) : encodeFrame({ opcode: TEXT, fin: true, rsv: RSV1, maskKey }, deflateMessage(m)));
          }
          c.write(Buffer.concat(frames));
          for (const [i, m] of sent.entries()) {
            const f = await reader.next();
            assert.equal(f.rsv1, m.length >= 1024, `connection ${k}, message ${i}: compressed iff at or over the threshold`);
            const data = f.rsv1 ? inflateMessage(f.payload) : f.payload;
            assert.equal(data.toString(), m.toString(), `connection ${k}, message ${i}: in order and intact`);
          }
          c.frame(CLOSE, Buffer.from([0x03, 0xe8]));
          assert.equal(await serverCloseCode(c), 1000);
        }),
      );
      assert.equal(jobs.maxJobs, ZLIB_CONCURRENCY, 'a host caps zlib jobs at ZLIB_CONCURRENCY');
      assert.ok(jobs.peak <= ZLIB_CONCURRENCY, `peak ${jobs.peak} zlib jobs in flight (cap ${ZLIB_CONCURRENCY})`);
      assert.equal(jobs.peak, ZLIB_CONCURRENCY, 'the cap was reached: connections waited for a slot');
      // Every compressed message (half of them) was inflated once, and every echo of 1 KiB or more deflated.
      assert.equal(jobs.completed, CONNECTIONS * MESSAGES, 'every zlib job ran through the host pool');
      assert.equal(jobs.running, 0);
      assert.equal(jobs.waiting, 0);
    } finally {
      await t.close();
    }
  });
});

// ---- python3-websockets ----

const PYTHON = '/usr/bin/python3';
const PY_CLIENT = fileURLToPath(new URL('./peers/python_client.py', import.meta.url));

function runPython<T>(command: object): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    execFile(PYTHON, [PY_CLIENT, JSON.stringify(command)], { timeout: 120_000, maxBuffer: 16 * MiB, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error !== null && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`${PYTHON} not found: these tests need Debian's python3 with python3-websockets`));
        return;
      }
      const line = stdout.trim().split('\n').at(-1) ?? '';
      let parsed: { ok: boolean; error?: string; detail?: string; traceback?: string; result?: T };
      try {
        parsed = JSON.parse(line) as typeof parsed;
      } catch {
        reject(new Error(`python peer printed no JSON result (${error?.message ?? 'exit 0'})\nstdout: ${stdout}\nstderr: ${stderr}`));
        return;
      }
      if (!parsed.ok || parsed.result === undefined) {
        reject(new Error(`python peer failed: ${parsed.error ?? '?'} ${parsed.detail ?? ''}\n${parsed.traceback ?? ''}\nstderr: ${stderr}`));
        return;
      }
      resolve(parsed.result);
    });
  });
}

interface DeflateEchoReport {
  readonly request_extensions: string | null;
  readonly response_extensions: string | null;
  readonly negotiated: Array<{
    name: string;
    remote_no_context_takeover?: boolean;
    local_no_context_takeover?: boolean;
    remote_max_window_bits?: number;
    local_max_window_bits?: number;
  }>;
  readonly messages: Array<{ kind: string; size: number; recv_type: string; recv_len: number; equal: boolean; sent_sha256: string; recv_sha256: string }>;
  readonly wire: { bytes_in: number; bytes_out: number };
  readonly close: { close_code: number | null; server_closed_tcp: boolean };
}

describe('python3-websockets', () => {
  const messages = [0, 1, 100, 1024, 65536, MiB].flatMap((size) => [
    { kind: 'text', size },
    { kind: 'binary', size },
  ]);
  const plain = messages.reduce((n, m) => n + m.size, 0);

  const check = (out: DeflateEchoReport, what: string): void => {
    assert.equal(out.messages.length, messages.length);
    for (const m of out.messages) {
      assert.equal(m.equal, true, `${what}: ${m.kind} ${m.size} came back different (${m.recv_type}, ${m.recv_len} bytes)`);
      assert.equal(m.recv_type, m.kind === 'text' ? 'str' : 'bytes');
    }
    // Compressed on the wire both ways (the messages are compressible; framing adds little).
    assert.ok(out.wire.bytes_in < plain / 4, `${what}: ${out.wire.bytes_in} bytes in for ${plain} bytes of messages`);
    assert.ok(out.wire.bytes_out < plain / 4, `${what}: ${out.wire.bytes_out} bytes out for ${plain} bytes of messages`);
    assert.equal(out.close.close_code, 1000);
    assert.equal(out.close.server_closed_tcp, true);
  };

  test('the library default offer (compression="deflate") is negotiated; text and binary of 0 B to 1 MiB echo compressed', { timeout: 120_000 }, async () => {
    const t = await startHost(ROUTES);
    try {
      for (const [path, response, serverNoTakeover, clientNoTakeover] of [
        ['/z', 'permessage-deflate; server_no_context_takeover; client_no_context_takeover', true, true],
        ['/zt', 'permessage-deflate', false, false],
      ] as const) {
        const out = await runPython<DeflateEchoReport>({ op: 'deflate_echo', url: `${t.base}${path}`, messages });
        assert.match(out.request_extensions ?? '', /^permessage-deflate/, 'python offered permessage-deflate');
        assert.equal(out.response_extensions, response, `${path}: the 101's Sec-WebSocket-Extensions`);
        assert.equal(out.negotiated.length, 1);
        assert.deepEqual(out.negotiated[0], {
          name: 'permessage-deflate',
          remote_no_context_takeover: serverNoTakeover,
          local_no_context_takeover: clientNoTakeover,
          remote_max_window_bits: 15,
          local_max_window_bits: 15,
        });
        check(out, path);
      }
    } finally {
      await t.close();
    }
  });

  test('window limits from python: server_max_window_bits=8 (Z_RLE on the server) and client_max_window_bits=9', { timeout: 120_000 }, async () => {
    const t = await startHost(ROUTES);
    try {
      const out = await runPython<DeflateEchoReport>({
        op: 'deflate_echo',
        url: `${t.base}/zt`,
        messages,
        offer: { server_max_window_bits: 8, client_max_window_bits: 9 },
      });
      assert.equal(out.response_extensions, 'permessage-deflate; server_max_window_bits=8; client_max_window_bits=9');
      assert.deepEqual(out.negotiated[0], {
        name: 'permessage-deflate',
        remote_no_context_takeover: false,
        local_no_context_takeover: false,
        remote_max_window_bits: 8,
        local_max_window_bits: 9,
      });
      for (const m of out.messages) assert.equal(m.equal, true, `${m.kind} ${m.size}`);
      assert.equal(out.close.close_code, 1000);
    } finally {
      await t.close();
    }
  });
});

test('a peer close right after a message: the compressed echo still goes out before the close reply', async () => {
  const t = await startHost([{ path: '/z', plugin: echoPlugin, compression: true, maxMessageSize: 4 * MiB, maxBackpressure: 16 * MiB }]);
  try {
    const big = 'x'.repeat(200_000) + 'y'.repeat(100_000);
    for (let k = 0; k < 5; k++) {
      const ws = new WebSocket(`${t.base}/z`, { perMessageDeflate: true, maxPayload: 16 * MiB });
      await new Promise((r) => ws.once('open', r));
      let echoed = '';
      ws.on('message', (d: Buffer) => (echoed = d.toString()));
      ws.send(big);
      ws.close(1000);
      const [code] = await new Promise<[number]>((r) => ws.once('close', (c: number) => r([c])));
      assert.equal(code, 1000);
      assert.equal(echoed, big, 'the echo arrived before the close');
    }
  } finally {
    await t.close();
  }
});
