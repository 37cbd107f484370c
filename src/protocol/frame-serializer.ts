import { WsmodError } from '../errors.ts';
import { isValidCloseCode } from './close-codes.ts';
import { FIN, MAX_CONTROL_PAYLOAD } from './constants.ts';
import { applyMask } from './mask.ts';

/** Size of the header of a frame with `length` payload bytes (RFC 6455 §5.2). */
export function frameHeaderSize(length: number, masked: boolean): number {
  const ext = length < 126 ? 0 : length <= 0xffff ? 2 : 8;
  return 2 + ext + (masked ? 4 : 0);
}

/** The fields of one frame header. */
export interface FrameHeaderInit {
  readonly opcode: number;
  readonly fin: boolean;
  /** RSV bits, already shifted (e.g. `RSV1` = 0x40). */
  readonly rsv?: number;
  readonly length: number;
  /** 4-byte masking key for client frames; omitted for server frames. */
  readonly maskKey?: Uint8Array;
}

/**
 * Writes a frame header into `target` at `offset`, using the minimal length encoding RFC 6455 §5.2
 * requires. Returns the number of bytes written. Stateless: one function for every frame.
 */
export function writeFrameHeader(target: Buffer, offset: number, init: FrameHeaderInit): number {
  const { length, maskKey } = init;
  target[offset] = (init.fin ? FIN : 0) | (init.rsv ?? 0) | init.opcode;
  const maskBit = maskKey === undefined ? 0 : 0x80;
  let at = offset + 2;
  if (length < 126) {
    target[offset + 1] = maskBit | length;
  } else if (length <= 0xffff) {
    target[offset + 1] = maskBit | 126;
    target.writeUInt16BE(length, at);
    at += 2;
  } else {
    target[offset + 1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(length / 0x100000000), at);
    target.writeUInt32BE(length >>> 0, at + 4);
    at += 8;
  }
  if (maskKey !== undefined) {
    target[at] = maskKey[0]!;
    target[at + 1] = maskKey[1]!;
    target[at + 2] = maskKey[2]!;
    target[at + 3] = maskKey[3]!;
    at += 4;
  }
  return at - offset;
}

/**
 * One whole frame in a new buffer: header, then the payload (masked with `maskKey` when given; the
 * caller's payload is never modified).
 */
export function encodeFrame(init: Omit<FrameHeaderInit, 'length'>, payload: Uint8Array): Buffer {
  const headerSize = frameHeaderSize(payload.length, init.maskKey !== undefined);
  const out = Buffer.allocUnsafe(headerSize + payload.length);
  writeFrameHeader(out, 0, { ...init, length: payload.length });
  out.set(payload, headerSize);
  if (init.maskKey !== undefined) applyMask(out, headerSize, out.length, init.maskKey, 0, 0);
  return out;
}

/**
 * The payload of a close frame (RFC 6455 §5.5.1): a 2-byte code and a UTF-8 reason, 125 bytes at most.
 * No code gives an empty payload. Throws WSMOD_ERR_INVALID_CLOSE for a code that may not be sent or a
 * reason that does not fit.
 */
export function encodeClosePayload(code?: number, reason = ''): Buffer {
  if (code === undefined) {
    if (reason !== '') throw new WsmodError('WSMOD_ERR_INVALID_CLOSE', 'a reason needs a code');
    return Buffer.alloc(0);
  }
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new WsmodError('WSMOD_ERR_INVALID_CLOSE', `code ${code} may not be sent`);
  }
  const reasonBytes = Buffer.byteLength(reason);
  if (2 + reasonBytes > MAX_CONTROL_PAYLOAD) {
    throw new WsmodError('WSMOD_ERR_INVALID_CLOSE', `reason is ${reasonBytes} bytes; at most 123 fit`);
  }
  const out = Buffer.allocUnsafe(2 + reasonBytes);
  out.writeUInt16BE(code, 0);
  out.write(reason, 2);
  return out;
}
