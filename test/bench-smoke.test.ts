// The benchmark's frame code (bench/frames.ts), checked for correctness only: the load generator's
// masked frames must be what a strict parser accepts, its header-only reader must find every server
// frame, and the minimal echo must answer like an echo server. Nothing here measures speed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constants, inflateRawSync } from 'node:zlib';
import {
  FrameCounter,
  MinimalEcho,
  Op,
  acceptKey,
  closeFrame,
  compressedFrame,
  fragmentedMessage,
  frameBatch,
  jsonText,
  maskKey,
  maskedFrame,
  upgradeRequest,
  xorMask,
} from '../bench/frames.ts';
import { FrameParser } from '../src/protocol/frame-parser.ts';
import { encodeFrame } from '../src/protocol/frame-serializer.ts';
import { parseServerFrames } from './helpers.ts';

/** Parses client frames with wsmod's own (server-role) parser: what arrives, in order. */
function parseClientFrames(bytes: Buffer, chunk = bytes.length): Array<{ kind: string; data: Buffer; binary?: boolean }> {
  const got: Array<{ kind: string; data: Buffer; binary?: boolean }> = [];
  const parser = new FrameParser(
    {
      onMessage: (data, binary) => got.push({ kind: 'message', data: Buffer.from(data), binary }),
      onPing: (data) => got.push({ kind: 'ping', data: Buffer.from(data) }),
      onPong: (data) => got.push({ kind: 'pong', data: Buffer.from(data) }),
      onClose: (code, reason) => got.push({ kind: 'close', data: Buffer.concat([Buffer.from([code >> 8, code & 0xff]), reason]) }),
    },
    { role: 'server', maxMessageSize: 4 * 1024 * 1024 },
  );
  // The parser unmasks in place: it gets copies, so the caller's frames stay as built.
  for (let i = 0; i < bytes.length; i += chunk) parser.push(Buffer.from(bytes.subarray(i, Math.min(bytes.length, i + chunk))));
  return got;
}

function text(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => 'abcdefghij'.charCodeAt(i % 10)));
}

describe('bench frames (correctness only)', () => {
  it('mask keys are never zero', () => {
    for (let i = 0; i < 200; i++) {
      const key = maskKey();
      assert.equal(key.length, 4);
      assert.ok(!key.includes(0));
    }
  });

  it('xorMask undoes itself at any length and alignment', () => {
    const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    for (const offset of [0, 1, 2, 3]) {
      for (const length of [0, 1, 5, 63, 64, 65, 200]) {
        const backing = Buffer.from(Array.from({ length: length + offset }, (_, i) => (i * 7) & 0xff));
        const original = Buffer.from(backing);
        xorMask(backing, offset, length, key, 0);
        if (length > 0) assert.notDeepEqual(backing.subarray(offset), original.subarray(offset));
        for (let i = 0; i < length; i++) assert.equal(backing[offset + i], original[offset + i]! ^ key[i % 4]!);
        xorMask(backing, offset, length, key, 0);
        assert.deepEqual(backing, original);
      }
    }
  });

  it('masked frames of every length encoding parse back with a strict parser', () => {
    for (const n of [0, 1, 32, 125, 126, 65535, 65536, 70000]) {
      const payload = text(n);
      const frame = maskedFrame(Op.TEXT, payload);
      assert.equal(frame[1]! & 0x80, 0x80, 'mask bit set');
      const got = parseClientFrames(frame);
      assert.equal(got.length, 1);
      assert.equal(got[0]!.kind, 'message');
      assert.deepEqual(got[0]!.data, payload);
    }
  });

  it('a batch is that many messages, whole or byte by byte', () => {
    const batch = frameBatch(5, Op.BINARY, Buffer.from([1, 2, 3]));
    for (const chunk of [batch.length, 1, 7]) {
      const got = parseClientFrames(batch, chunk);
      assert.equal(got.length, 5);
      for (const g of got) {
        assert.equal(g.binary, true);
        assert.deepEqual(g.data, Buffer.from([1, 2, 3]));
      }
    }
  });

  it('a message in 1-byte fragments reassembles to the original', () => {
    const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 31 + 11) & 0xff));
    const wire = fragmentedMessage(Op.BINARY, payload, 1);
    assert.equal(wire.length, 300 * 7);
    const got = parseClientFrames(wire, 64);
    assert.equal(got.length, 1);
    assert.deepEqual(got[0]!.data, payload);
  });

  it('a compressed frame has RSV1 set and inflates back to the message (RFC 7692 §7.2.2)', () => {
    const text = jsonText(4096, 3);
    assert.equal(text.length, 4096);
    const frame = compressedFrame(Op.TEXT, text);
    assert.equal(frame[0], 0x80 | 0x40 | Op.TEXT);
    const len7 = frame[1]! & 0x7f;
    const at = len7 === 126 ? 8 : 6;
    const body = Buffer.from(frame.subarray(at));
    xorMask(body, 0, body.length, frame, at - 4);
    assert.deepEqual(inflateRawSync(Buffer.concat([body, Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH }), text);
    assert.ok(body.length < text.length / 2, 'JSON text compresses');
  });

  it('close frame and upgrade request are well formed', () => {
    const got = parseClientFrames(closeFrame(1000));
    assert.deepEqual(got, [{ kind: 'close', data: Buffer.from([0x03, 0xe8]) }]);
    const req = upgradeRequest(1234).toString('latin1');
    assert.match(req, /^GET \/echo HTTP\/1\.1\r\n/);
    assert.match(req, /\r\nSec-WebSocket-Version: 13\r\n/);
    assert.ok(req.endsWith('\r\n\r\n'));
    assert.match(upgradeRequest(1234, '/echo', undefined, 'permessage-deflate').toString('latin1'), /\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n$/);
    assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='); // RFC 6455 §1.3
  });

  it('FrameCounter finds every server frame by its header, in any chunking', () => {
    const sizes = [0, 1, 125, 126, 65535, 65536, 70000];
    const wire = Buffer.concat([
      ...sizes.map((n) => encodeFrame({ opcode: Op.BINARY, fin: true }, Buffer.alloc(n, 1))),
      encodeFrame({ opcode: Op.PING, fin: true }, Buffer.from('hi')),
      encodeFrame({ opcode: Op.TEXT, fin: false }, Buffer.from('a')),
      encodeFrame({ opcode: Op.CONTINUATION, fin: true }, Buffer.from('b')),
    ]);
    for (const chunk of [wire.length, 1, 3, 1000]) {
      const seen: Array<[number, boolean, number, string | undefined]> = [];
      const counter = new FrameCounter((opcode, fin, length, control) => seen.push([opcode, fin, length, control?.toString()]));
      for (let i = 0; i < wire.length; i += chunk) {
        const part = wire.subarray(i, Math.min(wire.length, i + chunk));
        // Also through an offset view, as the generator reads into a shared buffer.
        const padded = Buffer.concat([Buffer.alloc(5), part, Buffer.alloc(3)]);
        counter.push(padded, 5, 5 + part.length);
      }
      assert.deepEqual(seen, [
        ...sizes.map((n): [number, boolean, number, string | undefined] => [Op.BINARY, true, n, undefined]),
        [Op.PING, true, 2, 'hi'],
        [Op.TEXT, false, 1, undefined],
        [Op.CONTINUATION, true, 1, undefined],
      ]);
    }
  });

  it('MinimalEcho echoes messages, fragments, pings and close, in any chunking, one output per push', () => {
    const wire = Buffer.concat([
      maskedFrame(Op.TEXT, Buffer.from('hello')),
      maskedFrame(Op.BINARY, Buffer.alloc(70000, 7)),
      fragmentedMessage(Op.TEXT, Buffer.from('fragmented text'), 2),
      maskedFrame(Op.PING, Buffer.from('p')),
      closeFrame(1000),
    ]);
    for (const chunk of [wire.length, 1, 5, 4096]) {
      const echo = new MinimalEcho();
      const out: Buffer[] = [];
      for (let i = 0; i < wire.length; i += chunk) out.push(...echo.push(Buffer.from(wire.subarray(i, Math.min(wire.length, i + chunk)))));
      const frames = parseServerFrames(Buffer.concat(out));
      assert.deepEqual(
        frames.map((f) => [f.opcode, f.fin, f.payload.length]),
        [
          [Op.TEXT, true, 5],
          [Op.BINARY, true, 70000],
          [Op.TEXT, true, 15],
          [Op.PONG, true, 1],
          [Op.CLOSE, true, 2],
        ],
      );
      assert.equal(frames[0]!.payload.toString(), 'hello');
      assert.ok(frames[1]!.payload.every((b) => b === 7));
      assert.equal(frames[2]!.payload.toString(), 'fragmented text');
      assert.equal(echo.fatal, 'close');
    }
  });

  it('MinimalEcho refuses unmasked frames and invalid UTF-8', () => {
    const unmasked = new MinimalEcho();
    unmasked.push(encodeFrame({ opcode: Op.TEXT, fin: true }, Buffer.from('x')));
    assert.equal(unmasked.fatal, 'error');
    const badText = new MinimalEcho();
    assert.deepEqual(badText.push(maskedFrame(Op.TEXT, Buffer.from([0xff, 0xfe]))), []);
    assert.equal(badText.fatal, 'error');
  });
});
