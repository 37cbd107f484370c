import { isUtf8 } from 'node:buffer';

/**
 * Incremental, fail-fast UTF-8 validation (RFC 3629 §4, as RFC 6455 §8.1 requires for text).
 *
 * Text arrives in pieces: frame fragments and TCP chunks split code points anywhere. The validator
 * keeps the state of an unfinished code point between pieces and rejects a piece as soon as it holds
 * a byte that can never be part of valid UTF-8, so a connection fails on the first bad byte rather
 * than at the end of the message. The bulk of each piece is checked by Node's native `isUtf8`; only
 * the few bytes that straddle a piece boundary go through the byte-wise state machine.
 */
export class Utf8Validator {
  /** Continuation bytes still expected for the current code point (0: between code points). */
  #need = 0;
  /** Allowed range of the next continuation byte (narrower than 0x80-0xBF right after some leads). */
  #lo = 0x80;
  #hi = 0xbf;

  /** True when no code point is left unfinished: the text so far is complete, valid UTF-8. */
  get complete(): boolean {
    return this.#need === 0;
  }

  /** Forget any unfinished code point (start of a new message). */
  reset(): void {
    this.#need = 0;
    this.#lo = 0x80;
    this.#hi = 0xbf;
  }

  /**
   * Feed `buf[start..end)`. Returns false as soon as the bytes so far cannot be a prefix of valid
   * UTF-8; the validator is then in an undefined state and must be reset before reuse.
   */
  push(buf: Uint8Array, start = 0, end = buf.length): boolean {
    let i = start;
    // Finish the code point left open by the previous piece.
    while (this.#need > 0 && i < end) {
      if (!this.#step(buf[i]!)) return false;
      i++;
    }
    if (i === end) return true;
    // Find where a code point may start but not finish within this piece.
    const tail = incompleteTailStart(buf, i, end);
    if (tail > i && !isUtf8(buf.subarray(i, tail))) return false;
    for (let j = tail; j < end; j++) {
      if (!this.#step(buf[j]!)) return false;
    }
    return true;
  }

  /** Feeds one byte to the state machine. */
  #step(b: number): boolean {
    if (this.#need === 0) {
      if (b < 0x80) return true;
      if (b >= 0xc2 && b <= 0xdf) {
        this.#need = 1;
        this.#lo = 0x80;
        this.#hi = 0xbf;
      } else if (b >= 0xe0 && b <= 0xef) {
        this.#need = 2;
        // E0: no overlong forms; ED: no UTF-16 surrogates (U+D800-U+DFFF).
        this.#lo = b === 0xe0 ? 0xa0 : 0x80;
        this.#hi = b === 0xed ? 0x9f : 0xbf;
      } else if (b >= 0xf0 && b <= 0xf4) {
        this.#need = 3;
        // F0: no overlong forms; F4: nothing above U+10FFFF.
        this.#lo = b === 0xf0 ? 0x90 : 0x80;
        this.#hi = b === 0xf4 ? 0x8f : 0xbf;
      } else {
        return false; // 0x80-0xC1 (continuation or overlong lead) and 0xF5-0xFF never start a code point
      }
      return true;
    }
    if (b < this.#lo || b > this.#hi) return false;
    this.#need--;
    this.#lo = 0x80;
    this.#hi = 0xbf;
    return true;
  }
}

/**
 * Index of the start of a trailing lead byte whose code point is cut off by `end`, or `end` when the
 * piece ends on a code point boundary (or on bytes that are invalid anyway, which `isUtf8` will catch).
 */
function incompleteTailStart(buf: Uint8Array, start: number, end: number): number {
  // A code point is at most 4 bytes, so an unfinished one starts within the last 3.
  const limit = Math.max(start, end - 3);
  for (let j = end - 1; j >= limit; j--) {
    const b = buf[j]!;
    if (b < 0x80) return end; // ASCII: everything before it is whole
    if (b >= 0xc0) {
      const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return end - j < len ? j : end;
    }
    // continuation byte: keep looking back for its lead
  }
  return end;
}

/** Whole-buffer check, for complete messages and close reasons. */
export function isValidUtf8(buf: Uint8Array): boolean {
  return buf.length === 0 || isUtf8(buf);
}
