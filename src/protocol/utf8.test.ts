import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { Utf8Validator, isValidUtf8 } from './utf8.ts';
import { prng } from '../prng.ts';

function bytes(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}


interface FeedResult {
  /** False when some push returned false. */
  readonly ok: boolean;
  /** `complete` after the last push (only meaningful when ok). */
  readonly complete: boolean;
  /** [start, end) of the piece whose push returned false. */
  readonly failedPiece: readonly [number, number] | null;
}

/** Feeds `buf` in pieces of the given sizes, each piece a fresh copy (arbitrary byteOffset). */
function feed(buf: Uint8Array, sizes: readonly number[], copy = true): FeedResult {
  const v = new Utf8Validator();
  let at = 0;
  for (const size of sizes) {
    const ok = copy ? v.push(Buffer.from(buf.subarray(at, at + size))) : v.push(buf, at, at + size);
    if (!ok) return { ok: false, complete: v.complete, failedPiece: [at, at + size] };
    at += size;
  }
  assert.equal(at, buf.length);
  return { ok: true, complete: v.complete, failedPiece: null };
}

/** Index of the first byte at which byte-by-byte validation fails; -1 when it never fails. */
function failIndex(buf: Uint8Array): number {
  const v = new Utf8Validator();
  for (let i = 0; i < buf.length; i++) {
    if (!v.push(buf, i, i + 1)) return i;
  }
  return -1;
}

/** Independent reference: index of the first invalid byte per the WHATWG streaming decoder; -1 if none. */
function referenceFailIndex(buf: Uint8Array): number {
  const d = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < buf.length; i++) {
    try {
      d.decode(buf.subarray(i, i + 1), { stream: true });
    } catch {
      return i;
    }
  }
  return -1;
}

function randomSizes(n: number, rand: () => number, maxChunk: number): number[] {
  const sizes: number[] = [];
  let left = n;
  while (left > 0) {
    const s = Math.min(left, 1 + Math.floor(rand() * maxChunk));
    sizes.push(s);
    left -= s;
  }
  return sizes;
}

/** Valid UTF-8 samples at the edges of each encoding length. */
const VALID: ReadonlyArray<readonly [string, string]> = [
  ['U+0000', '00'],
  ['U+007F', '7f'],
  ['U+0080', 'c2 80'],
  ['U+00E9', 'c3 a9'],
  ['U+07FF', 'df bf'],
  ['U+0800', 'e0 a0 80'],
  ['U+20AC', 'e2 82 ac'],
  ['U+D7FF', 'ed 9f bf'],
  ['U+E000', 'ee 80 80'],
  ['U+FFFD', 'ef bf bd'],
  ['U+FFFF', 'ef bf bf'],
  ['U+10000', 'f0 90 80 80'],
  ['U+1F600', 'f0 9f 98 80'],
  ['U+FFFFF', 'f3 bf bf bf'],
  ['U+100000', 'f4 80 80 80'],
  ['U+10FFFF', 'f4 8f bf bf'],
];

/** Invalid sequences, with the index of the first byte that makes the input invalid. */
const INVALID: ReadonlyArray<readonly [string, string, number]> = [
  ['overlong 2-byte NUL', 'c0 80', 0],
  ['overlong 2-byte', 'c1 bf', 0],
  ['overlong 3-byte NUL', 'e0 80 80', 1],
  ['overlong 3-byte U+07FF', 'e0 9f bf', 1],
  ['overlong 4-byte NUL', 'f0 80 80 80', 1],
  ['overlong 4-byte U+FFFF', 'f0 8f bf bf', 1],
  ['surrogate U+D800', 'ed a0 80', 1],
  ['surrogate U+DBFF', 'ed af bf', 1],
  ['surrogate U+DC00', 'ed b0 80', 1],
  ['surrogate U+DFFF', 'ed bf bf', 1],
  ['surrogate pair', 'ed a0 bd ed b8 80', 1],
  ['above U+10FFFF', 'f4 90 80 80', 1],
  ['above U+10FFFF (F4 BF)', 'f4 bf bf bf', 1],
  ['F5 lead', 'f5 80 80 80', 0],
  ['F7 lead', 'f7 bf bf bf', 0],
  ['5-byte form', 'f8 88 80 80 80', 0],
  ['6-byte form', 'fc 84 80 80 80 80', 0],
  ['FE', 'fe', 0],
  ['FF', 'ff', 0],
  ['lone continuation 80', '80', 0],
  ['lone continuation BF', 'bf', 0],
  ['continuation after ASCII', '41 80', 1],
  ['extra continuation after 2-byte', 'c3 a9 a9', 2],
  ['extra continuation after 4-byte', 'f0 9f 98 80 80', 4],
  ['2-byte lead then ASCII', 'c2 41', 1],
  ['3-byte lead, one continuation, then ASCII', 'e2 82 41', 2],
  ['4-byte lead, two continuations, then ASCII', 'f0 9f 98 41', 3],
  ['lead then lead', 'e2 e2 82 ac', 1],
  ['truncated sequence then valid one', 'c3 e2 82 ac', 1],
];

describe('Utf8Validator', () => {
  test('empty input is complete and valid', () => {
    const v = new Utf8Validator();
    assert.equal(v.complete, true);
    assert.equal(v.push(Buffer.alloc(0)), true);
    assert.equal(v.complete, true);
    assert.equal(isValidUtf8(Buffer.alloc(0)), true);
  });

  test('valid sequences at every encoding boundary, whole and byte by byte', () => {
    for (const [name, hex] of VALID) {
      const b = bytes(hex);
      assert.deepEqual(feed(b, [b.length]), { ok: true, complete: true, failedPiece: null }, name);
      assert.deepEqual(feed(b, new Array<number>(b.length).fill(1)), { ok: true, complete: true, failedPiece: null }, name);
      assert.equal(isValidUtf8(b), true, name);
    }
  });

  test('multi-byte text split at every possible position (2 and 3 pieces)', () => {
    const s = 'aé€😀\u0080\u07ff\u0800\ud7ff\ue000\uffff\u{10000}\u{10ffff}z';
    const b = Buffer.from(s, 'utf8');
    for (let i = 0; i <= b.length; i++) {
      assert.deepEqual(feed(b, [i, b.length - i]), { ok: true, complete: true, failedPiece: null }, `split at ${i}`);
      for (let j = i; j <= b.length; j++) {
        assert.deepEqual(feed(b, [i, j - i, b.length - j]), { ok: true, complete: true, failedPiece: null }, `split at ${i}, ${j}`);
      }
    }
  });

  test('complete is false inside a code point and true once it is finished', () => {
    for (const [name, hex] of VALID) {
      const b = bytes(hex);
      const v = new Utf8Validator();
      for (let i = 0; i < b.length; i++) {
        assert.equal(v.push(b, i, i + 1), true, name);
        assert.equal(v.complete, i === b.length - 1, `${name} after byte ${i}`);
      }
    }
  });

  test('truncated sequences: push returns true but complete is false', () => {
    for (const hex of ['c3', 'df', 'e2', 'e2 82', 'e0 a0', 'ed 9f', 'f0', 'f0 9f', 'f0 9f 98', 'f4 8f bf', '41 42 e2 82']) {
      const b = bytes(hex);
      const v = new Utf8Validator();
      assert.equal(v.push(b), true, hex);
      assert.equal(v.complete, false, hex);
      assert.equal(isValidUtf8(b), false, hex);
      assert.deepEqual(feed(b, new Array<number>(b.length).fill(1)), { ok: true, complete: false, failedPiece: null }, hex);
    }
  });

  test('classic invalid cases fail, at the first byte that cannot be part of valid UTF-8', () => {
    for (const [name, hex, at] of INVALID) {
      for (const [prefix, suffix] of [
        ['', ''],
        ['61 62 63', '64 65 66'],
        ['e2 82 ac', 'f0 9f 98 80'],
        ['41'.repeat(40), '41'.repeat(40)],
      ] as const) {
        const b = bytes(prefix + hex + suffix);
        const expectedAt = bytes(prefix).length + at;
        assert.equal(failIndex(b), expectedAt, `${name} with prefix "${prefix}": byte-by-byte fail index`);
        assert.equal(referenceFailIndex(b), expectedAt, `${name}: reference decoder disagrees with the table`);
        assert.equal(feed(b, [b.length]).ok, false, `${name}: whole`);
        assert.equal(isValidUtf8(b), false, name);
        // Every 2-way split fails on the piece holding the bad byte.
        for (let k = 0; k <= b.length; k++) {
          const r = feed(b, [k, b.length - k]);
          assert.equal(r.ok, false, `${name} split at ${k}`);
          const [start, end] = r.failedPiece!;
          assert.ok(start <= expectedAt && expectedAt < end, `${name} split at ${k}: failed on [${start}, ${end})`);
        }
      }
    }
  });

  test('every surrogate ED A0 80 .. ED BF BF is rejected', () => {
    for (let b2 = 0xa0; b2 <= 0xbf; b2++) {
      for (let b3 = 0x80; b3 <= 0xbf; b3++) {
        const b = Buffer.from([0xed, b2, b3]);
        assert.equal(feed(b, [3]).ok, false);
        assert.equal(failIndex(b), 1);
      }
    }
  });

  test('every byte F5..FF and C0..C1 is rejected as a lead', () => {
    for (const lead of [0xc0, 0xc1, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff]) {
      assert.equal(failIndex(Buffer.from([0x41, lead, 0x80, 0x80, 0x80])), 1);
      assert.equal(new Utf8Validator().push(Buffer.from([lead])), false);
    }
  });

  test('every continuation byte 80..BF is rejected on its own', () => {
    for (let c = 0x80; c <= 0xbf; c++) {
      assert.equal(new Utf8Validator().push(Buffer.from([c])), false);
      assert.equal(new Utf8Validator().push(Buffer.from([0x41, 0x42, c])), false);
    }
  });

  test('all 2-byte inputs agree with buffer.isUtf8, whole and split', () => {
    const b = Buffer.alloc(2);
    for (let x = 0; x < 0x10000; x++) {
      b[0] = x >> 8;
      b[1] = x & 0xff;
      const expected = isUtf8(b);
      const whole = feed(b, [2], false);
      const split = feed(b, [1, 1], false);
      assert.equal(whole.ok && whole.complete, expected, b.toString('hex'));
      assert.equal(split.ok && split.complete, expected, b.toString('hex'));
    }
  });

  test('3-byte inputs with every multi-byte lead and second byte agree with buffer.isUtf8', () => {
    const b = Buffer.alloc(3);
    for (let lead = 0xc0; lead <= 0xff; lead++) {
      for (let second = 0; second <= 0xff; second++) {
        for (const third of [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc3, 0xe2, 0xf0, 0xff]) {
          b[0] = lead;
          b[1] = second;
          b[2] = third;
          const expected = isUtf8(b);
          for (const sizes of [[3], [1, 2], [2, 1], [1, 1, 1]]) {
            const r = feed(b, sizes, false);
            assert.equal(r.ok && r.complete, expected, `${b.toString('hex')} in pieces ${sizes.join('+')}`);
          }
        }
      }
    }
  });

  test('random byte strings in random chunkings agree with buffer.isUtf8 (seeded)', () => {
    const rand = prng(0xc0ffee);
    const interesting = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];
    const encodeRandomCodePoint = (): number[] => {
      const ranges = [
        [0, 0x80],
        [0x80, 0x800],
        [0x800, 0xd800],
        [0xe000, 0x10000],
        [0x10000, 0x110000],
      ] as const;
      const r = ranges[Math.floor(rand() * ranges.length)]!;
      const cp = r[0] + Math.floor(rand() * (r[1] - r[0]));
      return [...Buffer.from(String.fromCodePoint(cp), 'utf8')];
    };
    let valid = 0;
    let invalid = 0;
    for (let iteration = 0; iteration < 3000; iteration++) {
      const out: number[] = [];
      const target = Math.floor(rand() * 60);
      // Mostly valid code points; sometimes a random or boundary byte, sometimes a dropped byte.
      const corruption = iteration % 3 === 0 ? 0 : rand() * 0.15;
      while (out.length < target) {
        const r = rand();
        if (r < corruption / 2) out.push(Math.floor(rand() * 256));
        else if (r < corruption) out.push(interesting[Math.floor(rand() * interesting.length)]!);
        else {
          const cp = encodeRandomCodePoint();
          if (rand() < corruption) cp.pop();
          out.push(...cp);
        }
      }
      const b = Buffer.from(out);
      const expected = isUtf8(b);
      if (expected) valid++;
      else invalid++;
      assert.equal(isValidUtf8(b), expected);
      const failAt = failIndex(b);
      assert.equal(failAt, referenceFailIndex(b), `${b.toString('hex')}: fail index differs from the WHATWG decoder`);
      for (const maxChunk of [1, 3, 7, 16, b.length + 1]) {
        const r = feed(b, randomSizes(b.length, rand, maxChunk), maxChunk % 2 === 1);
        assert.equal(r.ok && r.complete, expected, `${b.toString('hex')} (chunks <= ${maxChunk})`);
        if (failAt >= 0) {
          assert.equal(r.ok, false);
          const [start, end] = r.failedPiece!;
          assert.ok(start <= failAt && failAt < end, `${b.toString('hex')}: failed on [${start}, ${end}), bytewise at ${failAt}`);
        } else {
          assert.equal(r.ok, true);
        }
      }
    }
    // The generator must exercise both outcomes substantially.
    assert.ok(valid > 800 && invalid > 800, `valid ${valid}, invalid ${invalid}`);
  });

  test('push honours start and end within a larger buffer', () => {
    const b = bytes('ff ff e2 82 ac ff ff');
    const v = new Utf8Validator();
    assert.equal(v.push(b, 2, 3), true);
    assert.equal(v.complete, false);
    assert.equal(v.push(b, 3, 5), true);
    assert.equal(v.complete, true);
    assert.equal(v.push(b, 5, 5), true);
    assert.equal(new Utf8Validator().push(b, 0, 2), false);
    assert.equal(new Utf8Validator().push(b, 2, 6), false);
    // Unaligned views into a shared ArrayBuffer.
    const big = Buffer.from('xx' + 'añ€😀'.repeat(20) + 'yy', 'utf8');
    const view = new Uint8Array(big.buffer, big.byteOffset + 2, big.length - 4);
    assert.equal(feed(view, randomSizes(view.length, prng(3), 5), false).complete, true);
  });

  test('reset() forgets an unfinished code point', () => {
    const v = new Utf8Validator();
    assert.equal(v.push(bytes('e2 82')), true);
    assert.equal(v.complete, false);
    v.reset();
    assert.equal(v.complete, true);
    assert.equal(v.push(bytes('41')), true);
    assert.equal(v.complete, true);
    // After reset, a continuation byte can no longer finish the old code point.
    assert.equal(v.push(bytes('e0')), true);
    v.reset();
    assert.equal(v.push(bytes('a0 80')), false);
    // And the narrowed range after E0/ED/F0/F4 does not survive a reset.
    const w = new Utf8Validator();
    assert.equal(w.push(bytes('ed')), true);
    w.reset();
    assert.equal(w.push(bytes('e2 bf bf')), true);
    assert.equal(w.complete, true);
  });

  test('isValidUtf8 matches buffer.isUtf8 on complete buffers', () => {
    for (const [, hex] of VALID) assert.equal(isValidUtf8(bytes(hex)), true);
    for (const [, hex] of INVALID) assert.equal(isValidUtf8(bytes(hex)), false);
  });
});
