/**
 * Frame building and parsing for the benchmark, kept apart from wsmod's own protocol code so the load
 * generator and the minimal echo server measure servers without borrowing from the one under test.
 *
 * - Client side (load generator): pre-built masked frames with non-zero mask keys (ws skips unmasking
 *   for an all-zero key, so a zero key would flatter it), and {@link FrameCounter}, which reads server
 *   frames by their headers only and skips payloads.
 * - Server side (the minimal echo): {@link MinimalEcho}, a frame parser that answers every read with
 *   one write.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { constants, deflateRawSync } from 'node:zlib';

export const Op = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A random 4-byte masking key with no zero byte (so never the all-zero key). */
export function maskKey(): Buffer {
  const key = randomBytes(4);
  for (let i = 0; i < 4; i++) if (key[i] === 0) key[i] = 1 + (i * 37) % 255;
  return key;
}

/** Size of a frame header (RFC 6455 §5.2) for `length` payload bytes. */
export function headerSize(length: number, masked: boolean): number {
  return 2 + (length < 126 ? 0 : length <= 0xffff ? 2 : 8) + (masked ? 4 : 0);
}

/** Writes a frame header at `out[at..]`; returns the header size. `rsv` is the RSV bits, already shifted. */
export function writeHeader(out: Buffer, at: number, opcode: number, fin: boolean, length: number, key: Buffer | undefined, rsv = 0): number {
  out[at] = (fin ? 0x80 : 0) | rsv | opcode;
  const maskBit = key === undefined ? 0 : 0x80;
  let p = at + 2;
  if (length < 126) out[at + 1] = maskBit | length;
  else if (length <= 0xffff) {
    out[at + 1] = maskBit | 126;
    out.writeUInt16BE(length, p);
    p += 2;
  } else {
    out[at + 1] = maskBit | 127;
    out.writeUInt32BE(Math.floor(length / 0x100000000), p);
    out.writeUInt32BE(length >>> 0, p + 4);
    p += 8;
  }
  if (key !== undefined) {
    key.copy(out, p, 0, 4);
    p += 4;
  }
  return p - at;
}

const scratchWord = new Uint32Array(1);
const scratchBytes = new Uint8Array(scratchWord.buffer);

/** XORs `buf[start..start+length)` with the 4-byte key at `key[keyAt..]` (masking and unmasking alike). */
export function xorMask(buf: Buffer, start: number, length: number, key: Buffer, keyAt: number): void {
  const k0 = key[keyAt]!;
  const k1 = key[keyAt + 1]!;
  const k2 = key[keyAt + 2]!;
  const k3 = key[keyAt + 3]!;
  const end = start + length;
  let i = start;
  if (length >= 64) {
    // Word at a time over the 4-byte aligned middle; the key rotated to the phase of the first aligned byte.
    const lead = (4 - ((buf.byteOffset + i) & 3)) & 3;
    for (let n = 0; n < lead; n++, i++) buf[i] = buf[i]! ^ key[keyAt + ((i - start) & 3)]!;
    const p = (i - start) & 3;
    scratchBytes[0] = key[keyAt + p]!;
    scratchBytes[1] = key[keyAt + ((p + 1) & 3)]!;
    scratchBytes[2] = key[keyAt + ((p + 2) & 3)]!;
    scratchBytes[3] = key[keyAt + ((p + 3) & 3)]!;
    const word = scratchWord[0]!;
    const words = (end - i) >>> 2;
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w]! ^= word;
    i += words << 2;
  }
  for (; i < end; i++) {
    const phase = (i - start) & 3;
    buf[i] = buf[i]! ^ (phase === 0 ? k0 : phase === 1 ? k1 : phase === 2 ? k2 : k3);
  }
}

/** One masked client frame (a fresh non-zero key unless one is given). */
export function maskedFrame(opcode: number, payload: Buffer, fin = true, key: Buffer = maskKey()): Buffer {
  const h = headerSize(payload.length, true);
  const out = Buffer.allocUnsafe(h + payload.length);
  writeHeader(out, 0, opcode, fin, payload.length, key);
  payload.copy(out, h);
  xorMask(out, h, payload.length, key, 0);
  return out;
}

/**
 * One masked message compressed with permessage-deflate (RFC 7692 §7.2.1): the payload deflated on its
 * own (no context taken over from earlier messages, so the frame can be sent any number of times),
 * flushed with Z_SYNC_FLUSH, the trailing 00 00 ff ff removed, RSV1 set.
 */
export function compressedFrame(opcode: number, payload: Buffer, key: Buffer = maskKey()): Buffer {
  const deflated = deflateRawSync(payload, { finishFlush: constants.Z_SYNC_FLUSH });
  const body = deflated.subarray(0, deflated.length - 4);
  const h = headerSize(body.length, true);
  const out = Buffer.allocUnsafe(h + body.length);
  writeHeader(out, 0, opcode, true, body.length, key, 0x40);
  body.copy(out, h);
  xorMask(out, h, body.length, key, 0);
  return out;
}

/** `count` masked frames of the same payload back to back, each with its own key: one write sends them all. */
export function frameBatch(count: number, opcode: number, payload: Buffer | ((i: number) => Buffer), deflate = false): Buffer {
  const at = (i: number): Buffer => (typeof payload === 'function' ? payload(i) : payload);
  return Buffer.concat(Array.from({ length: count }, (_, i) => (deflate ? compressedFrame(opcode, at(i)) : maskedFrame(opcode, at(i)))));
}

/**
 * One message as masked fragments of `fragmentSize` bytes: the first frame carries the opcode, the
 * rest are continuations, the last has FIN. Each frame has its own key.
 */
export function fragmentedMessage(opcode: number, payload: Buffer, fragmentSize: number): Buffer {
  if (fragmentSize < 1) throw new RangeError('fragmentSize must be >= 1');
  const count = Math.max(1, Math.ceil(payload.length / fragmentSize));
  let total = 0;
  for (let i = 0; i < count; i++) {
    const len = Math.min(fragmentSize, payload.length - i * fragmentSize);
    total += headerSize(len, true) + len;
  }
  const out = Buffer.allocUnsafe(total);
  const keys = randomBytes(4 * count);
  for (let i = 0; i < keys.length; i++) if (keys[i] === 0) keys[i] = 0x5a;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const from = i * fragmentSize;
    const len = Math.min(fragmentSize, payload.length - from);
    const key = keys.subarray(4 * i, 4 * i + 4);
    const h = writeHeader(out, at, i === 0 ? opcode : Op.CONTINUATION, i === count - 1, len, key);
    payload.copy(out, at + h, from, from + len);
    xorMask(out, at + h, len, key, 0);
    at += h + len;
  }
  return out;
}

/** A masked close frame with a status code. */
export function closeFrame(code = 1000): Buffer {
  const payload = Buffer.allocUnsafe(2);
  payload.writeUInt16BE(code, 0);
  return maskedFrame(Op.CLOSE, payload);
}

/** A fixed, valid Sec-WebSocket-Key (16 random bytes, base64). */
export const CLIENT_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** The extension offer of the generator's compressing clients: it never takes context over itself. */
export const DEFLATE_OFFER = 'permessage-deflate; client_no_context_takeover';

/** The HTTP/1.1 upgrade request of a WebSocket client, as bytes (with an extension offer if given). */
export function upgradeRequest(port: number, path = '/echo', key = CLIENT_KEY, extensions?: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
      '\r\n',
    'latin1',
  );
}

/** A compressible text message of about `size` bytes: JSON records, as chat or telemetry traffic looks. */
export function jsonText(size: number, seed = 0): Buffer {
  const parts: string[] = [];
  let length = 2;
  for (let i = seed * 1009; length < size; i++) {
    const record = `{"id":${1000 + i},"user":"user-${i % 37}","type":"${i % 3 === 0 ? 'message' : 'presence'}","ts":${1_700_000_000_000 + i * 7919},"text":"hello ${i * 31 % 997}"}`;
    parts.push(record);
    length += record.length + 1;
  }
  return Buffer.from(`[${parts.join(',')}]`.slice(0, size));
}

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** Called for each complete server frame; `control` holds the payload of control frames (<= 125 bytes). */
export type FrameCallback = (opcode: number, fin: boolean, length: number, control: Buffer | undefined) => void;

/**
 * Reads server frames (unmasked) by their headers: payloads of data frames are skipped without being
 * copied or looked at; only control payloads are kept (a ping must be answered with its payload).
 * Works on chunks of any size, a header split across chunks included.
 */
export class FrameCounter {
  readonly #onFrame: FrameCallback;
  readonly #header = Buffer.alloc(14);
  #headerLen = 0;
  #remaining = 0; // payload bytes of the current frame still to come
  #inPayload = false;
  #opcode = 0;
  #fin = false;
  #length = 0;
  #control: Buffer | undefined;
  #controlAt = 0;

  constructor(onFrame: FrameCallback) {
    this.#onFrame = onFrame;
  }

  push(buf: Buffer, start = 0, end = buf.length): void {
    let pos = start;
    while (pos < end) {
      if (this.#inPayload) {
        const n = Math.min(this.#remaining, end - pos);
        if (this.#control !== undefined) {
          buf.copy(this.#control, this.#controlAt, pos, pos + n);
          this.#controlAt += n;
        }
        this.#remaining -= n;
        pos += n;
        if (this.#remaining === 0) this.#complete();
        continue;
      }
      if (this.#headerLen === 0 && end - pos >= 2) {
        const b2 = buf[pos + 1]!;
        const size = frameHeaderBytes(b2);
        if (end - pos >= size) {
          this.#begin(buf, pos, b2);
          pos += size;
          continue;
        }
      }
      // A header split across chunks: gather it.
      const h = this.#header;
      h[this.#headerLen++] = buf[pos++]!;
      if (this.#headerLen >= 2 && this.#headerLen === frameHeaderBytes(h[1]!)) {
        this.#headerLen = 0;
        this.#begin(h, 0, h[1]!);
      }
    }
  }

  #begin(buf: Buffer, at: number, b2: number): void {
    const b1 = buf[at]!;
    const len7 = b2 & 0x7f;
    const length =
      len7 < 126 ? len7 : len7 === 126 ? buf.readUInt16BE(at + 2) : buf.readUInt32BE(at + 2) * 0x100000000 + buf.readUInt32BE(at + 6);
    this.#opcode = b1 & 0x0f;
    this.#fin = (b1 & 0x80) !== 0;
    this.#length = length;
    this.#remaining = length;
    this.#control = this.#opcode >= Op.CLOSE && length > 0 ? Buffer.allocUnsafe(length) : undefined;
    this.#controlAt = 0;
    if (length === 0) this.#complete();
    else this.#inPayload = true;
  }

  #complete(): void {
    this.#inPayload = false;
    const control = this.#control;
    this.#control = undefined;
    this.#onFrame(this.#opcode, this.#fin, this.#length, control ?? (this.#opcode >= Op.CLOSE ? EMPTY : undefined));
  }
}

const EMPTY = Buffer.alloc(0);

/** Header size implied by the second header byte (mask bit included). */
function frameHeaderBytes(b2: number): number {
  const len7 = b2 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b2 & 0x80) !== 0 ? 4 : 0);
}

/** Largest message the minimal echo assembles. */
export const MINIMAL_MAX_MESSAGE = 4 * 1024 * 1024;

/**
 * The minimal echo's frame handling: masked client frames in, unmasked echoes out, everything a read
 * produced returned together so the server writes once per read. Text is UTF-8 validated (one native
 * call), fragments are assembled in a doubling buffer, pings are answered, a close is echoed. Any
 * violation ends with `fatal` set: the server then destroys the socket (no close codes; it is a ceiling).
 */
export class MinimalEcho {
  /** Set when the connection must end: 'close' after a close frame, 'error' on a violation. */
  fatal: 'close' | 'error' | undefined;
  #pending: Buffer[] = [];
  #pendingLen = 0;
  #need = 0;
  #fragOpcode = 0;
  #fragBuf: Buffer | undefined;
  #fragLen = 0;
  #out: Buffer[] = [];

  /** Parses a chunk; returns the echo bytes it produced (possibly several buffers, to be written at once). */
  push(chunk: Buffer): Buffer[] {
    if (this.fatal !== undefined) return [];
    let buf = chunk;
    if (this.#pendingLen > 0) {
      this.#pending.push(chunk);
      this.#pendingLen += chunk.length;
      if (this.#pendingLen < this.#need) return [];
      buf = Buffer.concat(this.#pending, this.#pendingLen);
      this.#pending = [];
      this.#pendingLen = 0;
    }
    const end = buf.length;
    let pos = 0;
    while (this.fatal === undefined) {
      if (end - pos < 2) {
        this.#need = 2;
        break;
      }
      const b1 = buf[pos]!;
      const b2 = buf[pos + 1]!;
      if ((b2 & 0x80) === 0 || (b1 & 0x70) !== 0) {
        this.fatal = 'error';
        break;
      }
      const len7 = b2 & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const hlen = 2 + ext + 4;
      if (end - pos < hlen) {
        this.#need = hlen;
        break;
      }
      const length = ext === 0 ? len7 : ext === 2 ? buf.readUInt16BE(pos + 2) : buf.readUInt32BE(pos + 2) * 0x100000000 + buf.readUInt32BE(pos + 6);
      if (length > MINIMAL_MAX_MESSAGE) {
        this.fatal = 'error';
        break;
      }
      if (end - pos < hlen + length) {
        this.#need = hlen + length;
        break;
      }
      const at = pos + hlen;
      xorMask(buf, at, length, buf, at - 4);
      pos = at + length;
      this.#frame(b1 & 0x0f, (b1 & 0x80) !== 0, buf.subarray(at, at + length));
    }
    if (this.fatal === undefined && pos < end) {
      this.#pending.push(buf.subarray(pos));
      this.#pendingLen = end - pos;
    }
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #frame(opcode: number, fin: boolean, payload: Buffer): void {
    if (opcode >= Op.CLOSE) {
      if (!fin || payload.length > 125) {
        this.fatal = 'error';
        return;
      }
      if (opcode === Op.PING) this.#echo(Op.PONG, payload);
      else if (opcode === Op.CLOSE) {
        this.#echo(Op.CLOSE, payload.length >= 2 ? payload.subarray(0, 2) : payload);
        this.fatal = 'close';
      }
      return;
    }
    if (opcode === Op.CONTINUATION) {
      if (this.#fragOpcode === 0) {
        this.fatal = 'error';
        return;
      }
      this.#append(payload);
      if (fin) {
        const message = this.#fragBuf!.subarray(0, this.#fragLen);
        const op = this.#fragOpcode;
        this.#fragOpcode = 0;
        this.#fragBuf = undefined;
        this.#fragLen = 0;
        this.#message(op, message);
      }
      return;
    }
    if ((opcode !== Op.TEXT && opcode !== Op.BINARY) || this.#fragOpcode !== 0) {
      this.fatal = 'error';
      return;
    }
    if (fin) {
      this.#message(opcode, payload);
      return;
    }
    this.#fragOpcode = opcode;
    this.#fragLen = 0;
    this.#fragBuf = undefined;
    this.#append(payload);
  }

  #append(payload: Buffer): void {
    const needed = this.#fragLen + payload.length;
    if (needed > MINIMAL_MAX_MESSAGE) {
      this.fatal = 'error';
      return;
    }
    let buf = this.#fragBuf;
    if (buf === undefined || buf.length < needed) {
      const next = Buffer.allocUnsafe(Math.max(1024, needed, buf === undefined ? 0 : buf.length * 2));
      if (buf !== undefined) buf.copy(next, 0, 0, this.#fragLen);
      this.#fragBuf = buf = next;
    }
    payload.copy(buf, this.#fragLen);
    this.#fragLen = needed;
  }

  #message(opcode: number, data: Buffer): void {
    if (opcode === Op.TEXT && !isUtf8(data)) {
      this.fatal = 'error';
      return;
    }
    this.#echo(opcode, data);
  }

  #echo(opcode: number, payload: Buffer): void {
    const header = Buffer.allocUnsafe(headerSize(payload.length, false));
    writeHeader(header, 0, opcode, true, payload.length, undefined);
    this.#out.push(header, payload);
  }
}
