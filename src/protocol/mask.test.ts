import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyMask } from './mask.ts';
import { prng } from '../prng.ts';


function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** The obvious byte-by-byte definition: byte `start + j` is XORed with key[keyOffset + ((phase + j) mod 4)]. */
function naiveMask(buf: Uint8Array, start: number, end: number, key: Uint8Array, keyOffset: number, phase: number): void {
  for (let i = start; i < end; i++) {
    buf[i] = buf[i]! ^ key[keyOffset + ((phase + (i - start)) % 4)]!;
  }
}

interface Case {
  readonly length: number;
  readonly start: number;
  readonly tail: number;
  readonly byteOffset: number;
  readonly phase: number;
  readonly keyOffset: number;
}

/**
 * Builds a buffer that is a view at `byteOffset` into a larger ArrayBuffer, with `start` bytes before the
 * masked range and `tail` bytes after it; masks with applyMask and with the reference; compares the
 * whole backing store (so writes outside the range are caught too).
 */
function check(c: Case, rand: () => number): void {
  const total = c.start + c.length + c.tail;
  const backing = randomBytes(rand, c.byteOffset + total + 8);
  const key = randomBytes(rand, c.keyOffset + 4 + 3); // the key is read at keyOffset
  const actualStore = backing.slice();
  const expectedStore = backing.slice();
  const actual = new Uint8Array(actualStore.buffer, c.byteOffset, total);
  const expected = new Uint8Array(expectedStore.buffer, c.byteOffset, total);
  const label = JSON.stringify(c);

  applyMask(actual, c.start, c.start + c.length, key, c.keyOffset, c.phase);
  naiveMask(expected, c.start, c.start + c.length, key, c.keyOffset, c.phase);
  assert.deepEqual(actualStore, expectedStore, label);

  // XOR is its own inverse: applying the same mask again restores the input.
  applyMask(actual, c.start, c.start + c.length, key, c.keyOffset, c.phase);
  assert.deepEqual(actualStore, backing, `${label}: applying twice`);
}

describe('applyMask', () => {
  test('RFC 6455 §5.7: "Hello" with key 37 fa 21 3d', () => {
    const buf = Buffer.from('Hello');
    applyMask(buf, 0, buf.length, Buffer.from('37fa213d', 'hex'), 0, 0);
    assert.equal(buf.toString('hex'), '7f9f4d5158');
    applyMask(buf, 0, buf.length, Buffer.from('37fa213d', 'hex'), 0, 0);
    assert.equal(buf.toString(), 'Hello');
  });

  test('matches the byte-by-byte reference for lengths 0..100, starts, byte offsets and phases 0-3', () => {
    const rand = prng(1);
    for (let length = 0; length <= 100; length++) {
      for (const start of [0, 1, 2, 3, 5]) {
        for (let byteOffset = 0; byteOffset < 8; byteOffset++) {
          for (let phase = 0; phase < 4; phase++) {
            check({ length, start, tail: (length + phase) % 5, byteOffset, phase, keyOffset: (start + phase) % 3 }, rand);
          }
        }
      }
    }
  });

  test('matches the reference for long payloads (1000 and 65536 + 3 bytes)', () => {
    const rand = prng(2);
    for (const length of [31, 32, 33, 35, 36, 37, 1000, 1001, 65536 + 3]) {
      for (const start of [0, 1, 3]) {
        for (const byteOffset of [0, 1, 2, 3]) {
          for (let phase = 0; phase < 4; phase++) {
            check({ length, start, tail: 3, byteOffset, phase, keyOffset: phase === 2 ? 5 : 0 }, rand);
          }
        }
      }
    }
  });

  test('only the low two bits of phase matter', () => {
    const rand = prng(3);
    const key = randomBytes(rand, 4);
    for (const length of [7, 64]) {
      const input = randomBytes(rand, length);
      for (let phase = 0; phase < 16; phase++) {
        const a = input.slice();
        const b = input.slice();
        applyMask(a, 0, length, key, 0, phase);
        applyMask(b, 0, length, key, 0, phase & 3);
        assert.deepEqual(a, b, `phase ${phase}`);
      }
    }
  });

  test('masking in pieces with the running phase equals masking at once', () => {
    const rand = prng(4);
    const key = randomBytes(rand, 4);
    for (const length of [10, 100, 5000]) {
      const input = randomBytes(rand, length);
      const once = input.slice();
      applyMask(once, 0, length, key, 0, 0);
      for (let trial = 0; trial < 20; trial++) {
        const pieces = input.slice();
        let at = 0;
        while (at < length) {
          const n = Math.min(length - at, 1 + Math.floor(rand() * 70));
          // Each piece in its own unaligned copy, as chunks arrive from the network.
          const copy = new Uint8Array(new ArrayBuffer(n + 3), 1 + (trial % 3), n);
          copy.set(pieces.subarray(at, at + n));
          applyMask(copy, 0, n, key, 0, at);
          pieces.set(copy, at);
          at += n;
        }
        assert.deepEqual(pieces, once, `length ${length}, trial ${trial}`);
      }
    }
  });

  test('works on Buffers from the shared pool (arbitrary byteOffset)', () => {
    const rand = prng(5);
    const key = Buffer.from(randomBytes(rand, 4));
    for (let n = 0; n < 200; n++) {
      const data = Buffer.from(randomBytes(rand, n)); // small Buffers share the pool at various offsets
      const expected = Uint8Array.from(data);
      naiveMask(expected, 0, n, key, 0, n & 3);
      applyMask(data, 0, n, key, 0, n & 3);
      assert.deepEqual(Uint8Array.from(data), expected, `n=${n} byteOffset=${data.byteOffset}`);
    }
  });

  test('an empty range is a no-op', () => {
    const buf = Uint8Array.from([1, 2, 3, 4, 5]);
    applyMask(buf, 2, 2, Uint8Array.from([0xff, 0xff, 0xff, 0xff]), 0, 1);
    assert.deepEqual(buf, Uint8Array.from([1, 2, 3, 4, 5]));
  });
});
