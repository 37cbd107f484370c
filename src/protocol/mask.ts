/**
 * RFC 6455 §5.3 masking: payload[i] ^= key[i % 4]. XOR is its own inverse, so one function masks
 * and unmasks. Works a 32-bit word at a time over the aligned middle of the range.
 */

const word = new Uint32Array(1);
const wordBytes = new Uint8Array(word.buffer);

/**
 * XOR `buf[start..end)` in place with the 4-byte `key` (read from `key[keyOffset..keyOffset+4)`),
 * where `phase` is the index within the key of the byte at `start` (the number of payload bytes of
 * this frame that came before `start`, mod 4). Returns nothing; `buf` is modified.
 */
export function applyMask(
  buf: Uint8Array,
  start: number,
  end: number,
  key: Uint8Array,
  keyOffset: number,
  phase: number,
): void {
  let i = start;
  let p = phase & 3;
  if (end - start < 32) {
    // Short payloads: a typed-array view would cost more than it saves.
    for (; i < end; i++) {
      buf[i] = buf[i]! ^ key[keyOffset + p]!;
      p = (p + 1) & 3;
    }
    return;
  }
  // Bytes until the position is 4-byte aligned in memory, so the Uint32Array view below is legal.
  const misalign = (buf.byteOffset + i) & 3;
  const lead = misalign === 0 ? 0 : Math.min(4 - misalign, end - i);
  for (let n = 0; n < lead; n++) {
    buf[i] = buf[i]! ^ key[keyOffset + p]!;
    i++;
    p = (p + 1) & 3;
  }
  const words = (end - i) >>> 2;
  if (words > 0) {
    // The key rotated so its byte p lines up with the first aligned byte, in native byte order.
    wordBytes[0] = key[keyOffset + p]!;
    wordBytes[1] = key[keyOffset + ((p + 1) & 3)]!;
    wordBytes[2] = key[keyOffset + ((p + 2) & 3)]!;
    wordBytes[3] = key[keyOffset + ((p + 3) & 3)]!;
    const k = word[0]!;
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w]! ^= k;
    i += words << 2;
  }
  while (i < end) {
    buf[i] = buf[i]! ^ key[keyOffset + p]!;
    i++;
    p = (p + 1) & 3;
  }
}
