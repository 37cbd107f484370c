import { Opcode, RSV1 } from '../protocol/constants.ts';
import { encodeFrame, frameHeaderSize, writeFrameHeader } from '../protocol/frame-serializer.ts';
import type { DeflateCodec } from '../protocol/permessage-deflate.ts';

/**
 * One message framed once for many connections (topic fan-out, as uWebSockets.js prepares a message):
 * the unmasked server frame — header and payload, RFC 6455 §5.2 — is built on first use and the same
 * bytes are written to every connection that sends it uncompressed. With permessage-deflate, every
 * connection compressing without context takeover with equal settings ({@link DeflateCodec.sharedKey})
 * shares one compressed frame, compressed once; a connection with context takeover compresses the
 * payload itself (its bytes depend on its own history, RFC 7692 §7.2.1).
 */
export class PreparedMessage {
  /** The whole uncompressed frame. */
  readonly frame: Buffer;
  /** The message (a text message as UTF-8): a view of {@link frame}'s payload. */
  readonly payload: Buffer;
  readonly binary: boolean;
  readonly #compressed = new Map<string, Promise<Buffer>>();
  /** Compressions performed for sharing (one per distinct parameter set), for tests and metrics. */
  sharedCompressions = 0;

  /** Copies `data` once, straight into the frame (the caller may reuse its buffer afterwards). */
  constructor(data: string | Uint8Array, binary: boolean) {
    this.binary = binary;
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const headerSize = frameHeaderSize(length, false);
    const frame = Buffer.allocUnsafe(headerSize + length);
    writeFrameHeader(frame, 0, { opcode: this.opcode, fin: true, length });
    if (typeof data === 'string') frame.write(data, headerSize);
    else frame.set(data, headerSize);
    this.frame = frame;
    this.payload = frame.subarray(headerSize);
  }

  get opcode(): number {
    return this.binary ? Opcode.BINARY : Opcode.TEXT;
  }

  /**
   * The whole compressed frame (RSV1 set, RFC 7692 §6) for connections whose codec has this
   * `sharedKey`; compressed once per key, by the first connection that asks.
   */
  compressedFrame(codec: DeflateCodec, key: string): Promise<Buffer> {
    let frame = this.#compressed.get(key);
    if (frame === undefined) {
      this.sharedCompressions++;
      frame = codec.compress(this.payload).then((compressed) => encodeFrame({ opcode: this.opcode, fin: true, rsv: RSV1 }, compressed));
      this.#compressed.set(key, frame);
    }
    return frame;
  }
}
