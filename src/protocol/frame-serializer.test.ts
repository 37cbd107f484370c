import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { WsmodError } from '../errors.ts';
import { FrameParser } from './frame-parser.ts';
import type { FrameParserOptions } from './frame-parser.ts';
import { encodeClosePayload, encodeFrame, frameHeaderSize, writeFrameHeader } from './frame-serializer.ts';
import { prng } from '../prng.ts';

const CONT = 0x0;
const TEXT = 0x1;
const BIN = 0x2;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

function hex(s: string): string {
  return s.replace(/\s+/g, '').toLowerCase();
}


function randomBuffer(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

function isInvalidClose(err: unknown): boolean {
  return err instanceof WsmodError && err.code === 'WSMOD_ERR_INVALID_CLOSE';
}

/** Parses `wire` (whole, then byte by byte) and returns the events, as strings. */
function parseAll(wire: Buffer, options: FrameParserOptions): string[] {
  const runs: string[][] = [];
  for (const bytewise of [false, true]) {
    const events: string[] = [];
    const parser = new FrameParser(
      {
        onMessage: (data, isBinary) => events.push(`${isBinary ? 'binary' : 'text'} ${data.toString('hex')}`),
        onPing: (data) => events.push(`ping ${data.toString('hex')}`),
        onPong: (data) => events.push(`pong ${data.toString('hex')}`),
        onClose: (code, reason) => events.push(`close ${code} ${reason.toString('hex')}`),
      },
      options,
    );
    const copy = Buffer.from(wire); // the parser unmasks in place
    if (bytewise) for (let i = 0; i < copy.length; i++) parser.push(copy.subarray(i, i + 1));
    else parser.push(copy);
    runs.push(events);
  }
  assert.deepEqual(runs[1], runs[0], 'whole and byte-by-byte parses differ');
  return runs[0]!;
}

describe('frameHeaderSize', () => {
  test('minimal length encoding sizes, masked and not', () => {
    const cases: ReadonlyArray<readonly [number, number]> = [
      [0, 2],
      [1, 2],
      [125, 2],
      [126, 4],
      [127, 4],
      [65535, 4],
      [65536, 10],
      [2 ** 32, 10],
      [Number.MAX_SAFE_INTEGER, 10],
    ];
    for (const [length, size] of cases) {
      assert.equal(frameHeaderSize(length, false), size, `length ${length}`);
      assert.equal(frameHeaderSize(length, true), size + 4, `length ${length} masked`);
    }
  });
});

describe('writeFrameHeader', () => {
  const header = (init: Parameters<typeof writeFrameHeader>[2]): string => {
    const target = Buffer.alloc(20, 0xee);
    const n = writeFrameHeader(target, 3, init);
    assert.equal(n, frameHeaderSize(init.length, init.maskKey !== undefined));
    assert.equal(target.subarray(0, 3).toString('hex'), 'eeeeee', 'wrote before the offset');
    assert.ok(target.subarray(3 + n).every((b) => b === 0xee), 'wrote past the header');
    return target.subarray(3, 3 + n).toString('hex');
  };

  test('7-bit lengths up to 125', () => {
    assert.equal(header({ opcode: TEXT, fin: true, length: 0 }), hex('81 00'));
    assert.equal(header({ opcode: TEXT, fin: true, length: 5 }), hex('81 05'));
    assert.equal(header({ opcode: BIN, fin: true, length: 125 }), hex('82 7d'));
  });

  test('16-bit lengths from 126 to 65535', () => {
    assert.equal(header({ opcode: BIN, fin: true, length: 126 }), hex('82 7e 007e'));
    assert.equal(header({ opcode: BIN, fin: true, length: 256 }), hex('82 7e 0100'));
    assert.equal(header({ opcode: BIN, fin: true, length: 65535 }), hex('82 7e ffff'));
  });

  test('64-bit lengths from 65536', () => {
    assert.equal(header({ opcode: BIN, fin: true, length: 65536 }), hex('82 7f 0000000000010000'));
    assert.equal(header({ opcode: BIN, fin: true, length: 2 ** 32 + 5 }), hex('82 7f 0000000100000005'));
    assert.equal(header({ opcode: BIN, fin: true, length: Number.MAX_SAFE_INTEGER }), hex('82 7f 001fffffffffffff'));
  });

  test('FIN, RSV bits, opcode and mask key', () => {
    assert.equal(header({ opcode: TEXT, fin: false, length: 3 }), hex('01 03'));
    assert.equal(header({ opcode: CONT, fin: true, length: 2 }), hex('80 02'));
    assert.equal(header({ opcode: TEXT, fin: true, rsv: 0x40, length: 1 }), hex('c1 01'));
    assert.equal(header({ opcode: BIN, fin: false, rsv: 0x70, length: 0 }), hex('72 00'));
    assert.equal(header({ opcode: PING, fin: true, length: 0 }), hex('89 00'));
    const maskKey = Buffer.from('37fa213d', 'hex');
    assert.equal(header({ opcode: TEXT, fin: true, length: 5, maskKey }), hex('81 85 37fa213d'));
    assert.equal(header({ opcode: BIN, fin: true, length: 126, maskKey }), hex('82 fe 007e 37fa213d'));
    assert.equal(header({ opcode: BIN, fin: true, length: 65536, maskKey }), hex('82 ff 0000000000010000 37fa213d'));
  });
});

describe('encodeFrame', () => {
  test('RFC 6455 §5.7 examples', () => {
    assert.equal(encodeFrame({ opcode: TEXT, fin: true }, Buffer.from('Hello')).toString('hex'), hex('81 05 48656c6c6f'));
    const maskKey = Buffer.from('37fa213d', 'hex');
    assert.equal(encodeFrame({ opcode: TEXT, fin: true, maskKey }, Buffer.from('Hello')).toString('hex'), hex('81 85 37fa213d 7f9f4d5158'));
    assert.equal(encodeFrame({ opcode: TEXT, fin: false }, Buffer.from('Hel')).toString('hex'), hex('01 03 48656c'));
    assert.equal(encodeFrame({ opcode: CONT, fin: true }, Buffer.from('lo')).toString('hex'), hex('80 02 6c6f'));
    assert.equal(encodeFrame({ opcode: PING, fin: true }, Buffer.from('Hello')).toString('hex'), hex('89 05 48656c6c6f'));
    assert.equal(encodeFrame({ opcode: PONG, fin: true, maskKey }, Buffer.from('Hello')).toString('hex'), hex('8a 85 37fa213d 7f9f4d5158'));
    const big = Buffer.alloc(256, 0x42);
    assert.equal(encodeFrame({ opcode: BIN, fin: true }, big).toString('hex'), hex('82 7e 0100') + big.toString('hex'));
  });

  test('minimal length encoding at the boundaries: 125, 126, 65535, 65536', () => {
    const cases: ReadonlyArray<readonly [number, string]> = [
      [125, '827d'],
      [126, '827e007e'],
      [65535, '827effff'],
      [65536, '827f0000000000010000'],
    ];
    for (const [n, prefix] of cases) {
      const payload = Buffer.alloc(n, 7);
      const frame = encodeFrame({ opcode: BIN, fin: true }, payload);
      assert.equal(frame.length, prefix.length / 2 + n);
      assert.equal(frame.subarray(0, prefix.length / 2).toString('hex'), prefix);
      assert.ok(frame.subarray(prefix.length / 2).equals(payload));
    }
  });

  test('never modifies the caller\'s payload', () => {
    const payload = Buffer.from('do not touch');
    const copy = Buffer.from(payload);
    encodeFrame({ opcode: TEXT, fin: true, maskKey: Buffer.from('ffffffff', 'hex') }, payload);
    assert.ok(payload.equals(copy));
  });

  test('masked frames round-trip through FrameParser in the server role', () => {
    const rand = prng(11);
    for (const n of [0, 1, 2, 3, 4, 5, 31, 32, 33, 125, 126, 127, 1000, 65535, 65536, 70000]) {
      const payload = randomBuffer(rand, n);
      const maskKey = randomBuffer(rand, 4);
      const wire = encodeFrame({ opcode: BIN, fin: true, maskKey }, payload);
      assert.deepEqual(parseAll(wire, { role: 'server', maxMessageSize: 1 << 20 }), [`binary ${payload.toString('hex')}`], `n=${n}`);
      // Unmasked frames round-trip in the client role.
      const plain = encodeFrame({ opcode: BIN, fin: true }, payload);
      assert.deepEqual(parseAll(plain, { role: 'client', maxMessageSize: 1 << 20 }), [`binary ${payload.toString('hex')}`], `n=${n}`);
    }
  });

  test('text, fragmented, control and close frames round-trip', () => {
    const rand = prng(12);
    const key = (): Buffer => randomBuffer(rand, 4);
    const text = Buffer.from('héllo wörld €😀', 'utf8');
    const wire = Buffer.concat([
      encodeFrame({ opcode: TEXT, fin: false, maskKey: key() }, text.subarray(0, 5)),
      encodeFrame({ opcode: PING, fin: true, maskKey: key() }, Buffer.from('p')),
      encodeFrame({ opcode: CONT, fin: false, maskKey: key() }, text.subarray(5, 14)),
      encodeFrame({ opcode: PONG, fin: true, maskKey: key() }, Buffer.alloc(0)),
      encodeFrame({ opcode: CONT, fin: true, maskKey: key() }, text.subarray(14)),
      encodeFrame({ opcode: TEXT, fin: true, maskKey: key() }, Buffer.alloc(0)),
      encodeFrame({ opcode: PING, fin: true, maskKey: key() }, Buffer.alloc(125, 1)),
      encodeFrame({ opcode: CLOSE, fin: true, maskKey: key() }, encodeClosePayload(4001, 'bye €')),
    ]);
    assert.deepEqual(parseAll(wire, { role: 'server', maxMessageSize: 1000 }), [
      'ping 70',
      'pong ',
      `text ${text.toString('hex')}`,
      'text ',
      `ping ${'01'.repeat(125)}`,
      `close 4001 ${Buffer.from('bye €').toString('hex')}`,
    ]);
  });

  test('RSV bits set by the caller reach the wire and pass a parser that allows them', () => {
    const wire = encodeFrame({ opcode: TEXT, fin: true, rsv: 0x40, maskKey: Buffer.from('01020304', 'hex') }, Buffer.from('x'));
    assert.equal(wire[0], 0xc1);
    assert.deepEqual(parseAll(wire, { role: 'server', maxMessageSize: 10, allowedRsv: 0x40 }), ['text 78']);
  });
});

describe('encodeClosePayload', () => {
  test('no code gives an empty payload', () => {
    assert.equal(encodeClosePayload().length, 0);
    assert.equal(encodeClosePayload(undefined, '').length, 0);
  });

  test('a code and a reason', () => {
    assert.equal(encodeClosePayload(1000).toString('hex'), '03e8');
    assert.equal(encodeClosePayload(1000, 'bye').toString('hex'), '03e8' + Buffer.from('bye').toString('hex'));
    assert.equal(encodeClosePayload(4999, 'é').toString('hex'), '1387c3a9');
    assert.equal(encodeClosePayload(3000, '').toString('hex'), '0bb8');
  });

  test('every sendable code is accepted and round-trips through the parser', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
      const payload = encodeClosePayload(code, 'reason');
      assert.equal(payload.readUInt16BE(0), code);
      const wire = encodeFrame({ opcode: CLOSE, fin: true, maskKey: Buffer.from('a1b2c3d4', 'hex') }, payload);
      assert.deepEqual(parseAll(wire, { role: 'server', maxMessageSize: 0 }), [`close ${code} ${Buffer.from('reason').toString('hex')}`]);
    }
  });

  test('invalid codes are rejected with WSMOD_ERR_INVALID_CLOSE', () => {
    for (const code of [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535, 65536, -1, 1000.5, NaN, Infinity]) {
      assert.throws(() => encodeClosePayload(code), isInvalidClose, `code ${code}`);
      assert.throws(() => encodeClosePayload(code, 'why'), isInvalidClose, `code ${code}`);
    }
  });

  test('reasons longer than 123 bytes are rejected with WSMOD_ERR_INVALID_CLOSE', () => {
    assert.equal(encodeClosePayload(1000, 'x'.repeat(123)).length, 125);
    assert.equal(encodeClosePayload(1000, '€'.repeat(41)).length, 125);
    assert.throws(() => encodeClosePayload(1000, 'x'.repeat(124)), isInvalidClose);
    assert.throws(() => encodeClosePayload(1000, 'x'.repeat(122) + 'é'), isInvalidClose); // 124 bytes
    assert.throws(() => encodeClosePayload(1000, '€'.repeat(42)), isInvalidClose);
    assert.throws(() => encodeClosePayload(1000, 'x'.repeat(1000)), isInvalidClose);
  });

  test('a reason without a code is rejected with WSMOD_ERR_INVALID_CLOSE', () => {
    assert.throws(() => encodeClosePayload(undefined, 'why'), isInvalidClose);
  });
});
