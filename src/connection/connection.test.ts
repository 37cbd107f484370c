// The connection engine without sockets: a Connection over an in-memory duplex pair, frames as hex,
// keepalive and the closing deadline on fake timers (node:test's mock.timers). Covers keepalive,
// the closing handshake, backpressure and onDrain, write coalescing, protocol errors and their close
// codes, fragmented messages, maxMessageSize, permessage-deflate with a ZlibPool of the test's own, and
// prepared messages (topic fan-out) with shared or own compression.
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { type ErrorCode, WsmodError } from '../errors.ts';
import { DEFAULT_DEFLATE, DeflateCodec, type DeflateParams, ZlibPool } from '../protocol/permessage-deflate.ts';
import { Connection, type ConnectionOptions, ReadyState, type SendResult } from './connection.ts';
import { PreparedMessage } from './prepared.ts';
import { bytes, norm, txt } from '../../test/hex.ts';

// ---------------------------------------------------------------------------------------------------
// An in-memory duplex pair
// ---------------------------------------------------------------------------------------------------

/**
 * One end of an in-memory duplex pair: what one end writes, the other reads. Like TCP, a write is
 * complete only once the other end's read buffer has room, so a reader that stops reading makes the
 * writer's buffer grow. Each `_write`/`_writev` is one write that "reached the kernel".
 */
class MemoryEnd extends Duplex {
  peer!: MemoryEnd;
  /** Writes handed to the transport (a corked burst is one). */
  writes = 0;
  /** The peer's write that waits until this end reads. */
  #waitingWrite: (() => void) | undefined;

  override _read(): void {
    const done = this.#waitingWrite;
    this.#waitingWrite = undefined;
    done?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.writes++;
    this.peer.#deliver(chunk, done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.writes++;
    this.peer.#deliver(Buffer.concat(chunks.map((c) => c.chunk)), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // The other end learns at once that the connection is gone, as after a TCP reset.
    if (!this.peer.destroyed) this.peer.destroy();
    done(err);
  }

  #deliver(chunk: Buffer, done: () => void): void {
    if (this.destroyed || this.push(chunk)) done();
    else this.#waitingWrite = done;
  }
}

/** Two cross-wired ends. */
function memoryPair(): [MemoryEnd, MemoryEnd] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------


/** The masking key of RFC 6455 §5.7's examples. */
const KEY = bytes('37fa213d');

/**
 * A client frame from its unmasked hex, as a server would send it: sets the mask bit, inserts KEY and
 * masks the payload (RFC 6455 §5.3).
 */
function masked(hex: string): Buffer {
  const frame = bytes(hex);
  const len7 = frame[1]! & 0x7f;
  const headerSize = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  const header = Buffer.from(frame.subarray(0, headerSize));
  header[1]! |= 0x80;
  const payload = Buffer.from(frame.subarray(headerSize));
  for (let i = 0; i < payload.length; i++) payload[i]! ^= KEY[i % 4]!;
  return Buffer.concat([header, KEY, payload]);
}

/** Lets streams and microtasks run (setImmediate is never faked here). */
async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Waits, turn by turn, until `predicate` holds (zlib finishes on its own thread, in no set number of turns). */
async function turnsUntil(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never happened: ${what}`);
}

interface Closed {
  readonly code: number;
  readonly reason: string;
  readonly error: ErrorCode | undefined;
}

/** A server Connection over a memory pair, its events, and the client end the test plays. */
function open(options: Partial<ConnectionOptions> = {}, hooks: { onMessage?: (conn: Connection, data: Buffer, isBinary: boolean) => void } = {}) {
  const [socket, peer] = memoryPair();
  const messages: Array<{ data: string; isBinary: boolean }> = [];
  const closes: Closed[] = [];
  const received: Buffer[] = [];
  let drains = 0;
  const conn: Connection = new Connection(
    socket,
    {
      role: 'server',
      maxMessageSize: 1024 * 1024,
      idleTimeout: 0,
      pongTimeout: 0,
      closeTimeout: 5000,
      maxBackpressure: 1024 * 1024,
      backpressurePolicy: 'drop',
      ...options,
    },
    {
      onMessage(data, isBinary) {
        messages.push({ data: data.toString(), isBinary });
        hooks.onMessage?.(conn, data, isBinary);
      },
      onDrain() {
        drains++;
      },
      onClose(code, reason, error) {
        closes.push({ code, reason, error: error?.code });
      },
    },
  );
  peer.on('data', (chunk: Buffer) => received.push(chunk));
  let peerClosed = false;
  peer.on('close', () => (peerClosed = true));
  conn.start();
  return {
    conn,
    socket,
    peer,
    messages,
    closes,
    get drains() {
      return drains;
    },
    get peerClosed() {
      return peerClosed;
    },
    /** Everything the server wrote so far, as hex; `take` forgets it afterwards. */
    wire(): string {
      return Buffer.concat(received).toString('hex');
    },
    take(): string {
      const all = Buffer.concat(received).toString('hex');
      received.length = 0;
      return all;
    },
    /** Sends bytes from the client end, whole or one byte per write. */
    async send(data: Buffer, oneByteAtATime = false): Promise<void> {
      if (oneByteAtATime) for (const b of data) peer.write(Buffer.from([b]));
      else peer.write(data);
      await settle();
    },
  };
}

const CHUNKINGS = [
  ['whole', false],
  ['one byte at a time', true],
] as const;

// ---------------------------------------------------------------------------------------------------
// The pair itself
// ---------------------------------------------------------------------------------------------------

test('the memory pair carries bytes both ways, ends, and holds a writer while its reader is paused', async () => {
  const [a, b] = memoryPair();
  const got: Buffer[] = [];
  b.on('data', (c: Buffer) => got.push(c));
  a.write('hello');
  await settle();
  assert.equal(Buffer.concat(got).toString(), 'hello');
  b.pause();
  for (let i = 0; i < 8; i++) a.write(Buffer.alloc(16 * 1024));
  await settle();
  assert.ok(a.writableLength > 0, 'the writer holds what the paused reader has no room for');
  b.resume();
  await settle(10);
  assert.equal(a.writableLength, 0);
  assert.equal(Buffer.concat(got).length, 5 + 8 * 16 * 1024);
  const ended = new Promise((resolve) => b.once('end', resolve));
  a.end();
  await ended;
});

test('masked() reproduces RFC 6455 §5.7: a masked "Hello"', () => {
  assert.equal(masked('81 05 48656c6c6f').toString('hex'), norm('8185 37fa213d 7f9f4d5158'));
});

// ---------------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------------

describe('messages', () => {
  for (const [chunking, byByte] of CHUNKINGS) {
    test(`text and binary messages are delivered with their type (${chunking})`, async () => {
      const c = open();
      await c.send(Buffer.concat([masked(`81 05 ${txt('Hello')}`), masked('82 03 000102')]), byByte);
      assert.deepEqual(c.messages, [
        { data: 'Hello', isBinary: false },
        { data: '\u0000\u0001\u0002', isBinary: true },
      ]);
      assert.equal(c.take(), '', 'nothing is written back');
    });

    test(`a fragmented message with a ping between its fragments is one message; the ping is answered at once (${chunking})`, async () => {
      const c = open();
      // RFC 6455 §5.4: control frames may be injected in the middle of a fragmented message.
      const wire = Buffer.concat([masked(`01 03 ${txt('Hel')}`), masked(`89 02 ${txt('hi')}`), masked(`00 02 ${txt('lo')}`), masked(`80 01 ${txt('!')}`)]);
      await c.send(wire, byByte);
      assert.deepEqual(c.messages, [{ data: 'Hello!', isBinary: false }]);
      assert.equal(c.take(), norm(`8a 02 ${txt('hi')}`), 'the pong echoes the ping payload');
    });

    test(`maxMessageSize: exactly the limit passes, one byte more over fragments is 1009 (${chunking})`, async () => {
      const c = open({ maxMessageSize: 5 });
      await c.send(masked(`81 05 ${txt('12345')}`), byByte);
      assert.deepEqual(c.messages, [{ data: '12345', isBinary: false }]);
      await c.send(Buffer.concat([masked(`02 03 000000`), masked(`80 03 000000`)]), byByte);
      assert.equal(c.messages.length, 1, 'the oversized message is not delivered');
      assert.equal(c.take(), norm('88 02 03f1'), 'close 1009');
      assert.equal(c.conn.readyState, ReadyState.CLOSING);
      c.peer.end(); // the peer answers by closing TCP
      await settle();
      assert.deepEqual(c.closes, [{ code: 1009, reason: '', error: 'WSMOD_ERR_MESSAGE_TOO_BIG' }]);
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Protocol errors
// ---------------------------------------------------------------------------------------------------

describe('protocol errors close with their code (RFC 6455 §7.1.7)', () => {
  const cases: ReadonlyArray<{ name: string; wire: () => Buffer; code: number; error: ErrorCode }> = [
    { name: 'an unmasked client frame', wire: () => bytes(`81 02 ${txt('hi')}`), code: 1002, error: 'WSMOD_ERR_UNMASKED_FRAME' },
    { name: 'reserved opcode 0x3', wire: () => masked('83 00'), code: 1002, error: 'WSMOD_ERR_RESERVED_OPCODE' },
    { name: 'RSV1 without a negotiated extension', wire: () => masked(`c1 02 ${txt('hi')}`), code: 1002, error: 'WSMOD_ERR_RESERVED_BITS' },
    { name: 'a fragmented ping', wire: () => masked('09 00'), code: 1002, error: 'WSMOD_ERR_CONTROL_FRAGMENTED' },
    { name: 'a ping of 126 bytes', wire: () => masked(`89 7e 007e ${'00'.repeat(126)}`), code: 1002, error: 'WSMOD_ERR_CONTROL_TOO_LONG' },
    { name: 'a continuation with no message in progress', wire: () => masked(`80 01 ${txt('x')}`), code: 1002, error: 'WSMOD_ERR_UNEXPECTED_CONTINUATION' },
    { name: 'a new message inside a fragmented one', wire: () => Buffer.concat([masked(`01 01 ${txt('a')}`), masked(`81 01 ${txt('b')}`)]), code: 1002, error: 'WSMOD_ERR_EXPECTED_CONTINUATION' },
    { name: 'a close frame of 1 byte', wire: () => masked('88 01 03'), code: 1002, error: 'WSMOD_ERR_CLOSE_PAYLOAD' },
    { name: 'close code 1005 on the wire', wire: () => masked('88 02 03ed'), code: 1002, error: 'WSMOD_ERR_CLOSE_CODE' },
    { name: 'invalid UTF-8 in a text message', wire: () => masked('81 02 c328'), code: 1007, error: 'WSMOD_ERR_INVALID_UTF8' },
    { name: 'invalid UTF-8 split over fragments', wire: () => Buffer.concat([masked('01 01 e2'), masked('80 02 28a1')]), code: 1007, error: 'WSMOD_ERR_INVALID_UTF8' },
  ];
  for (const c of cases) {
    test(`${c.name} -> ${c.code} (${c.error})`, async () => {
      const conn = open();
      // A valid message first, in the same write: it is delivered before the connection fails.
      await conn.send(Buffer.concat([masked(`81 02 ${txt('ok')}`), c.wire()]));
      assert.deepEqual(conn.messages, [{ data: 'ok', isBinary: false }]);
      assert.equal(conn.take(), `8802${c.code.toString(16).padStart(4, '0')}`, 'a close frame with the code, nothing else');
      // The server ends its side of TCP after failing; once the peer does too, the connection is closed.
      assert.equal(conn.socket.writableEnded, true, 'our side of TCP is ended');
      conn.peer.end();
      await settle();
      assert.deepEqual(conn.closes, [{ code: c.code, reason: '', error: c.error }]);
      // Nothing after the failure is read.
      assert.equal(conn.messages.length, 1);
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Closing handshake
// ---------------------------------------------------------------------------------------------------

describe('closing handshake (RFC 6455 §7)', () => {
  test('the peer closes: the code is echoed, the server ends TCP first, onClose has the peer code and reason', async () => {
    const c = open();
    await c.send(masked(`88 05 0fa1 ${txt('bye')}`));
    assert.equal(c.take(), norm('88 02 0fa1'), 'code 4001 echoed');
    assert.equal(c.socket.writableEnded, true, 'the server ends TCP first (§7.1.1)');
    c.peer.end();
    await settle();
    assert.deepEqual(c.closes, [{ code: 4001, reason: 'bye', error: undefined }]);
    assert.equal(c.conn.send('late', false), 'dropped');
  });

  test('a close without a code is answered with 1000 and reported as 1005', async () => {
    const c = open();
    await c.send(masked('88 00'));
    assert.equal(c.take(), norm('88 02 03e8'));
    c.peer.end();
    await settle();
    assert.deepEqual(c.closes, [{ code: 1005, reason: '', error: undefined }]);
  });

  test('the server closes: code and reason go out, data after our close is discarded, the peer reply completes it', async () => {
    const c = open();
    c.conn.close(4000, 'done');
    await settle();
    assert.equal(c.take(), norm(`88 06 0fa0 ${txt('done')}`));
    assert.equal(c.conn.readyState, ReadyState.CLOSING);
    assert.equal(c.conn.send('more', false), 'dropped', 'nothing may follow our close frame');
    // RFC 6455 §7.1.2: a message that crossed our close frame is discarded; then the peer's close.
    await c.send(Buffer.concat([masked(`81 04 ${txt('late')}`), masked('88 02 0fa0')]));
    assert.deepEqual(c.messages, []);
    assert.equal(c.take(), '', 'no second close frame');
    assert.equal(c.socket.writableEnded, true);
    c.peer.end();
    await settle();
    assert.deepEqual(c.closes, [{ code: 4000, reason: '', error: undefined }]);
  });

  test('invalid close() arguments throw WSMOD_ERR_INVALID_CLOSE and send nothing', async () => {
    const c = open();
    for (const [code, reason] of [[1005, ''], [999, ''], [1000, 'x'.repeat(124)]] as const) {
      assert.throws(() => c.conn.close(code, reason), (err: unknown) => err instanceof WsmodError && err.code === 'WSMOD_ERR_INVALID_CLOSE');
    }
    await settle();
    assert.equal(c.take(), '');
    assert.equal(c.conn.readyState, ReadyState.OPEN);
  });

  test('closeTimeout: a peer that never answers our close is destroyed at the deadline, not before', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    const c = open({ closeTimeout: 5000 });
    c.conn.close(1000);
    await settle();
    assert.equal(c.take(), norm('88 02 03e8'));
    t.mock.timers.tick(4999);
    await settle();
    assert.equal(c.socket.destroyed, false, 'still waiting for the peer');
    assert.deepEqual(c.closes, []);
    t.mock.timers.tick(1);
    await settle();
    assert.equal(c.socket.destroyed, true);
    assert.equal(c.peerClosed, true);
    assert.deepEqual(c.closes, [{ code: 1000, reason: '', error: 'WSMOD_ERR_CLOSE_TIMEOUT' }]);
  });

  test('terminate() destroys at once without a close frame: 1006', async () => {
    const c = open();
    c.conn.terminate();
    await settle();
    assert.equal(c.take(), '');
    assert.deepEqual(c.closes, [{ code: 1006, reason: '', error: undefined }]);
  });

  test('the peer vanishing without a close frame is 1006', async () => {
    const c = open();
    c.peer.destroy();
    await settle();
    assert.deepEqual(c.closes, [{ code: 1006, reason: '', error: undefined }]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Keepalive
// ---------------------------------------------------------------------------------------------------

describe('keepalive (fake timers)', () => {
  const IDLE = 1000;
  const PONG = 1000;

  test('a ping after idleTimeout of silence (within 1.25 idleTimeouts); no pong within pongTimeout: destroyed, 1006', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    const c = open({ idleTimeout: IDLE, pongTimeout: PONG });
    t.mock.timers.tick(IDLE);
    await settle();
    assert.equal(c.take(), '', 'no ping before idleTimeout of silence');
    t.mock.timers.tick(IDLE / 4);
    await settle();
    assert.equal(c.take(), norm('89 00'), 'one empty ping');
    t.mock.timers.tick(PONG - IDLE / 4);
    await settle();
    assert.equal(c.socket.destroyed, false, 'still open inside pongTimeout');
    t.mock.timers.tick(IDLE / 4);
    await settle();
    assert.equal(c.take(), '', 'a dead peer gets no close frame');
    assert.equal(c.socket.destroyed, true);
    assert.deepEqual(c.closes, [{ code: 1006, reason: '', error: 'WSMOD_ERR_PONG_TIMEOUT' }]);
  });

  test('an idle peer that answers every ping stays open for as long as it answers', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    const c = open({ idleTimeout: IDLE, pongTimeout: PONG });
    for (let round = 0; round < 10; round++) {
      t.mock.timers.tick(IDLE + IDLE / 4);
      await settle();
      assert.equal(c.take(), norm('89 00'), `ping ${round + 1}`);
      await c.send(masked('8a 00'));
    }
    assert.equal(c.conn.readyState, ReadyState.OPEN);
    assert.deepEqual(c.closes, []);
  });

  test('any data counts as life: a message instead of a pong keeps the connection, and silence restarts', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    const c = open({ idleTimeout: IDLE, pongTimeout: PONG });
    t.mock.timers.tick(IDLE + IDLE / 4);
    await settle();
    assert.equal(c.take(), norm('89 00'));
    t.mock.timers.tick(PONG / 2);
    await c.send(masked(`81 05 ${txt('alive')}`));
    t.mock.timers.tick(PONG);
    await settle();
    assert.equal(c.conn.readyState, ReadyState.OPEN, 'the message answered for the pong');
    assert.equal(c.take(), '', 'no ping: the message restarted the silence count');
    t.mock.timers.tick(IDLE / 4);
    await settle();
    assert.equal(c.take(), norm('89 00'), 'the next ping after a new idleTimeout of silence');
    // Regular traffic: no ping at all.
    for (let i = 0; i < 10; i++) {
      t.mock.timers.tick(IDLE / 2);
      await c.send(masked(`82 01 0${i}`));
    }
    assert.equal(c.take(), '');
  });

  test('no ping before start(): silence is counted only while reading', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    const [socket, peer] = memoryPair();
    const received: Buffer[] = [];
    peer.on('data', (b: Buffer) => received.push(b));
    const conn = new Connection(
      socket,
      { role: 'server', maxMessageSize: 100, idleTimeout: IDLE, pongTimeout: PONG, closeTimeout: 0, maxBackpressure: 1000, backpressurePolicy: 'drop' },
      { onMessage() {}, onDrain() {}, onClose() {} },
    );
    t.mock.timers.tick(10 * IDLE);
    await settle();
    assert.equal(Buffer.concat(received).toString('hex'), '');
    conn.start();
    t.mock.timers.tick(IDLE + IDLE / 4);
    await settle();
    assert.equal(Buffer.concat(received).toString('hex'), norm('89 00'));
    conn.terminate();
  });
});

// ---------------------------------------------------------------------------------------------------
// Backpressure
// ---------------------------------------------------------------------------------------------------

describe('backpressure', () => {
  const CHUNK = 16 * 1024;
  const LIMIT = 128 * 1024;

  /** Sends CHUNK-byte messages until one is dropped (or the connection is no longer open). */
  async function flood(conn: Connection): Promise<{ results: SendResult[]; maxBuffered: number }> {
    const results: SendResult[] = [];
    let maxBuffered = 0;
    for (let i = 0; i < 1000 && !results.includes('dropped'); i++) {
      results.push(conn.send(Buffer.alloc(CHUNK, i & 0xff), true));
      maxBuffered = Math.max(maxBuffered, conn.bufferedAmount);
      if (i % 4 === 3) await settle(1);
    }
    return { results, maxBuffered };
  }

  test("a peer that stops reading: 'sent', then 'queued', then 'dropped'; bounded; onDrain once it reads again", async () => {
    const c = open({ maxBackpressure: LIMIT });
    c.peer.pause();
    const { results, maxBuffered } = await flood(c.conn);
    assert.equal(results[0], 'sent');
    assert.ok(results.includes('queued'), `queued once the socket backed up: ${results.join(',')}`);
    assert.equal(results.at(-1), 'dropped');
    assert.equal(results.indexOf('queued') < results.indexOf('dropped'), true);
    assert.ok(maxBuffered <= LIMIT + CHUNK, `bounded: ${maxBuffered} <= ${LIMIT + CHUNK}`);
    assert.ok(c.conn.bufferedAmount > 0);
    assert.equal(c.drains, 0);
    assert.equal(c.conn.readyState, ReadyState.OPEN, "policy 'drop' keeps the connection");
    c.peer.resume();
    await settle(20);
    assert.equal(c.conn.bufferedAmount, 0);
    assert.equal(c.drains, 1, 'onDrain once the queue reached the transport');
    const delivered = (results.length - 1) * (CHUNK + 4);
    assert.equal(c.take().length / 2, delivered, 'every accepted message arrived, the dropped one did not');
    assert.equal(c.conn.send('again', false), 'sent');
  });

  test("policy 'close': the send over the limit fails the connection with 1008 after what was queued", async () => {
    const c = open({ maxBackpressure: LIMIT, backpressurePolicy: 'close' });
    c.peer.pause();
    const { results } = await flood(c.conn);
    assert.equal(results.at(-1), 'dropped');
    assert.equal(c.conn.readyState, ReadyState.CLOSING);
    c.peer.resume();
    await settle(20);
    const wire = c.take();
    assert.equal(wire.slice(-8), norm('88 02 03f0'), 'the close frame comes last, code 1008');
    assert.equal(wire.length / 2, (results.length - 1) * (CHUNK + 4) + 4, 'the queued messages went first');
    c.peer.end();
    await settle();
    assert.deepEqual(c.closes, [{ code: 1008, reason: '', error: 'WSMOD_ERR_BACKPRESSURE' }]);
  });

  test('a message is always accepted onto an empty queue, whatever its size', async () => {
    const c = open({ maxBackpressure: 10 });
    assert.equal(c.conn.send(Buffer.alloc(1000), true), 'sent');
    await settle();
    assert.equal(c.take().length / 2, 1000 + 4);
  });
});

// ---------------------------------------------------------------------------------------------------
// Write coalescing
// ---------------------------------------------------------------------------------------------------

describe('write coalescing', () => {
  test('the replies to the frames of one input chunk leave in one write', async () => {
    const c = open({}, { onMessage: (conn, data, isBinary) => void conn.send(data, isBinary) });
    const frames: Buffer[] = [];
    for (let i = 0; i < 50; i++) frames.push(masked(`81 02 ${txt(`m${i % 10}`)}`));
    frames.push(masked(`89 01 ${txt('p')}`));
    const before = c.socket.writes;
    await c.send(Buffer.concat(frames));
    assert.equal(c.messages.length, 50);
    assert.equal(c.socket.writes - before, 1, 'one write for 50 echoes and a pong');
    let expected = '';
    for (let i = 0; i < 50; i++) expected += norm(`81 02 ${txt(`m${i % 10}`)}`);
    assert.equal(c.take(), expected + norm(`8a 01 ${txt('p')}`), 'in order');
  });

  test('sends made in one turn outside a read leave together at the end of it', async () => {
    const c = open();
    const before = c.socket.writes;
    c.conn.send('a', false);
    c.conn.send(Buffer.from([1]), true);
    c.conn.ping('p');
    assert.equal(c.socket.writes, before, 'nothing written yet');
    await settle();
    assert.equal(c.socket.writes - before, 1);
    assert.equal(c.take(), norm(`81 01 ${txt('a')} 82 01 01 89 01 ${txt('p')}`));
  });

  test('a large payload goes with its header in one corked write, by reference', async () => {
    const c = open();
    const big = Buffer.alloc(100_000, 7);
    const before = c.socket.writes;
    c.conn.send('small', false);
    c.conn.send(big, true);
    await settle();
    assert.equal(c.socket.writes - before, 1, 'header and payload and the small frame in one writev');
    const wire = bytes(c.take());
    assert.equal(wire.subarray(0, 7).toString('hex'), norm(`81 05 ${txt('small')}`));
    assert.equal(wire.subarray(7, 11).toString('hex'), norm('82 7f 0000'), 'a 64-bit length follows');
    assert.equal(wire.length, 7 + 10 + big.length);
  });
});

// ---------------------------------------------------------------------------------------------------
// permessage-deflate (RFC 7692) with a pool of the test's own
// ---------------------------------------------------------------------------------------------------

describe('permessage-deflate', () => {
  const NO_TAKEOVER: DeflateParams = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
  /** A compressed message payload as a client without context takeover sends it (the tail removed). */
  const compressed = (data: Buffer): Buffer => deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);

  test('a plain message behind a compressed one waits its turn; both run through the given pool', async () => {
    const pool = new ZlibPool({ maxJobs: 1 });
    const c = open({ deflate: new DeflateCodec(NO_TAKEOVER, 'server', DEFAULT_DEFLATE, pool) });
    const big = Buffer.from('compressible '.repeat(100));
    const z = compressed(big);
    assert.ok(z.length < 126);
    // RFC 7692 §6: RSV1 marks the first frame of a compressed message.
    await c.send(Buffer.concat([masked(`c1 ${z.length.toString(16).padStart(2, '0')} ${z.toString('hex')}`), masked(`81 05 ${txt('plain')}`)]));
    await turnsUntil(() => c.messages.length === 2, 'both messages');
    assert.deepEqual(
      c.messages.map((m) => m.data),
      [big.toString(), 'plain'],
      'the plain message did not overtake the one being inflated',
    );
    assert.equal(pool.completed, 1, 'the inflate ran in the pool given to the codec');
    c.conn.terminate();
  });

  test('a message that inflates beyond maxMessageSize is 1009', async () => {
    const pool = new ZlibPool();
    const c = open({ maxMessageSize: 1000, deflate: new DeflateCodec(NO_TAKEOVER, 'server', DEFAULT_DEFLATE, pool) });
    const z = compressed(Buffer.alloc(1001, 0x61));
    await c.send(masked(`c1 ${z.length.toString(16).padStart(2, '0')} ${z.toString('hex')}`));
    await turnsUntil(() => c.wire() !== '', 'the close frame');
    assert.deepEqual(c.messages, []);
    assert.equal(c.take(), norm('88 02 03f1'));
    c.peer.end();
    await settle();
    assert.deepEqual(c.closes, [{ code: 1009, reason: '', error: 'WSMOD_ERR_MESSAGE_TOO_BIG' }]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Prepared messages (topic fan-out)
// ---------------------------------------------------------------------------------------------------

describe('sendPrepared (a message framed once for many connections)', () => {
  const NO_TAKEOVER: DeflateParams = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
  const TAKEOVER: DeflateParams = { ...NO_TAKEOVER, serverNoContextTakeover: false };

  test('the same frame bytes go to every connection, coalesced with their other output, in order', async () => {
    const message = new PreparedMessage('hi', false);
    assert.equal(message.frame.toString('hex'), norm(`81 02 ${txt('hi')}`));
    const a = open();
    const b = open();
    a.conn.send('before', false);
    assert.equal(a.conn.sendPrepared(message), 'sent');
    assert.equal(b.conn.sendPrepared(message), 'sent');
    a.conn.send(Buffer.from([9]), true);
    const before = a.socket.writes;
    await settle();
    assert.equal(a.socket.writes - before, 1, 'one write for the three frames');
    assert.equal(a.take(), norm(`81 06 ${txt('before')} 81 02 ${txt('hi')} 82 01 09`));
    assert.equal(b.take(), norm(`81 02 ${txt('hi')}`));
    const big = new PreparedMessage(Buffer.alloc(70_000, 1), true);
    a.conn.sendPrepared(big);
    await settle();
    assert.equal(a.take(), big.frame.toString('hex'), 'a large frame by reference, whole');
  });

  test('over maxBackpressure it is dropped without applying backpressurePolicy (the caller has its own)', async () => {
    const c = open({ maxBackpressure: 32 * 1024, backpressurePolicy: 'close' });
    c.peer.pause();
    const message = new PreparedMessage(Buffer.alloc(16 * 1024, 2), true);
    const results: SendResult[] = [];
    for (let i = 0; i < 1000 && !results.includes('dropped'); i++) {
      results.push(c.conn.sendPrepared(message));
      if (i % 2 === 1) await settle(1);
    }
    assert.equal(results.at(-1), 'dropped');
    assert.equal(c.conn.readyState, ReadyState.OPEN, 'not failed: the policy is the caller’s');
    c.peer.resume();
    await settle(20);
    assert.equal(c.drains, 1, 'onDrain follows, as for send');
    c.conn.terminate();
  });

  test('deflate without context takeover: compressed once, the compressed frame shared; order kept behind it', async () => {
    const pool = new ZlibPool();
    const conns = [0, 1, 2].map(() => open({ deflate: new DeflateCodec(NO_TAKEOVER, 'server', { ...DEFAULT_DEFLATE, threshold: 10 }, pool) }));
    const text = 'shared compression '.repeat(20);
    const message = new PreparedMessage(text, false);
    for (const c of conns) {
      c.conn.sendPrepared(message);
      c.conn.send('after', false);
    }
    await turnsUntil(() => conns.every((c) => c.wire().endsWith(norm(`81 05 ${txt('after')}`))), 'every connection wrote both');
    assert.equal(message.sharedCompressions, 1);
    assert.equal(pool.completed, 1, 'one zlib job for three connections');
    const wires = conns.map((c) => c.take());
    assert.equal(new Set(wires).size, 1, 'identical bytes on every connection');
    const wire = bytes(wires[0]!);
    assert.equal(wire[0], 0xc1, 'FIN, RSV1 (RFC 7692 §6), text');
    assert.ok(wire[1]! < 126, 'a short frame');
    const inflated = inflateRawSync(Buffer.concat([wire.subarray(2, 2 + wire[1]!), bytes('0000ffff')]), { finishFlush: constants.Z_SYNC_FLUSH });
    assert.equal(inflated.toString(), text);
    for (const c of conns) c.conn.terminate();
  });

  test('deflate with context takeover: each connection compresses the message itself', async () => {
    const pool = new ZlibPool();
    const conns = [0, 1].map(() => open({ deflate: new DeflateCodec(TAKEOVER, 'server', { ...DEFAULT_DEFLATE, threshold: 10 }, pool) }));
    const message = new PreparedMessage('own compression '.repeat(20), false);
    for (const c of conns) c.conn.sendPrepared(message);
    await turnsUntil(() => conns.every((c) => c.wire() !== ''), 'both wrote');
    assert.equal(message.sharedCompressions, 0);
    assert.equal(pool.completed, 2);
    for (const c of conns) c.conn.terminate();
  });
});
