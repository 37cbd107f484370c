import { WsmodError } from '../errors.ts';
import { isValidCloseCode } from './close-codes.ts';
import { FIN, MAX_CONTROL_PAYLOAD, Opcode, RSV1, RSV_MASK } from './constants.ts';
import { applyMask } from './mask.ts';
import { Utf8Validator, isValidUtf8 } from './utf8.ts';

/** What the parser hands upward: whole messages and control frames, in wire order. */
export interface FrameHandler {
  /**
   * A complete data message. `data` is owned by the receiver from now on. `compressed`: the first
   * frame had RSV1 under permessage-deflate (RFC 7692 §6): `data` is still compressed, and text is
   * not yet validated as UTF-8 (that happens after inflation).
   */
  onMessage(data: Buffer, isBinary: boolean, compressed: boolean): void;
  onPing(data: Buffer): void;
  onPong(data: Buffer): void;
  /** A close frame. `code` is 1005 when the frame carried no code. `reason` is valid UTF-8. */
  onClose(code: number, reason: Buffer): void;
}

/** Options of {@link FrameParser}. */
export interface FrameParserOptions {
  /** `server` parses client frames (which must be masked); `client` parses server frames (must not be). */
  readonly role: 'server' | 'client';
  /** Largest message accepted, in bytes, checked against declared lengths before any payload is buffered. */
  readonly maxMessageSize: number;
  /** RSV bits a negotiated extension allows on the first frame of a data message (0 without extensions). */
  readonly allowedRsv?: number;
}

const enum State {
  HEADER,
  PAYLOAD,
  STOPPED,
}

/**
 * Capacity a message buffer may get before its bytes have arrived. Beyond it the buffer grows (doubling)
 * only as payload arrives: a header that declares 16 MiB and then stalls holds 64 KiB, not 16 MiB.
 */
const EAGER_CAPACITY = 64 * 1024;

/**
 * An incremental RFC 6455 §5 frame parser: a state machine fed TCP chunks of any size, down to one byte.
 *
 * - Every rule of §5 is checked as soon as the bytes that break it arrive: header rules on the first
 *   two bytes, message-size limits on the declared length (before any payload is buffered), UTF-8 on
 *   each piece of text as it is unmasked, so a bad byte fails the connection mid-frame.
 * - A frame whose payload lies whole in one chunk is delivered without a copy (unmasked in place).
 * - Fragmented messages are appended into one buffer that doubles as needed, so reassembly costs
 *   O(message size) however small the fragments, and memory stays under twice the message size.
 *
 * Violations are thrown as {@link WsmodError}s carrying the close code; the parser then stops.
 */
export class FrameParser {
  readonly #handler: FrameHandler;
  readonly #expectMask: boolean;
  readonly #maxMessageSize: number;
  readonly #allowedRsv: number;

  #state = State.HEADER;

  // Header bytes that straddle chunks are gathered here; headers inside one chunk are read in place.
  readonly #header = Buffer.alloc(14);
  #headerLen = 0;

  // The frame being read.
  #fin = false;
  #opcode = 0;
  #masked = false;
  readonly #maskKey = Buffer.alloc(4);
  #frameLen = 0;
  #remaining = 0;
  #control: Buffer | null = null;

  // The data message being assembled (#msgOpcode 0: none in progress).
  #msgOpcode = 0;
  #msgBuf: Buffer | null = null;
  #msgLen = 0;
  /** The most bytes the message in progress can reach: exact once its FIN frame has begun. */
  #msgLimit = 0;
  #msgCompressed = false;
  readonly #utf8 = new Utf8Validator();

  constructor(handler: FrameHandler, options: FrameParserOptions) {
    this.#handler = handler;
    this.#expectMask = options.role === 'server';
    this.#maxMessageSize = options.maxMessageSize;
    this.#allowedRsv = options.allowedRsv ?? 0;
  }

  /** Bytes held for the message in progress (its buffer's capacity), for memory accounting and tests. */
  get bufferedCapacity(): number {
    return this.#msgBuf === null ? 0 : this.#msgBuf.length;
  }

  /** Stop parsing: later input is ignored (after a close frame, or when the connection fails). */
  stop(): void {
    this.#state = State.STOPPED;
    this.#msgBuf = null;
    this.#control = null;
  }

  /** True once stopped by {@link stop}, a close frame or a protocol violation. */
  get stopped(): boolean {
    return this.#state === State.STOPPED;
  }

  /**
   * Parse a chunk. Handlers run synchronously for each complete message and control frame.
   * Throws a {@link WsmodError} (with `closeCode`) on the first protocol violation.
   */
  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    try {
      while (pos < end) {
        if (this.#state === State.HEADER) {
          pos = this.#readHeader(chunk, pos, end);
        } else if (this.#state === State.PAYLOAD) {
          pos = this.#readPayload(chunk, pos, end);
        } else {
          return;
        }
      }
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  /** Reads header bytes; returns the new position. */
  #readHeader(chunk: Buffer, pos: number, end: number): number {
    // Fast path: the whole header is in this chunk.
    if (this.#headerLen === 0 && end - pos >= 2) {
      const b1 = chunk[pos]!;
      const b2 = chunk[pos + 1]!;
      const size = headerSize(b2);
      if (end - pos >= size) {
        this.#checkFirstBytes(b1, b2);
        this.#parseHeader(chunk, pos, b2);
        return this.#startPayload(chunk, pos + size, end);
      }
    }
    // Slow path: gather byte by byte, checking each rule as soon as its bytes are in.
    const h = this.#header;
    while (pos < end) {
      h[this.#headerLen++] = chunk[pos++]!;
      if (this.#headerLen < 2) continue;
      const b2 = h[1]!;
      if (this.#headerLen === 2) this.#checkFirstBytes(h[0]!, b2);
      const lenBytes = extendedLengthBytes(b2);
      if (lenBytes > 0 && this.#headerLen === 2 + lenBytes) this.#checkLength(readLength(h, 0, b2), h[0]! & 0x0f);
      if (this.#headerLen === headerSize(b2)) {
        this.#headerLen = 0;
        this.#parseHeader(h, 0, b2);
        return this.#startPayload(chunk, pos, end);
      }
    }
    return pos;
  }

  /** RFC 6455 §5.1, §5.2, §5.4, §5.5: rules decidable from the first two bytes. */
  #checkFirstBytes(b1: number, b2: number): void {
    const opcode = b1 & 0x0f;
    const fin = (b1 & FIN) !== 0;
    const rsv = b1 & RSV_MASK;
    const masked = (b2 & 0x80) !== 0;
    if (masked !== this.#expectMask) {
      throw new WsmodError(this.#expectMask ? 'WSMOD_ERR_UNMASKED_FRAME' : 'WSMOD_ERR_MASKED_FRAME');
    }
    if (opcode >= Opcode.CLOSE) {
      if (opcode > Opcode.PONG) throw new WsmodError('WSMOD_ERR_RESERVED_OPCODE', `0x${opcode.toString(16)}`);
      if (rsv !== 0) throw new WsmodError('WSMOD_ERR_RESERVED_BITS');
      if (!fin) throw new WsmodError('WSMOD_ERR_CONTROL_FRAGMENTED');
      if ((b2 & 0x7f) > MAX_CONTROL_PAYLOAD) throw new WsmodError('WSMOD_ERR_CONTROL_TOO_LONG');
      return;
    }
    if (opcode > Opcode.BINARY) throw new WsmodError('WSMOD_ERR_RESERVED_OPCODE', `0x${opcode.toString(16)}`);
    if (opcode === Opcode.CONTINUATION) {
      if (this.#msgOpcode === 0) throw new WsmodError('WSMOD_ERR_UNEXPECTED_CONTINUATION');
      // Extensions mark a message on its first frame only (RFC 7692 §6: RSV1 on the first frame).
      if (rsv !== 0) throw new WsmodError('WSMOD_ERR_RESERVED_BITS');
    } else {
      if (this.#msgOpcode !== 0) throw new WsmodError('WSMOD_ERR_EXPECTED_CONTINUATION');
      if ((rsv & ~this.#allowedRsv) !== 0) throw new WsmodError('WSMOD_ERR_RESERVED_BITS');
    }
    const len7 = b2 & 0x7f;
    if (len7 < 126) this.#checkLength(len7, opcode);
  }

  /** Limits on a declared payload length, before any of the payload is buffered. */
  #checkLength(length: number, opcode: number): void {
    if (length < 0) throw new WsmodError('WSMOD_ERR_LENGTH_MSB');
    // Control frame lengths were checked on the 7-bit field; only data frames grow messages.
    if (opcode < Opcode.CLOSE && this.#msgLen + length > this.#maxMessageSize) {
      throw new WsmodError('WSMOD_ERR_MESSAGE_TOO_BIG', `${this.#msgLen + length} > ${this.#maxMessageSize} bytes`);
    }
  }

  /** Reads the header at `buf[pos..]` (already known to be complete) into the frame fields. */
  #parseHeader(buf: Buffer, pos: number, b2: number): void {
    const b1 = buf[pos]!;
    this.#fin = (b1 & FIN) !== 0;
    this.#opcode = b1 & 0x0f;
    this.#masked = (b2 & 0x80) !== 0;
    const lenBytes = extendedLengthBytes(b2);
    const length = readLength(buf, pos, b2);
    if (lenBytes > 0 && buf !== this.#header) {
      // Checked byte-wise on the slow path already; the fast path checks here.
      this.#checkLength(length, this.#opcode);
    }
    if (this.#masked) {
      const k = pos + 2 + lenBytes;
      this.#maskKey[0] = buf[k]!;
      this.#maskKey[1] = buf[k + 1]!;
      this.#maskKey[2] = buf[k + 2]!;
      this.#maskKey[3] = buf[k + 3]!;
    }
    this.#frameLen = length;
    this.#remaining = length;
    if (this.#opcode === Opcode.TEXT || this.#opcode === Opcode.BINARY) {
      this.#msgOpcode = this.#opcode;
      this.#msgLen = 0;
      this.#msgCompressed = (b1 & RSV1) !== 0;
      this.#utf8.reset();
    }
  }

  /** Starts the payload of the frame whose header was just read; returns the new position. */
  #startPayload(chunk: Buffer, pos: number, end: number): number {
    const length = this.#frameLen;
    if (this.#opcode >= Opcode.CLOSE) {
      if (end - pos >= length) {
        // Whole control payload in this chunk: unmask in place, no copy.
        const payload = chunk.subarray(pos, pos + length);
        if (this.#masked) applyMask(payload, 0, length, this.#maskKey, 0, 0);
        this.#control = null;
        this.#controlFrame(payload);
        return pos + length;
      }
      this.#control = Buffer.allocUnsafe(length);
      this.#state = State.PAYLOAD;
      return pos;
    }
    const first = this.#opcode !== Opcode.CONTINUATION;
    if (first && this.#fin && end - pos >= length) {
      // An unfragmented message wholly in this chunk: the common case, delivered without a copy.
      const payload = chunk.subarray(pos, pos + length);
      if (this.#masked) applyMask(payload, 0, length, this.#maskKey, 0, 0);
      this.#msgOpcode = 0;
      const compressed = this.#msgCompressed;
      if (this.#opcode === Opcode.TEXT && !compressed && !isValidUtf8(payload)) throw new WsmodError('WSMOD_ERR_INVALID_UTF8');
      this.#handler.onMessage(payload, this.#opcode === Opcode.BINARY, compressed);
      return pos + length;
    }
    // The size is known exactly on a FIN frame; a fragmented message is bounded by maxMessageSize.
    this.#msgLimit = this.#fin ? this.#msgLen + length : this.#maxMessageSize;
    if (length === 0) return this.#endDataFrame(pos);
    this.#state = State.PAYLOAD;
    return pos;
  }

  /** Consumes payload bytes of the current frame; returns the new position. */
  #readPayload(chunk: Buffer, pos: number, end: number): number {
    const n = Math.min(this.#remaining, end - pos);
    const done = this.#frameLen - this.#remaining; // payload bytes of this frame already consumed
    this.#remaining -= n;
    if (this.#opcode >= Opcode.CLOSE) {
      const control = this.#control!;
      chunk.copy(control, done, pos, pos + n);
      if (this.#masked) applyMask(control, done, done + n, this.#maskKey, 0, done);
      if (this.#remaining === 0) {
        this.#control = null;
        this.#state = State.HEADER;
        this.#controlFrame(control);
      }
      return pos + n;
    }
    const at = this.#msgLen;
    let buf = this.#msgBuf;
    if (buf === null || buf.length < at + n) buf = this.#grow(at + n);
    chunk.copy(buf, at, pos, pos + n);
    if (this.#masked) applyMask(buf, at, at + n, this.#maskKey, 0, done);
    this.#msgLen = at + n;
    // Fail fast: validate each piece of text as it arrives (RFC 6455 §8.1).
    if (this.#msgOpcode === Opcode.TEXT && !this.#msgCompressed && !this.#utf8.push(buf, at, at + n)) {
      throw new WsmodError('WSMOD_ERR_INVALID_UTF8');
    }
    if (this.#remaining === 0) {
      this.#state = State.HEADER;
      return this.#endDataFrame(pos + n);
    }
    return pos + n;
  }

  /**
   * Room for `needed` message bytes, allocated as payload arrives (limits before buffering): up to
   * EAGER_CAPACITY at once, then doubling, never past what the message can reach. Reassembly stays
   * O(message size) however small the fragments, and memory under twice the bytes received.
   */
  #grow(needed: number): Buffer {
    const buf = this.#msgBuf;
    const capacity = Math.min(this.#msgLimit, Math.max(needed, EAGER_CAPACITY, buf === null ? 0 : buf.length * 2));
    const next = Buffer.allocUnsafe(capacity);
    if (buf !== null) buf.copy(next, 0, 0, this.#msgLen);
    this.#msgBuf = next;
    return next;
  }

  /** A data frame's payload is complete; delivers the message on FIN. Returns `pos`. */
  #endDataFrame(pos: number): number {
    if (!this.#fin) return pos;
    const opcode = this.#msgOpcode;
    const data = this.#msgBuf === null ? Buffer.alloc(0) : this.#msgBuf.subarray(0, this.#msgLen);
    this.#msgOpcode = 0;
    this.#msgBuf = null;
    this.#msgLen = 0;
    const compressed = this.#msgCompressed;
    if (opcode === Opcode.TEXT && !compressed && !this.#utf8.complete) throw new WsmodError('WSMOD_ERR_INVALID_UTF8', 'truncated code point');
    this.#handler.onMessage(data, opcode === Opcode.BINARY, compressed);
    return pos;
  }

  /** Dispatches a complete control frame (RFC 6455 §5.5). */
  #controlFrame(payload: Buffer): void {
    this.#state = State.HEADER;
    switch (this.#opcode) {
      case Opcode.PING:
        this.#handler.onPing(payload);
        return;
      case Opcode.PONG:
        this.#handler.onPong(payload);
        return;
      default: {
        // Close: §5.5.1. Nothing is read after it (§5.5.1: no more data frames after a close).
        this.#state = State.STOPPED;
        this.#msgBuf = null;
        if (payload.length === 0) {
          this.#handler.onClose(1005, payload);
          return;
        }
        if (payload.length === 1) throw new WsmodError('WSMOD_ERR_CLOSE_PAYLOAD');
        const code = payload.readUInt16BE(0);
        if (!isValidCloseCode(code)) throw new WsmodError('WSMOD_ERR_CLOSE_CODE', String(code));
        const reason = payload.subarray(2);
        if (!isValidUtf8(reason)) throw new WsmodError('WSMOD_ERR_INVALID_UTF8_REASON');
        this.#handler.onClose(code, reason);
      }
    }
  }
}

/** Bytes of extended payload length after the second header byte (RFC 6455 §5.2). */
function extendedLengthBytes(b2: number): number {
  const len7 = b2 & 0x7f;
  return len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
}

/** Total header size implied by the second header byte. */
function headerSize(b2: number): number {
  return 2 + extendedLengthBytes(b2) + ((b2 & 0x80) !== 0 ? 4 : 0);
}

/**
 * The payload length of the header at `buf[pos..]`; -1 when a 64-bit length has its most significant
 * bit set (RFC 6455 §5.2 forbids it). Lengths above 2^53 cannot be represented, but any limit rejects
 * them long before: they are reported as Infinity.
 */
function readLength(buf: Buffer, pos: number, b2: number): number {
  const len7 = b2 & 0x7f;
  if (len7 < 126) return len7;
  if (len7 === 126) return buf.readUInt16BE(pos + 2);
  const high = buf.readUInt32BE(pos + 2);
  if (high >= 0x80000000) return -1;
  if (high >= 0x200000) return Infinity;
  return high * 0x100000000 + buf.readUInt32BE(pos + 6);
}
