import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { WsmodError } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import { FrameParser } from './frame-parser.ts';
import type { FrameHandler, FrameParserOptions } from './frame-parser.ts';
import { prng, prngBytes } from '../prng.ts';
import { bytes, norm, txt } from '../../test/hex.ts';

// ---------------------------------------------------------------------------------------------------
// Helpers: frames as hex strings, a parser driver that feeds every input in several chunkings.
// ---------------------------------------------------------------------------------------------------

const CONT = 0x0;
const TEXT = 0x1;
const BIN = 0x2;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;


function byteHex(b: number): string {
  return b.toString(16).padStart(2, '0');
}


function randomHex(rand: () => number, n: number): string {
  return prngBytes(rand, n).toString('hex');
}

/**
 * One frame as hex, built independently of the serializer: FIN, RSV bits (already shifted, e.g. 0x40),
 * opcode, payload (hex) and mask key (hex, 4 bytes; `null` for an unmasked frame). Uses the minimal
 * length encoding.
 */
function frame(fin: boolean, rsv: number, opcode: number, payloadHex: string, maskKeyHex: string | null = '37fa213d'): string {
  const payload = bytes(payloadHex);
  const n = payload.length;
  const maskBit = maskKeyHex === null ? 0 : 0x80;
  let out = byteHex((fin ? 0x80 : 0) | rsv | opcode);
  if (n < 126) out += byteHex(maskBit | n);
  else if (n <= 0xffff) out += byteHex(maskBit | 126) + n.toString(16).padStart(4, '0');
  else out += byteHex(maskBit | 127) + n.toString(16).padStart(16, '0');
  if (maskKeyHex !== null) {
    const key = bytes(maskKeyHex);
    assert.equal(key.length, 4, 'mask key must be 4 bytes');
    for (let i = 0; i < n; i++) payload[i] = payload[i]! ^ key[i & 3]!;
    out += norm(maskKeyHex);
  }
  return out + payload.toString('hex');
}

/** A masked frame (what clients send; parsed in the server role). */
function masked(fin: boolean, rsv: number, opcode: number, payloadHex: string, maskKeyHex = '37fa213d'): string {
  return frame(fin, rsv, opcode, payloadHex, maskKeyHex);
}

/** An unmasked frame (what servers send; parsed in the client role). */
function unmasked(fin: boolean, rsv: number, opcode: number, payloadHex: string): string {
  return frame(fin, rsv, opcode, payloadHex, null);
}

/** Byte length of a hex string. */
function len(hex: string): number {
  return norm(hex).length / 2;
}

// Events, as compact strings so failures diff readably.
const evText = (s: string): string => `text ${txt(s)}`;
const evTextHex = (hex: string): string => `text ${norm(hex)}`;
const evBin = (hex: string): string => `binary ${norm(hex)}`;
const evPing = (hex = ''): string => `ping ${norm(hex)}`;
const evPong = (hex = ''): string => `pong ${norm(hex)}`;
const evClose = (code: number, reasonHex = ''): string => `close ${code} ${norm(reasonHex)}`;

interface ParseError {
  readonly code: ErrorCode;
  readonly closeCode: number | undefined;
}

/** The outcome of feeding one input in one chunking. */
interface ModeResult {
  readonly mode: string;
  readonly events: readonly string[];
  readonly error: ParseError | null;
  /** [start, end) of the input bytes pushed by the push() call that threw. */
  readonly errorChunk: readonly [number, number] | null;
  readonly stopped: boolean;
}

const DEFAULTS: FrameParserOptions = { role: 'server', maxMessageSize: 1 << 20 };

function recordingHandler(events: string[]): FrameHandler {
  return {
    onMessage(data, isBinary) {
      assert.ok(Buffer.isBuffer(data));
      events.push(`${isBinary ? 'binary' : 'text'} ${data.toString('hex')}`);
    },
    onPing(data) {
      events.push(`ping ${data.toString('hex')}`);
    },
    onPong(data) {
      events.push(`pong ${data.toString('hex')}`);
    },
    onClose(code, reason) {
      events.push(`close ${code} ${reason.toString('hex')}`);
    },
  };
}

/** Feeds `input` in chunks of the given sizes; every chunk is a fresh Buffer (the parser unmasks in place). */
function runMode(mode: string, input: Buffer, sizes: readonly number[], options: FrameParserOptions): ModeResult {
  const events: string[] = [];
  const parser = new FrameParser(recordingHandler(events), options);
  let offset = 0;
  let error: ParseError | null = null;
  let errorChunk: readonly [number, number] | null = null;
  for (const size of sizes) {
    const chunk = Buffer.from(input.subarray(offset, offset + size));
    try {
      parser.push(chunk);
    } catch (err) {
      if (!(err instanceof WsmodError)) throw err;
      error = { code: err.code, closeCode: err.closeCode };
      errorChunk = [offset, offset + size];
      offset += size;
      break;
    }
    offset += size;
  }
  if (error !== null) {
    // After a violation the parser is stopped: the rest of the input (and more) is ignored silently.
    assert.equal(parser.stopped, true, `${mode}: parser not stopped after ${error.code}`);
    const eventsAtError = events.length;
    parser.push(Buffer.from(input.subarray(offset)));
    parser.push(bytes(masked(true, 0, TEXT, txt('after')) + unmasked(true, 0, TEXT, txt('after'))));
    assert.equal(events.length, eventsAtError, `${mode}: events after the error`);
  } else {
    assert.equal(offset, input.length);
  }
  return { mode, events, error, errorChunk, stopped: parser.stopped };
}

/** Chunk sizes for a random chunking of `n` bytes, chunks of 1..maxChunk bytes. */
function randomSizes(n: number, seed: number, maxChunk: number): number[] {
  const rand = prng(seed);
  const sizes: number[] = [];
  let left = n;
  while (left > 0) {
    const s = Math.min(left, 1 + Math.floor(rand() * maxChunk));
    sizes.push(s);
    left -= s;
  }
  return sizes;
}

/** Every chunking used: whole, byte by byte, three random ones, and (small inputs) every 2-way split. */
function chunkings(n: number): Array<readonly [string, number[]]> {
  const out: Array<readonly [string, number[]]> = [
    ['whole', n === 0 ? [] : [n]],
    ['bytewise', new Array<number>(n).fill(1)],
    ['random(1..7)', randomSizes(n, 0x5eed1 + n, 7)],
    ['random(1..40)', randomSizes(n, 0x5eed2 + n, 40)],
    ['random(1..n/2)', randomSizes(n, 0x5eed3 + n, Math.max(1, n >> 1))],
  ];
  if (n <= 300) {
    for (let k = 1; k < n; k++) out.push([`split@${k}`, [k, n - k]]);
  }
  return out;
}

/** Feeds `hex` to a fresh parser in every chunking; returns each mode's outcome. */
function runParser(hex: string, options: Partial<FrameParserOptions> = {}): ModeResult[] {
  const input = bytes(hex);
  const opts: FrameParserOptions = { ...DEFAULTS, ...options };
  return chunkings(input.length).map(([mode, sizes]) => runMode(mode, input, sizes, opts));
}

interface Outcome {
  readonly events: readonly string[];
  readonly error: ParseError | null;
  readonly stopped: boolean;
  /** Index of the byte whose push threw, in byte-by-byte mode; null without an error. */
  readonly throwAt: number | null;
}

/**
 * Runs every chunking and asserts they agree: same events, same error (code and close code), and the
 * error thrown by the push of the chunk holding the byte at which byte-by-byte parsing threw (fail-fast
 * is independent of chunking).
 */
function parse(hex: string, options: Partial<FrameParserOptions> = {}): Outcome {
  const results = runParser(hex, options);
  const bytewise = results.find((r) => r.mode === 'bytewise')!;
  const throwAt = bytewise.errorChunk === null ? null : bytewise.errorChunk[0];
  for (const r of results) {
    assert.deepEqual(
      { events: r.events, error: r.error, stopped: r.stopped },
      { events: bytewise.events, error: bytewise.error, stopped: bytewise.stopped },
      `mode ${r.mode} disagrees with bytewise`,
    );
    if (throwAt !== null) {
      const [start, end] = r.errorChunk!;
      assert.ok(start <= throwAt && throwAt < end, `mode ${r.mode}: threw on chunk [${start}, ${end}), bytewise at ${throwAt}`);
    }
  }
  return { events: bytewise.events, error: bytewise.error, stopped: bytewise.stopped, throwAt };
}

/** Asserts the input parses without error into exactly `events`. */
function expectEvents(hex: string, events: readonly string[], options: Partial<FrameParserOptions> = {}): Outcome {
  const out = parse(hex, options);
  assert.equal(out.error, null, `unexpected error ${out.error?.code}`);
  assert.deepEqual(out.events, events);
  return out;
}

interface FailExpectation {
  readonly options?: Partial<FrameParserOptions>;
  /** Byte index at which byte-by-byte parsing must throw. */
  readonly at?: number;
  /** Events delivered before the error (default none). */
  readonly events?: readonly string[];
}

/** Asserts the input fails with `code`/`closeCode` in every chunking. */
function expectError(hex: string, code: ErrorCode, closeCode: number, expect: FailExpectation = {}): Outcome {
  const out = parse(hex, expect.options ?? {});
  assert.deepEqual(out.error, { code, closeCode });
  assert.deepEqual(out.events, expect.events ?? []);
  assert.equal(out.stopped, true);
  if (expect.at !== undefined) assert.equal(out.throwAt, expect.at, `${code} thrown at byte ${out.throwAt}, expected ${expect.at}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------

describe('test helpers', () => {
  test('frame() reproduces the RFC 6455 §5.7 masked "Hello"', () => {
    assert.equal(masked(true, 0, TEXT, txt('Hello'), '37fa213d'), norm('81 85 37fa213d 7f9f4d5158'));
    assert.equal(unmasked(true, 0, TEXT, txt('Hello')), norm('81 05 48656c6c6f'));
    assert.equal(unmasked(false, 0, TEXT, txt('Hel')), norm('01 03 48656c'));
    assert.equal(unmasked(true, 0, CONT, txt('lo')), norm('80 02 6c6f'));
  });

  test('frame() uses 7-, 16- and 64-bit lengths', () => {
    assert.equal(unmasked(true, 0, BIN, '00'.repeat(125)).slice(0, 4), '827d');
    assert.equal(unmasked(true, 0, BIN, '00'.repeat(126)).slice(0, 8), '827e007e');
    assert.equal(unmasked(true, 0, BIN, '00'.repeat(65535)).slice(0, 8), '827effff');
    assert.equal(unmasked(true, 0, BIN, '00'.repeat(65536)).slice(0, 20), '827f0000000000010000');
    assert.equal(masked(true, 0x40, BIN, '', '01020304'), 'c28001020304');
  });

  test('runParser feeds whole, byte by byte, randomly chunked and split at every position', () => {
    const modes = runParser(masked(true, 0, TEXT, txt('Hi'))).map((r) => r.mode);
    for (const m of ['whole', 'bytewise', 'random(1..7)', 'random(1..40)', 'random(1..n/2)', 'split@1', 'split@7']) {
      assert.ok(modes.includes(m), m);
    }
  });
});

describe('RFC 6455 §5.7 examples', () => {
  test('a single-frame unmasked text message (client role)', () => {
    expectEvents('81 05 48656c6c6f', [evText('Hello')], { role: 'client' });
  });

  test('a single-frame masked text message (server role)', () => {
    expectEvents('81 85 37fa213d 7f9f4d5158', [evText('Hello')]);
  });

  test('a fragmented unmasked text message (client role)', () => {
    expectEvents('01 03 48656c 80 02 6c6f', [evText('Hello')], { role: 'client' });
  });

  test('the same fragmented message, masked (server role)', () => {
    expectEvents(masked(false, 0, TEXT, txt('Hel')) + masked(true, 0, CONT, txt('lo'), 'ffffffff'), [evText('Hello')]);
  });

  test('unmasked Ping request and masked Ping response', () => {
    expectEvents('89 05 48656c6c6f', [evPing(txt('Hello'))], { role: 'client' });
    expectEvents('8a 85 37fa213d 7f9f4d5158', [evPong(txt('Hello'))]);
  });

  test('256 bytes binary message in a single unmasked frame', () => {
    const payload = randomHex(prng(256), 256);
    expectEvents(`82 7E 0100 ${payload}`, [evBin(payload)], { role: 'client' });
    expectEvents(masked(true, 0, BIN, payload, '9a8b7c6d'), [evBin(payload)]);
  });

  test('64KiB binary message in a single unmasked frame', () => {
    const payload = randomHex(prng(65536), 65536);
    expectEvents(`82 7F 0000000000010000 ${payload}`, [evBin(payload)], { role: 'client' });
    expectEvents(masked(true, 0, BIN, payload, '01234567'), [evBin(payload)]);
  });
});

describe('masking (RFC 6455 §5.1)', () => {
  test('server role: every unmasked client frame is 1002 WSMOD_ERR_UNMASKED_FRAME at the 2nd byte', () => {
    for (const hex of [
      unmasked(true, 0, TEXT, txt('Hello')),
      unmasked(true, 0, BIN, '0102'),
      unmasked(true, 0, TEXT, ''),
      unmasked(true, 0, PING, ''),
      unmasked(true, 0, PONG, '01'),
      unmasked(true, 0, CLOSE, '03e8'),
      unmasked(false, 0, TEXT, txt('frag')),
      unmasked(true, 0, BIN, '00'.repeat(300)),
    ]) {
      expectError(hex, 'WSMOD_ERR_UNMASKED_FRAME', 1002, { at: 1 });
    }
  });

  test('server role: an unmasked continuation after a masked first fragment is rejected', () => {
    const first = masked(false, 0, TEXT, txt('Hel'));
    expectError(first + unmasked(true, 0, CONT, txt('lo')), 'WSMOD_ERR_UNMASKED_FRAME', 1002, { at: len(first) + 1 });
  });

  test('client role: every masked server frame is 1002 WSMOD_ERR_MASKED_FRAME at the 2nd byte', () => {
    for (const hex of [
      masked(true, 0, TEXT, txt('Hello')),
      masked(true, 0, BIN, ''),
      masked(true, 0, PING, '01'),
      masked(true, 0, CLOSE, '03e8'),
      masked(true, 0, BIN, '00'.repeat(70000)),
    ]) {
      expectError(hex, 'WSMOD_ERR_MASKED_FRAME', 1002, { at: 1, options: { role: 'client' } });
    }
  });

  test('any mask key is accepted and the payload unmasked correctly, whatever the chunking', () => {
    const rand = prng(7);
    for (const key of ['00000000', 'ffffffff', '37fa213d', '01020304', randomHex(rand, 4), randomHex(rand, 4)]) {
      for (const n of [1, 3, 4, 5, 31, 32, 33, 100, 1000]) {
        const payload = randomHex(rand, n);
        expectEvents(masked(true, 0, BIN, payload, key), [evBin(payload)]);
      }
    }
  });

  test('the mask key of each frame applies from that frame\'s first payload byte', () => {
    const parts = ['010203', '0405060708', '090a'];
    const hex =
      masked(false, 0, BIN, parts[0]!, '11223344') +
      masked(true, 0, PING, 'aabbcc', '55667788') +
      masked(false, 0, CONT, parts[1]!, '99aabbcc') +
      masked(true, 0, CONT, parts[2]!, 'ddeeff00');
    expectEvents(hex, [evPing('aabbcc'), evBin(parts.join(''))]);
  });
});

describe('reserved bits (RFC 6455 §5.2)', () => {
  test('RSV1/2/3 without a negotiated extension are 1002 WSMOD_ERR_RESERVED_BITS', () => {
    for (let rsv = 0x10; rsv <= 0x70; rsv += 0x10) {
      expectError(masked(true, rsv, TEXT, txt('x')), 'WSMOD_ERR_RESERVED_BITS', 1002, { at: 1 });
      expectError(masked(true, rsv, BIN, ''), 'WSMOD_ERR_RESERVED_BITS', 1002, { at: 1 });
      expectError(masked(true, rsv, PING, ''), 'WSMOD_ERR_RESERVED_BITS', 1002, { at: 1 });
      expectError(unmasked(true, rsv, TEXT, txt('x')), 'WSMOD_ERR_RESERVED_BITS', 1002, { at: 1, options: { role: 'client' } });
    }
  });

  test('allowedRsv permits its bits on the first frame of a message', () => {
    expectEvents(masked(true, 0x40, TEXT, txt('abc')), [evText('abc')], { allowedRsv: 0x40 });
    expectEvents(masked(true, 0x40, BIN, '0102'), [evBin('0102')], { allowedRsv: 0x40 });
    expectEvents(masked(false, 0x40, TEXT, txt('ab')) + masked(true, 0, CONT, txt('c')), [evText('abc')], { allowedRsv: 0x40 });
    expectEvents(masked(true, 0x70, BIN, '00'), [evBin('00')], { allowedRsv: 0x70 });
    // Not every message has to use it.
    expectEvents(masked(true, 0, TEXT, txt('plain')), [evText('plain')], { allowedRsv: 0x40 });
  });

  test('allowedRsv does not permit other bits', () => {
    expectError(masked(true, 0x20, TEXT, txt('x')), 'WSMOD_ERR_RESERVED_BITS', 1002, { at: 1, options: { allowedRsv: 0x40 } });
    expectError(masked(true, 0x50, TEXT, txt('x')), 'WSMOD_ERR_RESERVED_BITS', 1002, { at: 1, options: { allowedRsv: 0x40 } });
  });

  test('allowedRsv bits are rejected on continuation frames', () => {
    const first = masked(false, 0x40, TEXT, txt('ab'));
    expectError(first + masked(true, 0x40, CONT, txt('c')), 'WSMOD_ERR_RESERVED_BITS', 1002, {
      at: len(first) + 1,
      options: { allowedRsv: 0x40 },
    });
    const plainFirst = masked(false, 0, BIN, '01');
    expectError(plainFirst + masked(true, 0x40, CONT, '02'), 'WSMOD_ERR_RESERVED_BITS', 1002, {
      at: len(plainFirst) + 1,
      options: { allowedRsv: 0x40 },
    });
  });

  test('allowedRsv bits are rejected on control frames', () => {
    for (const op of [PING, PONG, CLOSE]) {
      expectError(masked(true, 0x40, op, ''), 'WSMOD_ERR_RESERVED_BITS', 1002, { at: 1, options: { allowedRsv: 0x40 } });
    }
  });
});

describe('opcodes (RFC 6455 §5.2)', () => {
  test('reserved opcodes 3-7 and 0xB-0xF are 1002 WSMOD_ERR_RESERVED_OPCODE at the 2nd byte', () => {
    for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      expectError(masked(true, 0, op, txt('payload')), 'WSMOD_ERR_RESERVED_OPCODE', 1002, { at: 1 });
      expectError(masked(false, 0, op, ''), 'WSMOD_ERR_RESERVED_OPCODE', 1002, { at: 1 });
      expectError(unmasked(true, 0, op, '00'), 'WSMOD_ERR_RESERVED_OPCODE', 1002, { at: 1, options: { role: 'client' } });
    }
  });

  test('a reserved opcode inside a fragmented message is rejected too', () => {
    const first = masked(false, 0, TEXT, txt('ab'));
    expectError(first + masked(true, 0, 0xb, ''), 'WSMOD_ERR_RESERVED_OPCODE', 1002, { at: len(first) + 1 });
    expectError(first + masked(true, 0, 3, ''), 'WSMOD_ERR_RESERVED_OPCODE', 1002, { at: len(first) + 1 });
  });
});

describe('control frames (RFC 6455 §5.5)', () => {
  test('control payloads of 0 and 125 bytes are accepted', () => {
    const p125 = randomHex(prng(125), 125);
    expectEvents(masked(true, 0, PING, ''), [evPing()]);
    expectEvents(masked(true, 0, PONG, ''), [evPong()]);
    expectEvents(masked(true, 0, PING, p125), [evPing(p125)]);
    expectEvents(masked(true, 0, PONG, p125), [evPong(p125)]);
    expectEvents(unmasked(true, 0, PING, p125), [evPing(p125)], { role: 'client' });
    const reason = txt('r'.repeat(123));
    expectEvents(masked(true, 0, CLOSE, '03e8' + reason), [evClose(1000, reason)]);
  });

  test('control payloads over 125 bytes are 1002 WSMOD_ERR_CONTROL_TOO_LONG on the 2nd header byte', () => {
    for (const op of [PING, PONG, CLOSE]) {
      // 126 bytes (16-bit length) and 65536 bytes (64-bit length): the 7-bit field alone decides.
      expectError(masked(true, 0, op, '03e8' + '41'.repeat(124)), 'WSMOD_ERR_CONTROL_TOO_LONG', 1002, { at: 1 });
      expectError(masked(true, 0, op, '03e8' + '41'.repeat(65534)), 'WSMOD_ERR_CONTROL_TOO_LONG', 1002, { at: 1 });
      expectError(unmasked(true, 0, op, '03e8' + '41'.repeat(200)), 'WSMOD_ERR_CONTROL_TOO_LONG', 1002, {
        at: 1,
        options: { role: 'client' },
      });
      // Declared lengths alone, nothing after them.
      const b1 = byteHex(0x80 | op);
      expectError(`${b1} fe 007e`, 'WSMOD_ERR_CONTROL_TOO_LONG', 1002, { at: 1 });
      expectError(`${b1} ff 0000000000000080`, 'WSMOD_ERR_CONTROL_TOO_LONG', 1002, { at: 1 });
      expectError(`${b1} fe`, 'WSMOD_ERR_CONTROL_TOO_LONG', 1002, { at: 1 });
    }
  });

  test('a control frame over 125 bytes is rejected inside a fragmented message too', () => {
    const first = masked(false, 0, TEXT, txt('ab'));
    expectError(first + masked(true, 0, PING, '00'.repeat(126)), 'WSMOD_ERR_CONTROL_TOO_LONG', 1002, { at: len(first) + 1 });
  });

  test('fragmented control frames (FIN=0) are 1002 WSMOD_ERR_CONTROL_FRAGMENTED', () => {
    for (const op of [PING, PONG, CLOSE]) {
      expectError(masked(false, 0, op, txt('x')), 'WSMOD_ERR_CONTROL_FRAGMENTED', 1002, { at: 1 });
      expectError(masked(false, 0, op, '') + masked(true, 0, CONT, ''), 'WSMOD_ERR_CONTROL_FRAGMENTED', 1002, { at: 1 });
      expectError(unmasked(false, 0, op, ''), 'WSMOD_ERR_CONTROL_FRAGMENTED', 1002, { at: 1, options: { role: 'client' } });
    }
  });

  test('control frames interleaved inside a fragmented message are delivered in wire order', () => {
    const hex =
      masked(false, 0, TEXT, txt('Hel')) +
      masked(true, 0, PING, txt('p1')) +
      masked(false, 0, CONT, txt('l')) +
      masked(true, 0, PONG, '') +
      masked(true, 0, PING, '') +
      masked(true, 0, CONT, txt('o'));
    expectEvents(hex, [evPing(txt('p1')), evPong(), evPing(), evText('Hello')]);
  });

  test('an interleaved control frame may split a code point of the text message around it', () => {
    const hex = masked(false, 0, TEXT, 'e2') + masked(true, 0, PING, 'ff') + masked(true, 0, CONT, '82ac');
    expectEvents(hex, [evPing('ff'), evText('€')]);
  });

  test('ping and pong payloads are not UTF-8 checked', () => {
    expectEvents(masked(true, 0, PING, 'fffe80') + masked(true, 0, PONG, 'c0'), [evPing('fffe80'), evPong('c0')]);
  });
});

describe('fragmentation (RFC 6455 §5.4)', () => {
  test('a continuation frame without a message in progress is 1002 WSMOD_ERR_UNEXPECTED_CONTINUATION', () => {
    expectError(masked(true, 0, CONT, txt('x')), 'WSMOD_ERR_UNEXPECTED_CONTINUATION', 1002, { at: 1 });
    expectError(masked(false, 0, CONT, ''), 'WSMOD_ERR_UNEXPECTED_CONTINUATION', 1002, { at: 1 });
    expectError(unmasked(true, 0, CONT, ''), 'WSMOD_ERR_UNEXPECTED_CONTINUATION', 1002, { at: 1, options: { role: 'client' } });
  });

  test('a continuation after a complete message is unexpected', () => {
    const whole = masked(true, 0, TEXT, txt('done'));
    expectError(whole + masked(true, 0, CONT, txt('x')), 'WSMOD_ERR_UNEXPECTED_CONTINUATION', 1002, {
      at: len(whole) + 1,
      events: [evText('done')],
    });
    const fragmented = masked(false, 0, BIN, '01') + masked(true, 0, CONT, '02');
    expectError(fragmented + masked(true, 0, CONT, '03'), 'WSMOD_ERR_UNEXPECTED_CONTINUATION', 1002, {
      at: len(fragmented) + 1,
      events: [evBin('0102')],
    });
    const ping = masked(true, 0, PING, '');
    expectError(ping + masked(true, 0, CONT, '03'), 'WSMOD_ERR_UNEXPECTED_CONTINUATION', 1002, {
      at: len(ping) + 1,
      events: [evPing()],
    });
  });

  test('a new TEXT or BINARY frame inside a fragmented message is 1002 WSMOD_ERR_EXPECTED_CONTINUATION', () => {
    for (const firstOp of [TEXT, BIN]) {
      for (const nextOp of [TEXT, BIN]) {
        for (const nextFin of [true, false]) {
          const first = masked(false, 0, firstOp, txt('ab'));
          expectError(first + masked(nextFin, 0, nextOp, txt('cd')), 'WSMOD_ERR_EXPECTED_CONTINUATION', 1002, {
            at: len(first) + 1,
          });
        }
      }
    }
    const prefix = masked(false, 0, TEXT, txt('a')) + masked(false, 0, CONT, txt('b')) + masked(true, 0, PING, '');
    expectError(prefix + masked(true, 0, TEXT, txt('c')), 'WSMOD_ERR_EXPECTED_CONTINUATION', 1002, {
      at: len(prefix) + 1,
      events: [evPing()],
    });
  });

  test('fragmented messages of many fragments, including empty ones', () => {
    expectEvents(
      masked(false, 0, BIN, '01') + masked(false, 0, CONT, '') + masked(false, 0, CONT, '0203') + masked(true, 0, CONT, ''),
      [evBin('010203')],
    );
    const s = 'añ€😀 fragments';
    const b = Buffer.from(s, 'utf8');
    let hex = '';
    for (let i = 0; i < b.length; i++) {
      hex += masked(i === b.length - 1, 0, i === 0 ? TEXT : CONT, byteHex(b[i]!), randomHex(prng(i), 4));
    }
    expectEvents(hex, [evText(s)]);
  });

  test('a text message split into two fragments at every byte position', () => {
    const s = 'a€😀éz\u{10ffff}\u0800';
    const b = Buffer.from(s, 'utf8');
    for (let k = 0; k <= b.length; k++) {
      const hex = masked(false, 0, TEXT, b.subarray(0, k).toString('hex')) + masked(true, 0, CONT, b.subarray(k).toString('hex'));
      expectEvents(hex, [evText(s)]);
    }
  });

  test('several messages back to back, fragmented and not', () => {
    const hex =
      masked(true, 0, TEXT, txt('one')) +
      masked(false, 0, BIN, 'aa') +
      masked(true, 0, CONT, 'bb') +
      masked(true, 0, BIN, 'cc') +
      masked(false, 0, TEXT, txt('tw')) +
      masked(true, 0, CONT, txt('o')) +
      masked(true, 0, TEXT, '');
    expectEvents(hex, [evText('one'), evBin('aabb'), evBin('cc'), evText('two'), evText('')]);
  });

  test('a hundred small messages in one chunk', () => {
    let hex = '';
    const expected: string[] = [];
    for (let i = 0; i < 100; i++) {
      hex += masked(true, 0, i % 2 === 0 ? TEXT : BIN, txt(`m${i}`), randomHex(prng(1000 + i), 4));
      expected.push(i % 2 === 0 ? evText(`m${i}`) : evBin(txt(`m${i}`)));
    }
    expectEvents(hex, expected);
  });
});

describe('close frames (RFC 6455 §5.5.1, §7.4)', () => {
  test('an empty close payload is reported as code 1005 with an empty reason', () => {
    expectEvents(masked(true, 0, CLOSE, ''), [evClose(1005)]);
    expectEvents(unmasked(true, 0, CLOSE, ''), [evClose(1005)], { role: 'client' });
  });

  test('a close payload of 1 byte is 1002 WSMOD_ERR_CLOSE_PAYLOAD', () => {
    expectError(masked(true, 0, CLOSE, '03'), 'WSMOD_ERR_CLOSE_PAYLOAD', 1002);
    expectError(unmasked(true, 0, CLOSE, 'e8'), 'WSMOD_ERR_CLOSE_PAYLOAD', 1002, { options: { role: 'client' } });
  });

  test('valid close codes are accepted, with and without a reason', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
      const c = code.toString(16).padStart(4, '0');
      expectEvents(masked(true, 0, CLOSE, c), [evClose(code)]);
      expectEvents(masked(true, 0, CLOSE, c + txt('bye')), [evClose(code, txt('bye'))]);
    }
  });

  test('invalid close codes are 1002 WSMOD_ERR_CLOSE_CODE', () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      const c = code.toString(16).padStart(4, '0');
      expectError(masked(true, 0, CLOSE, c), 'WSMOD_ERR_CLOSE_CODE', 1002);
      expectError(masked(true, 0, CLOSE, c + txt('reason')), 'WSMOD_ERR_CLOSE_CODE', 1002);
    }
  });

  test('a close reason in valid multi-byte UTF-8, up to 123 bytes', () => {
    const reason = txt('€'.repeat(41)); // 123 bytes
    expectEvents(masked(true, 0, CLOSE, '0bb8' + reason), [evClose(3000, reason)]);
    expectEvents(masked(true, 0, CLOSE, '03e8' + txt('😀 ok')), [evClose(1000, txt('😀 ok'))]);
  });

  test('invalid UTF-8 in a close reason is 1007 WSMOD_ERR_INVALID_UTF8_REASON', () => {
    for (const bad of ['ff', 'c0 80', 'ed a0 80', 'f4 90 80 80', '80', 'e2 82', '41 e2 82 41', 'f0 9f 98']) {
      expectError(masked(true, 0, CLOSE, '03e8' + norm(bad)), 'WSMOD_ERR_INVALID_UTF8_REASON', 1007);
    }
  });

  test('after a close frame the parser is stopped and ignores further bytes', () => {
    const close = masked(true, 0, CLOSE, '03e8' + txt('bye'));
    for (const after of [
      masked(true, 0, TEXT, txt('late')),
      masked(true, 0, PING, ''),
      'ff ff ff ff',
      unmasked(true, 0, TEXT, txt('not masked')),
      masked(true, 0, CLOSE, '03e9'),
      masked(true, 0, CONT, ''),
    ]) {
      const out = expectEvents(close + after, [evClose(1000, txt('bye'))]);
      assert.equal(out.stopped, true);
    }
  });

  test('a close frame inside a fragmented message ends parsing', () => {
    const out = expectEvents(
      masked(false, 0, TEXT, txt('abc')) + masked(true, 0, CLOSE, '03e9') + masked(true, 0, CONT, txt('def')),
      [evClose(1001)],
    );
    assert.equal(out.stopped, true);
  });

  test('stop() makes the parser ignore later input', () => {
    const events: string[] = [];
    const parser = new FrameParser(recordingHandler(events), DEFAULTS);
    parser.push(bytes(masked(false, 0, TEXT, txt('ab'))));
    assert.equal(parser.stopped, false);
    parser.stop();
    assert.equal(parser.stopped, true);
    assert.equal(parser.bufferedCapacity, 0);
    parser.push(bytes(masked(true, 0, CONT, txt('c')) + masked(true, 0, TEXT, txt('x'))));
    parser.push(bytes('ff ff'));
    assert.deepEqual(events, []);
  });

  test('a handler may stop the parser; the rest of the chunk is ignored', () => {
    const events: string[] = [];
    const record = recordingHandler(events);
    const parser: FrameParser = new FrameParser(
      {
        ...record,
        onMessage(data, isBinary, compressed) {
          record.onMessage(data, isBinary, compressed);
          parser.stop();
        },
      },
      DEFAULTS,
    );
    parser.push(bytes(masked(true, 0, TEXT, txt('one')) + masked(true, 0, TEXT, txt('two')) + 'ffff'));
    assert.deepEqual(events, [evText('one')]);
  });
});

describe('UTF-8 in text messages (RFC 6455 §8.1)', () => {
  test('valid multi-byte text, whatever the chunking', () => {
    for (const s of ['', 'ascii', 'é', '€', '😀', '\u{10ffff}', '\ud7ff\ue000\uffff', 'mixed: añ€😀\u0080\u07ff\u0800']) {
      expectEvents(masked(true, 0, TEXT, txt(s)), [evText(s)]);
    }
  });

  // [payload hex, index within the payload of the first byte that makes it invalid]
  const INVALID: ReadonlyArray<readonly [string, number]> = [
    ['ff', 0],
    ['fe', 0],
    ['c0 80', 0],
    ['c1 bf', 0],
    ['e0 80 80', 1],
    ['e0 9f bf', 1],
    ['ed a0 80', 1],
    ['ed bf bf', 1],
    ['f0 80 80 80', 1],
    ['f0 8f bf bf', 1],
    ['f4 90 80 80', 1],
    ['f5 80 80 80', 0],
    ['f8 88 80 80 80', 0],
    ['80', 0],
    ['bf', 0],
    ['c3 a9 a9', 2],
    ['c2 41', 1],
    ['e2 82 41', 2],
    ['f0 9f 98 41', 3],
    ['41 42 ff 43', 2],
  ];

  test('invalid UTF-8 in a single-frame text message is 1007 WSMOD_ERR_INVALID_UTF8 at the bad byte', () => {
    for (const [bad, badAt] of INVALID) {
      for (const [before, after] of [
        ['', ''],
        [txt('ok '), txt(' trailing text that is valid')],
        [txt('€😀'), '41'.repeat(200)],
      ] as const) {
        const payload = before + norm(bad) + after;
        const hex = masked(true, 0, TEXT, payload);
        const header = len(hex) - len(payload);
        expectError(hex, 'WSMOD_ERR_INVALID_UTF8', 1007, { at: header + len(before) + badAt });
      }
    }
  });

  test('invalid UTF-8 in the client role too', () => {
    for (const [bad, badAt] of INVALID) {
      const payload = txt('abc') + norm(bad) + txt('def');
      expectError(unmasked(true, 0, TEXT, payload), 'WSMOD_ERR_INVALID_UTF8', 1007, { at: 2 + 3 + badAt, options: { role: 'client' } });
    }
  });

  test('binary messages are not UTF-8 checked', () => {
    expectEvents(masked(true, 0, BIN, 'ff c0 80 ed a0 80'), [evBin('ffc080eda080')]);
    expectEvents(masked(false, 0, BIN, 'e2') + masked(true, 0, CONT, ''), [evBin('e2')]);
  });

  test('invalid sequences split across fragments', () => {
    for (const [bad, badAt] of INVALID) {
      const b = bytes(bad);
      for (let k = 0; k <= b.length; k++) {
        const first = masked(false, 0, TEXT, txt('x') + b.subarray(0, k).toString('hex'));
        const second = masked(true, 0, CONT, b.subarray(k).toString('hex') + txt('y'));
        // The byte that breaks validity is in the first fragment's payload or the second's.
        const at = badAt < k ? len(first) - k + badAt : len(first) + (len(second) - (b.length - k) - 1) + (badAt - k);
        expectError(first + second, 'WSMOD_ERR_INVALID_UTF8', 1007, { at });
      }
    }
  });

  test('fail-fast: a text frame sent in pieces throws on the piece with the first invalid byte', () => {
    const payload = txt('valid start ') + 'ff' + txt('x'.repeat(500));
    const hex = bytes(masked(true, 0, TEXT, payload));
    const header = 2 + 2 + 4; // 16-bit length
    const events: string[] = [];
    const parser = new FrameParser(recordingHandler(events), DEFAULTS);
    parser.push(hex.subarray(0, header + 5));
    parser.push(hex.subarray(header + 5, header + 12)); // "valid start " ends at 12
    assert.throws(
      () => parser.push(hex.subarray(header + 12, header + 20)),
      (err: unknown) => err instanceof WsmodError && err.code === 'WSMOD_ERR_INVALID_UTF8' && err.closeCode === 1007,
    );
    assert.equal(parser.stopped, true);
    assert.deepEqual(events, []);
  });

  test('fail-fast: a fragmented message throws on the 2nd fragment before FIN arrives', () => {
    const first = bytes(masked(false, 0, TEXT, txt('Hello, ')));
    const second = bytes(masked(false, 0, CONT, txt('wor') + 'c0' + txt('ld')));
    const events: string[] = [];
    const parser = new FrameParser(recordingHandler(events), DEFAULTS);
    parser.push(first);
    assert.throws(
      () => parser.push(second),
      (err: unknown) => err instanceof WsmodError && err.code === 'WSMOD_ERR_INVALID_UTF8' && err.closeCode === 1007,
    );
    // And byte by byte: at the bad byte itself, with no final fragment in the input at all.
    expectError(first.toString('hex') + second.toString('hex'), 'WSMOD_ERR_INVALID_UTF8', 1007, {
      at: first.length + 6 + 3,
    });
  });

  test('fail-fast: a large frame throws long before its payload completes', () => {
    const payload = txt('a'.repeat(1000)) + 'ed a0 80' + txt('b'.repeat(70000));
    const hex = masked(true, 0, TEXT, payload);
    const header = 2 + 8 + 4;
    const out = expectError(hex, 'WSMOD_ERR_INVALID_UTF8', 1007, { at: header + 1000 + 1 });
    assert.ok(out.throwAt! < len(hex) - 1);
  });

  test('a code point truncated at the end of a message is 1007 WSMOD_ERR_INVALID_UTF8', () => {
    for (const tail of ['c3', 'e2', 'e2 82', 'f0', 'f0 9f', 'f0 9f 98']) {
      const single = masked(true, 0, TEXT, txt('abc') + norm(tail));
      expectError(single, 'WSMOD_ERR_INVALID_UTF8', 1007, { at: len(single) - 1 });
      // Fragmented, ending with an empty final fragment: fails when that frame's header completes.
      const frag = masked(false, 0, TEXT, txt('abc') + norm(tail)) + masked(true, 0, CONT, '');
      expectError(frag, 'WSMOD_ERR_INVALID_UTF8', 1007, { at: len(frag) - 1 });
      // Fragmented, the final fragment itself ending mid code point.
      const frag2 = masked(false, 0, TEXT, txt('abc')) + masked(true, 0, CONT, txt('d') + norm(tail));
      expectError(frag2, 'WSMOD_ERR_INVALID_UTF8', 1007, { at: len(frag2) - 1 });
      expectError(unmasked(true, 0, TEXT, norm(tail)), 'WSMOD_ERR_INVALID_UTF8', 1007, { options: { role: 'client' } });
    }
  });

  test('UTF-8 state does not leak from one message into the next', () => {
    // A text message starting with a continuation byte is invalid even after a message that ended cleanly.
    const one = masked(true, 0, TEXT, txt('€'));
    expectError(one + masked(true, 0, TEXT, '82ac'), 'WSMOD_ERR_INVALID_UTF8', 1007, { at: len(one) + 6, events: [evText('€')] });
    // A binary message between text messages does not disturb validation.
    expectEvents(
      masked(false, 0, TEXT, 'e2') +
        masked(true, 0, CONT, '82ac') +
        masked(false, 0, BIN, 'e2') +
        masked(true, 0, CONT, 'ff') +
        masked(false, 0, TEXT, 'f0') +
        masked(true, 0, CONT, '9f9880'),
      [evText('€'), evBin('e2ff'), evText('😀')],
    );
  });
});

describe('maxMessageSize', () => {
  test('7-bit length over the limit: 1009 WSMOD_ERR_MESSAGE_TOO_BIG on the 2nd header byte', () => {
    const options = { maxMessageSize: 100 };
    expectEvents(masked(true, 0, BIN, '00'.repeat(100)), [evBin('00'.repeat(100))], options);
    expectEvents(masked(true, 0, TEXT, '41'.repeat(100)), [evTextHex('41'.repeat(100))], options);
    expectError(masked(true, 0, BIN, '00'.repeat(101)), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 1, options });
    expectError(masked(true, 0, TEXT, '41'.repeat(125)), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 1, options });
    expectError(masked(false, 0, TEXT, '41'.repeat(101)), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 1, options });
    expectError(unmasked(true, 0, BIN, '00'.repeat(101)), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, {
      at: 1,
      options: { ...options, role: 'client' },
    });
  });

  test('16-bit length over the limit: thrown as soon as the length bytes arrive', () => {
    const options = { maxMessageSize: 1000 };
    expectEvents(masked(true, 0, BIN, '00'.repeat(1000)), [evBin('00'.repeat(1000))], options);
    expectError(masked(true, 0, BIN, '00'.repeat(1001)), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 3, options });
    expectError(masked(true, 0, TEXT, '41'.repeat(65535)), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 3, options });
    // Nothing after the length: the mask key and payload are not needed to decide.
    expectError('82 fe 03e9', 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 3, options });
    expectError('82 7e 03e9', 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 3, options: { ...options, role: 'client' } });
  });

  test('64-bit length over the limit: thrown as soon as the length bytes arrive', () => {
    const options = { maxMessageSize: 70000 };
    expectEvents(masked(true, 0, BIN, '00'.repeat(70000)), [evBin('00'.repeat(70000))], options);
    expectError(masked(true, 0, BIN, '00'.repeat(70001)), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 9, options });
    for (const length of ['0000000000011171', '0000000100000000', '001fffffffffffff', '0020000000000000', '7fffffffffffffff']) {
      expectError(`82 ff ${length} 37fa213d 0102`, 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 9, options });
      expectError(`81 ff ${length}`, 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 9, options });
      expectError(`82 7f ${length} 0102`, 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 9, options: { ...options, role: 'client' } });
    }
  });

  test('a fragmented message whose cumulative size exceeds the limit', () => {
    const options = { maxMessageSize: 10 };
    const ok = masked(false, 0, TEXT, txt('abcd')) + masked(false, 0, CONT, txt('efgh')) + masked(true, 0, CONT, txt('ij'));
    expectEvents(ok, [evText('abcdefghij')], options);
    const prefix = masked(false, 0, TEXT, txt('abcd')) + masked(false, 0, CONT, txt('efgh'));
    expectError(prefix + masked(true, 0, CONT, txt('ijk')), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: len(prefix) + 1, options });
    expectError(prefix + masked(false, 0, CONT, txt('ijk')), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: len(prefix) + 1, options });
    // With 16-bit lengths.
    const big = { maxMessageSize: 1000 };
    const first = masked(false, 0, BIN, '00'.repeat(600));
    expectEvents(first + masked(true, 0, CONT, '00'.repeat(400)), [evBin('00'.repeat(1000))], big);
    expectError(first + masked(true, 0, CONT, '00'.repeat(401)), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: len(first) + 3, options: big });
  });

  test('control frames do not count toward the limit, and each message starts from zero', () => {
    const options = { maxMessageSize: 10 };
    const p125 = '00'.repeat(125);
    expectEvents(
      masked(false, 0, BIN, '00'.repeat(5)) +
        masked(true, 0, PING, p125) +
        masked(true, 0, CONT, '00'.repeat(5)) +
        masked(true, 0, TEXT, '41'.repeat(10)) +
        masked(true, 0, PONG, p125),
      [evPing(p125), evBin('00'.repeat(10)), evTextHex('41'.repeat(10)), evPong(p125)],
      options,
    );
    expectEvents(masked(true, 0, PING, p125) + masked(true, 0, CLOSE, '03e8' + '41'.repeat(123)), [evPing(p125), evClose(1000, '41'.repeat(123))], {
      maxMessageSize: 0,
    });
  });

  test('maxMessageSize 0 allows only empty messages', () => {
    const options = { maxMessageSize: 0 };
    expectEvents(masked(true, 0, TEXT, '') + masked(false, 0, BIN, '') + masked(true, 0, CONT, ''), [evText(''), evBin('')], options);
    expectError(masked(true, 0, BIN, '00'), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009, { at: 1, options });
  });

  test('a 64-bit length with the most significant bit set is 1002 WSMOD_ERR_LENGTH_MSB', () => {
    for (const length of ['8000000000000000', 'ffffffffffffffff', '8000000000000005']) {
      for (const maxMessageSize of [Number.MAX_SAFE_INTEGER, 100]) {
        expectError(`82 ff ${length} 37fa213d 00`, 'WSMOD_ERR_LENGTH_MSB', 1002, { at: 9, options: { maxMessageSize } });
        expectError(`01 ff ${length}`, 'WSMOD_ERR_LENGTH_MSB', 1002, { at: 9, options: { maxMessageSize } });
        expectError(`82 7f ${length} 00`, 'WSMOD_ERR_LENGTH_MSB', 1002, { at: 9, options: { maxMessageSize, role: 'client' } });
      }
    }
  });
});

describe('payload lengths', () => {
  test('zero-length text and binary messages', () => {
    expectEvents(masked(true, 0, TEXT, ''), [evText('')]);
    expectEvents(masked(true, 0, BIN, ''), [evBin('')]);
    expectEvents(masked(false, 0, TEXT, '') + masked(false, 0, CONT, '') + masked(true, 0, CONT, ''), [evText('')]);
    expectEvents(masked(false, 0, BIN, '') + masked(true, 0, CONT, ''), [evBin('')]);
    expectEvents(unmasked(true, 0, TEXT, '') + unmasked(true, 0, BIN, ''), [evText(''), evBin('')], { role: 'client' });
  });

  test('125, 126, 127, 65535 and 65536 byte payloads (length encoding boundaries) round-trip', () => {
    const rand = prng(65);
    for (const n of [125, 126, 127, 65535, 65536]) {
      const bin = randomHex(rand, n);
      const text = txt('é'.repeat(n >> 1) + (n % 2 === 1 ? 'x' : ''));
      assert.equal(len(text), n);
      const hex = masked(true, 0, BIN, bin);
      assert.equal(hex.slice(2, 4), n < 126 ? byteHex(0x80 | n) : n <= 0xffff ? 'fe' : 'ff');
      expectEvents(hex, [evBin(bin)]);
      expectEvents(masked(true, 0, TEXT, text), [evTextHex(text)]);
      expectEvents(unmasked(true, 0, BIN, bin), [evBin(bin)], { role: 'client' });
      // And as two fragments straddling the boundary.
      expectEvents(masked(false, 0, BIN, bin.slice(0, 2)) + masked(true, 0, CONT, bin.slice(2)), [evBin(bin)]);
    }
  });

  test('random valid streams: all chunkings agree with the expected events', () => {
    const rand = prng(2024);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const randomText = (n: number): string => {
      let s = '';
      for (let i = 0; i < n; i++) {
        const range = pick([
          [0x20, 0x7f],
          [0x80, 0x800],
          [0x800, 0xd800],
          [0xe000, 0x10000],
          [0x10000, 0x110000],
        ] as const);
        s += String.fromCodePoint(range[0] + Math.floor(rand() * (range[1] - range[0])));
      }
      return s;
    };
    for (const role of ['server', 'client'] as const) {
      for (let stream = 0; stream < 40; stream++) {
        let hex = '';
        const events: string[] = [];
        const f = (fin: boolean, op: number, payload: string): string =>
          role === 'server' ? masked(fin, 0, op, payload, randomHex(rand, 4)) : unmasked(fin, 0, op, payload);
        const control = (): void => {
          const op = pick([PING, PONG]);
          const p = randomHex(rand, Math.floor(rand() * 126));
          hex += f(true, op, p);
          events.push(op === PING ? evPing(p) : evPong(p));
        };
        const count = 1 + Math.floor(rand() * 6);
        for (let m = 0; m < count; m++) {
          if (rand() < 0.25) {
            control();
            continue;
          }
          const isText = rand() < 0.5;
          const size = rand() < 0.1 ? 126 + Math.floor(rand() * 400) : Math.floor(rand() * 40);
          const payload = isText ? txt(randomText(size)) : randomHex(rand, size);
          const n = len(payload);
          const cuts = Array.from({ length: Math.floor(rand() * 4) }, () => Math.floor(rand() * (n + 1))).sort((a, b) => a - b);
          const bounds = [0, ...cuts, n];
          for (let i = 0; i + 1 < bounds.length; i++) {
            const last = i + 2 === bounds.length;
            hex += f(last, i === 0 ? (isText ? TEXT : BIN) : CONT, payload.slice(bounds[i]! * 2, bounds[i + 1]! * 2));
            if (!last && rand() < 0.3) control();
          }
          events.push(isText ? evTextHex(payload) : evBin(payload));
        }
        if (rand() < 0.5) {
          hex += f(true, CLOSE, '0bb8' + txt('end'));
          events.push(evClose(3000, txt('end')));
          hex += f(true, TEXT, txt('ignored'));
        }
        expectEvents(hex, events, { role });
      }
    }
  });
});

describe('reassembly memory', () => {
  test('bufferedCapacity is 0 between messages', () => {
    const events: string[] = [];
    const parser = new FrameParser(recordingHandler(events), DEFAULTS);
    assert.equal(parser.bufferedCapacity, 0);
    parser.push(bytes(masked(true, 0, BIN, '0102')));
    assert.equal(parser.bufferedCapacity, 0);
    parser.push(bytes(masked(false, 0, BIN, '0102')));
    assert.ok(parser.bufferedCapacity >= 2);
    parser.push(bytes(masked(true, 0, CONT, '03')));
    assert.equal(parser.bufferedCapacity, 0);
    const partial = bytes(masked(true, 0, BIN, '00'.repeat(300)));
    parser.push(partial.subarray(0, 20));
    assert.ok(parser.bufferedCapacity >= 300 && parser.bufferedCapacity <= 600);
    parser.push(partial.subarray(20));
    assert.equal(parser.bufferedCapacity, 0);
    assert.equal(events.length, 3);
  });

  test('a declared length is not reserved before its payload arrives (a stalled 16 MiB header holds at most 64 KiB)', () => {
    const events: string[] = [];
    const parser = new FrameParser(recordingHandler(events), { ...DEFAULTS, maxMessageSize: 17 * 1024 * 1024 });
    const size = 16 * 1024 * 1024;
    // FIN binary, masked, 64-bit length 16 MiB, key, then 10 payload bytes: the buffer follows the bytes.
    const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x37, 0xfa, 0x21, 0x3d]);
    header.writeBigUInt64BE(BigInt(size), 2);
    parser.push(header);
    assert.equal(parser.bufferedCapacity, 0, 'nothing held for a header alone');
    parser.push(Buffer.alloc(10));
    assert.ok(parser.bufferedCapacity > 0 && parser.bufferedCapacity <= 64 * 1024, `held ${parser.bufferedCapacity} bytes for 10`);
    // As the payload arrives the buffer grows to exactly the declared size, never past it.
    let peak = 0;
    for (let sent = 10; sent < size; sent += 1024 * 1024) {
      parser.push(Buffer.alloc(Math.min(1024 * 1024, size - sent)));
      peak = Math.max(peak, parser.bufferedCapacity);
    }
    assert.ok(peak <= size, `peak ${peak}`);
    assert.equal(events.length, 1);
    assert.equal(parser.bufferedCapacity, 0);
  });

  /**
   * Feeds an N-byte binary message as N one-byte masked fragments (7 bytes each: header byte, 0x81,
   * 4-byte key, 1 payload byte) in ~64 KiB chunks, sampling bufferedCapacity after every chunk.
   */
  function reassembleOneByteFragments(N: number): void {
    const FRAME = 7; // header byte, 0x81 (masked, length 1), 4-byte key, 1 payload byte
    const expected = Buffer.allocUnsafe(N);
    const stream = Buffer.allocUnsafe(N * FRAME);
    for (let i = 0; i < N; i++) {
      const o = i * FRAME;
      const payloadByte = (Math.imul(i, 2654435761) >>> 24) & 0xff;
      expected[i] = payloadByte;
      stream[o] = (i === N - 1 ? 0x80 : 0x00) | (i === 0 ? BIN : CONT);
      stream[o + 1] = 0x81;
      const k0 = i & 0xff;
      stream[o + 2] = k0;
      stream[o + 3] = (i >>> 8) & 0xff;
      stream[o + 4] = (i >>> 16) & 0xff;
      stream[o + 5] = 0x5a;
      stream[o + 6] = payloadByte ^ k0;
    }
    const messages: Array<{ data: Buffer; isBinary: boolean }> = [];
    const parser = new FrameParser(
      {
        onMessage: (data, isBinary) => messages.push({ data: Buffer.from(data), isBinary }),
        onPing: () => assert.fail('ping'),
        onPong: () => assert.fail('pong'),
        onClose: () => assert.fail('close'),
      },
      { role: 'server', maxMessageSize: 16 * N },
    );
    const CHUNK = 64 * 1024; // not a multiple of 7: headers straddle chunks
    let maxCapacity = 0;
    let samples = 0;
    for (let at = 0; at < stream.length; at += CHUNK) {
      parser.push(stream.subarray(at, Math.min(at + CHUNK, stream.length)));
      maxCapacity = Math.max(maxCapacity, parser.bufferedCapacity);
      samples++;
    }
    assert.ok(samples > 10);
    assert.ok(maxCapacity > 0, 'the message buffer was never observed');
    assert.ok(maxCapacity <= 2 * N, `bufferedCapacity reached ${maxCapacity}`);
    assert.equal(messages.length, 1);
    const [message] = messages;
    assert.equal(message!.isBinary, true);
    assert.equal(message!.data.length, N);
    assert.ok(message!.data.equals(expected), 'reassembled message differs');
    assert.equal(parser.bufferedCapacity, 0);
  }

  test('a 1 MiB message in 1,048,576 one-byte fragments: delivered intact, buffer never over 2 × 1 MiB', () => {
    reassembleOneByteFragments(1 << 20);
  });

  test('a message of 300,001 one-byte fragments (not a power of two): buffer never over twice its size', () => {
    reassembleOneByteFragments(300_001);
  });
});
