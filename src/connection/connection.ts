import type { Duplex } from 'node:stream';
import { randomFillSync } from 'node:crypto';
import { WsmodError } from '../errors.ts';
import { MAX_CONTROL_PAYLOAD, Opcode, RSV1 } from '../protocol/constants.ts';
import type { DeflateCodec } from '../protocol/permessage-deflate.ts';
import { isValidUtf8 } from '../protocol/utf8.ts';
import { FrameParser, type FrameHandler } from '../protocol/frame-parser.ts';
import { encodeClosePayload, frameHeaderSize, writeFrameHeader } from '../protocol/frame-serializer.ts';
import { applyMask } from '../protocol/mask.ts';
import { SMALL_FRAME, outputArena } from './output-arena.ts';
import type { PreparedMessage } from './prepared.ts';

/** What `send` did with a message. */
export type SendResult =
  /** Handed to the socket, which was keeping up. */
  | 'sent'
  /** Accepted, but the socket is backed up: it waits in memory until the peer reads (see onDrain). */
  | 'queued'
  /** Not sent: the connection is closing, or the outbound queue is over maxBackpressure. */
  | 'dropped';

/** What to do when a send would take the outbound queue over maxBackpressure. */
export type BackpressurePolicy = 'drop' | 'close';

/** Options of a {@link Connection}. All durations in milliseconds; 0 disables a timer. */
export interface ConnectionOptions {
  /** `server` expects masked frames and sends unmasked ones; `client` the reverse. */
  readonly role: 'server' | 'client';
  readonly maxMessageSize: number;
  /** Silence after which a ping is sent (0: no keepalive). */
  readonly idleTimeout: number;
  /** Time to hear anything after that ping before the peer is declared dead (> 0 when idleTimeout is). */
  readonly pongTimeout: number;
  /** Time for the closing handshake before the TCP connection is destroyed. */
  readonly closeTimeout: number;
  /** Outbound bytes held in memory (ours plus the socket's) beyond which `send` applies the policy. */
  readonly maxBackpressure: number;
  readonly backpressurePolicy: BackpressurePolicy;
  /** permessage-deflate, when negotiated (RFC 7692). */
  readonly deflate?: DeflateCodec | undefined;
  /**
   * Wraps the socket's read handler once, at start: the owner may run every read (and so every
   * message it delivers) in a context of its own, e.g. an async scope, per read rather than per message.
   */
  readonly bindReads?: ((read: (chunk: Buffer) => void) => (chunk: Buffer) => void) | undefined;
}

/** Work that must wait its turn behind a message being inflated or deflated. */
type Deferred =
  | { readonly kind: 'message'; readonly data: Buffer; readonly isBinary: boolean; readonly compressed: boolean }
  | { readonly kind: 'event'; readonly run: () => void };

/** An outgoing message waiting behind one being compressed, or the close frame that must follow them. */
type Outgoing =
  | { readonly kind: 'data'; readonly data: Buffer | string; readonly opcode: number; readonly length: number }
  | { readonly kind: 'prepared'; readonly message: PreparedMessage; readonly length: number }
  | { readonly kind: 'close'; readonly payload: Buffer; readonly reply: boolean };

/** Callbacks of a {@link Connection}. They must not throw: the host wraps plugin code. */
export interface ConnectionEvents {
  onMessage(data: Buffer, isBinary: boolean): void;
  /** The outbound queue drained after a send returned 'queued' or 'dropped'. */
  onDrain(): void;
  onPing?(data: Buffer): void;
  onPong?(data: Buffer): void;
  /**
   * Exactly once, when the TCP connection is gone. `code`/`reason`: the peer's close frame if one
   * arrived, else the code this side closed or failed the connection with, else 1006. `error` is set
   * when the connection ended through a failure (protocol violation, timeout, socket error).
   */
  onClose(code: number, reason: string, error: WsmodError | undefined): void;
  /**
   * Optional: the peer broke the protocol and the connection is about to fail. Returning true holds
   * the close frame until `resume` is called, so replies still owed for messages already delivered
   * (by a plugin in another thread) can go out first; nothing more is read meanwhile.
   */
  beforeFail?(resume: () => void): boolean;
}

/** The connection's life (RFC 6455 §4.1, §7). */
export const ReadyState = { OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

const EMPTY = Buffer.alloc(0);

/** A batch this large is written at once instead of waiting for the end of the chunk or tick. */
const FLUSH_THRESHOLD = 16 * 1024;

/** Keepalive ticks per idleTimeout: a ping goes out between 1 and 1.25 idleTimeouts of silence. */
const TICKS_PER_IDLE = 4;

/**
 * One WebSocket over a Duplex (a TCP or TLS socket after the handshake).
 *
 * Reading: socket data → {@link FrameParser} → events. Writing: frames go into a per-connection batch
 * (small frames back to back in the shared output arena) that leaves in one write at the end of the
 * current input chunk, or at the end of the current microtask when the send came from elsewhere.
 */
export class Connection implements FrameHandler {
  readonly #socket: Duplex;
  readonly #opts: ConnectionOptions;
  readonly #events: ConnectionEvents;
  readonly #parser: FrameParser;
  readonly #client: boolean;

  #state: ReadyState = ReadyState.OPEN;
  #closeSent = false;
  #closeReceived = false;
  #closeCode = 1006;
  #closeReason = '';
  #error: WsmodError | undefined;
  #closeTimer: NodeJS.Timeout | undefined;

  // Outbound batch: slices waiting for the next flush, and the open run in the output arena.
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #runBuf: Buffer | null = null;
  #runStart = 0;
  #runEnd = 0;
  #reading = false;
  #flushScheduled = false;
  #wantDrain = false;

  // Keepalive.
  readonly #afterWrite = (): void => this.#onSocketDrain();

  #keepalive: NodeJS.Timeout | undefined;
  #silentTicks = 0;
  #pingTicks = -1; // ticks since our keepalive ping; -1 when none is outstanding
  readonly #pongTicks: number;
  #tick = 0;

  // permessage-deflate: inbound events wait behind an inflating message, outbound messages behind a
  // deflating one, so order is kept although zlib is asynchronous.
  readonly #deflate: DeflateCodec | undefined;
  readonly #inbound: Deferred[] = [];
  #inflating = false;
  readonly #outbound: Outgoing[] = [];
  #outboundBytes = 0;
  #deflating = false;
  /** A peer-caused failure waits for beforeFail's resume. */
  #failHeld = false;

  /**
   * Takes over `socket` (which should be paused: nothing is read until {@link start}). Sending is
   * possible at once.
   */
  constructor(socket: Duplex, options: ConnectionOptions, events: ConnectionEvents) {
    this.#socket = socket;
    this.#opts = options;
    this.#events = events;
    this.#client = options.role === 'client';
    this.#deflate = options.deflate;
    this.#parser = new FrameParser(this, {
      role: options.role,
      maxMessageSize: options.maxMessageSize,
      allowedRsv: options.deflate === undefined ? 0 : RSV1,
    });
    const tick = options.idleTimeout / TICKS_PER_IDLE;
    this.#pongTicks = tick > 0 ? Math.max(1, Math.ceil(options.pongTimeout / tick)) : 0;

    // The HTTP server's timeouts must not reach an upgraded socket: an idle WebSocket is alive.
    const net = socket as Duplex & { setTimeout?: (ms: number) => void; setNoDelay?: (on: boolean) => void };
    net.setTimeout?.(0);
    net.setNoDelay?.(true);
    socket.on('error', (err: Error) => this.#onSocketError(err));
    socket.on('close', () => this.#onSocketClose());
    socket.on('end', () => this.#onSocketEnd());
    socket.on('drain', this.#afterWrite);
    this.#tick = tick;
  }

  /** Starts reading: first `head` (bytes that arrived with the handshake), then the socket. */
  start(head?: Buffer): void {
    if (this.#state === ReadyState.CLOSED) return;
    if (head !== undefined && head.length > 0) this.#onData(head);
    const read = (chunk: Buffer): void => this.#onData(chunk);
    this.#socket.on('data', this.#opts.bindReads?.(read) ?? read);
    this.#socket.resume();
    // Keepalive counts silence only while reading: before start() a pong could not be seen.
    if (this.#tick > 0 && this.#state === ReadyState.OPEN) {
      this.#keepalive = setInterval(() => this.#onTick(), this.#tick);
      this.#keepalive.unref();
    }
  }

  /** Current state: OPEN, CLOSING (close frame sent or received), CLOSED. */
  get readyState(): ReadyState {
    return this.#state;
  }

  /** Outbound bytes not yet handed to the kernel: this connection's batch plus the socket's buffer. */
  get bufferedAmount(): number {
    return this.#pendingBytes + (this.#runEnd - this.#runStart) + this.#outboundBytes + this.#socket.writableLength;
  }

  /** Sends one message. See {@link SendResult} for what the result means. */
  send(data: Buffer | Uint8Array | string, isBinary: boolean): SendResult {
    if (this.#state !== ReadyState.OPEN) return 'dropped';
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (this.#overLimit(length)) {
      if (this.#opts.backpressurePolicy === 'close') {
        this.fail(new WsmodError('WSMOD_ERR_BACKPRESSURE', `${this.bufferedAmount + length} bytes`));
      }
      return 'dropped';
    }
    // The kernel did not take everything written so far: this message waits in memory.
    const backedUp = this.#socket.writableLength > 0;
    const opcode = isBinary ? Opcode.BINARY : Opcode.TEXT;
    if (this.#deflate !== undefined && (this.#deflating || length >= this.#deflate.threshold)) {
      // Compressed later: keep a copy, the caller may reuse its buffer once send() returns.
      this.#outbound.push({ kind: 'data', data: typeof data === 'string' ? data : Buffer.from(data), opcode, length });
      this.#outboundBytes += length;
      this.#pumpOutbound();
    } else {
      this.#frame(opcode, data, length);
    }
    if (backedUp) {
      this.#wantDrain = true;
      return 'queued';
    }
    return 'sent';
  }

  /**
   * Sends a message framed once for many connections (see {@link PreparedMessage}), in order with
   * this connection's other messages (compressed ones included) and under the same maxBackpressure
   * accounting as {@link send}. Over the limit it returns 'dropped' without applying the
   * backpressurePolicy: the caller has a policy of its own for such messages (slow subscribers).
   */
  sendPrepared(message: PreparedMessage): SendResult {
    if (this.#state !== ReadyState.OPEN) return 'dropped';
    const length = message.payload.length;
    if (this.#overLimit(length)) return 'dropped';
    const backedUp = this.#socket.writableLength > 0;
    if (this.#deflate !== undefined && (this.#deflating || length >= this.#deflate.threshold)) {
      this.#outbound.push({ kind: 'prepared', message, length });
      this.#outboundBytes += length;
      this.#pumpOutbound();
    } else {
      this.#raw(message.frame);
    }
    if (backedUp) {
      this.#wantDrain = true;
      return 'queued';
    }
    return 'sent';
  }

  /**
   * True when `length` more bytes would take the outbound queue over maxBackpressure; then onDrain is
   * armed. A message is always accepted onto an empty queue, so any single message can be sent.
   */
  #overLimit(length: number): boolean {
    const queued = this.bufferedAmount;
    if (queued === 0 || queued + length <= this.#opts.maxBackpressure) return false;
    if (!this.#wantDrain) {
      this.#wantDrain = true;
      // The bytes already queued may carry no completion callback: an empty write after them reports
      // when they reached the kernel, so onDrain follows even when no further send happens.
      this.#flush();
      if (this.#socket.writable) this.#socket.write(EMPTY, this.#afterWrite);
    }
    return true;
  }

  /** Sends a ping (payload at most 125 bytes). Returns false when the connection is not open. */
  ping(data: Buffer | string = ''): boolean {
    return this.#control(Opcode.PING, data);
  }

  /** Sends an unsolicited pong (RFC 6455 §5.5.3 allows it as a one-way heartbeat). */
  pong(data: Buffer | string = ''): boolean {
    return this.#control(Opcode.PONG, data);
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2): sends a close frame and waits for the peer's, at
   * most closeTimeout, then the TCP connection is destroyed. Throws WSMOD_ERR_INVALID_CLOSE for a code
   * that may not be sent or a reason over 123 bytes. No-op once closing.
   */
  close(code?: number, reason?: string): void {
    const payload = encodeClosePayload(code, reason);
    if (this.#state !== ReadyState.OPEN) return;
    this.#closeCode = code ?? 1005;
    this.#closeReason = reason ?? '';
    if (this.#deflating) {
      // Messages still being compressed go first; nothing may follow the close frame (RFC 6455 §5.5.1).
      this.#state = ReadyState.CLOSING;
      this.#outbound.push({ kind: 'close', payload, reply: false });
      return;
    }
    this.#sendClose(payload);
    this.#flush();
  }

  /** Destroys the TCP connection at once, without a closing handshake (reported as 1006). */
  terminate(): void {
    if (this.#state === ReadyState.CLOSED) return;
    if (!this.#closeReceived) {
      this.#closeCode = 1006;
      this.#closeReason = '';
    }
    this.#socket.destroy();
  }

  // ---- FrameHandler (called by the parser) ----

  /** @internal */
  onMessage(data: Buffer, isBinary: boolean, compressed: boolean): void {
    // RFC 6455 §7.1.2: once we sent a close frame, further data is discarded.
    if (this.#closeSent) return;
    if (!compressed && !this.#inflating) {
      this.#events.onMessage(data, isBinary);
      return;
    }
    this.#inbound.push({ kind: 'message', data, isBinary, compressed });
    this.#pumpInbound();
  }

  /** @internal */
  onPing(data: Buffer): void {
    if (!this.#closeSent) this.#control(Opcode.PONG, data);
    if (this.#events.onPing !== undefined) this.#inOrder(() => this.#events.onPing?.(data));
  }

  /** @internal */
  onPong(data: Buffer): void {
    if (this.#events.onPong !== undefined) this.#inOrder(() => this.#events.onPong?.(data));
  }

  /** @internal RFC 6455 §5.5.1: a close frame from the peer (handled after the messages before it). */
  onClose(code: number, reason: Buffer): void {
    this.#inOrder(() => this.#peerClosed(code, reason));
  }

  /** Runs `run` now, or after the messages still being inflated. */
  #inOrder(run: () => void): void {
    if (!this.#inflating) run();
    else this.#inbound.push({ kind: 'event', run });
  }

  /** Delivers deferred inbound work in order, inflating compressed messages one at a time. */
  #pumpInbound(): void {
    while (!this.#inflating && this.#inbound.length > 0) {
      const item = this.#inbound.shift()!;
      if (item.kind === 'event') {
        item.run();
        continue;
      }
      if (this.#closeSent) continue;
      if (!item.compressed) {
        this.#events.onMessage(item.data, item.isBinary);
        continue;
      }
      // Reading pauses while a message inflates, so inbound memory stays bounded.
      this.#inflating = true;
      this.#socket.pause();
      this.#deflate!.decompress(item.data, this.#opts.maxMessageSize).then(
        (plain) => {
          this.#inflating = false;
          if (this.#state === ReadyState.CLOSED) return;
          if (!item.isBinary && !isValidUtf8(plain)) {
            this.#peerFailed(new WsmodError('WSMOD_ERR_INVALID_UTF8'));
            return;
          }
          if (!this.#closeSent) this.#events.onMessage(plain, item.isBinary);
          this.#pumpInbound();
          this.#flush();
          if (!this.#inflating && this.readyState !== ReadyState.CLOSED) this.#socket.resume();
        },
        (err: unknown) => {
          this.#inflating = false;
          this.#inbound.length = 0;
          this.#peerFailed(err instanceof WsmodError ? err : new WsmodError('WSMOD_ERR_INFLATE', String(err)));
        },
      );
    }
  }

  /** Compresses queued outgoing messages one at a time, keeping their order; then a queued close. */
  #pumpOutbound(): void {
    while (!this.#deflating && this.#outbound.length > 0) {
      const item = this.#outbound[0]!;
      if (item.kind === 'close') {
        this.#outbound.shift();
        this.#sendClose(item.payload);
        if (item.reply) this.#finishClosing();
        else this.#flush();
        continue;
      }
      if (this.#closeSent || this.readyState === ReadyState.CLOSED) {
        this.#outbound.length = 0;
        this.#outboundBytes = 0;
        return;
      }
      if (item.length < this.#deflate!.threshold) {
        this.#outbound.shift();
        this.#outboundBytes -= item.length;
        if (item.kind === 'prepared') this.#raw(item.message.frame);
        else this.#frame(item.opcode, item.data, item.length);
        continue;
      }
      this.#deflating = true;
      this.#compressed(item).then(
        (append) => {
          this.#deflating = false;
          this.#outbound.shift();
          this.#outboundBytes -= item.length;
          if (this.#state === ReadyState.CLOSED || this.#closeSent) return;
          append();
          this.#pumpOutbound();
        },
        (err: unknown) => {
          this.#deflating = false;
          this.fail(err instanceof WsmodError ? err : new WsmodError('WSMOD_ERR_SOCKET', String(err)));
        },
      );
    }
  }

  /**
   * Compresses a queued message; resolves to what appends its frame. A prepared message's compressed
   * frame is shared when the codec allows it (see PreparedMessage), else compressed here.
   */
  async #compressed(item: Extract<Outgoing, { kind: 'data' | 'prepared' }>): Promise<() => void> {
    const codec = this.#deflate!;
    if (item.kind === 'data') {
      const compressed = await codec.compress(typeof item.data === 'string' ? Buffer.from(item.data) : item.data);
      return () => this.#frame(item.opcode, compressed, compressed.length, RSV1);
    }
    const { message } = item;
    const key = codec.sharedKey;
    if (key !== undefined) {
      const frame = await message.compressedFrame(codec, key);
      return () => this.#raw(frame);
    }
    const compressed = await codec.compress(message.payload);
    return () => this.#frame(message.opcode, compressed, compressed.length, RSV1);
  }

  #peerClosed(code: number, reason: Buffer): void {
    this.#closeReceived = true;
    this.#closeCode = code;
    this.#closeReason = reason.toString();
    if (!this.#closeSent) {
      // Echo the peer's code; a close without a code is answered with 1000 (RFC 6455 §5.5.1).
      const payload = encodeClosePayload(code === 1005 ? 1000 : code);
      if (this.#deflating) {
        // Replies still being compressed were promised ('sent'): they go out before our close.
        this.#state = ReadyState.CLOSING;
        if (!this.#outbound.some((o) => o.kind === 'close')) this.#outbound.push({ kind: 'close', payload, reply: true });
        return;
      }
      this.#sendClose(payload);
    }
    this.#finishClosing();
  }

  // ---- internals ----

  #onData(chunk: Buffer): void {
    this.#silentTicks = 0;
    this.#pingTicks = -1;
    if (this.#parser.stopped) return;
    this.#reading = true;
    try {
      this.#parser.push(chunk);
    } catch (err) {
      this.#peerFailed(err instanceof WsmodError ? err : new WsmodError('WSMOD_ERR_SOCKET', String(err)));
    } finally {
      this.#reading = false;
    }
    this.#flush();
  }

  /** The peer broke the protocol: fail, after the replies the consumer still owes (see beforeFail). */
  #peerFailed(err: WsmodError): void {
    this.#parser.stop();
    if (this.#failHeld) return;
    const before = this.#events.beforeFail;
    if (before !== undefined && this.#state === ReadyState.OPEN && err.closeCode !== 1006) {
      this.#failHeld = true;
      const held = before.call(this.#events, () => {
        this.#failHeld = false;
        this.fail(err);
      });
      if (held) return;
      this.#failHeld = false;
    }
    this.fail(err);
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): a close frame with the error's close code, then the TCP
   * connection is closed. Errors whose close code is 1006 destroy the socket without a close frame.
   */
  fail(err: WsmodError): void {
    this.#parser.stop();
    this.#error ??= err;
    if (this.#state === ReadyState.CLOSED) return;
    const code = err.closeCode ?? 1011;
    if (!this.#closeSent && code !== 1006) {
      this.#closeCode = code;
      this.#closeReason = '';
      this.#sendClose(encodeClosePayload(code));
      this.#flush();
      this.#endTcp();
    } else if (code === 1006) {
      this.#closeCode = 1006;
      this.#socket.destroy();
    } else {
      this.#endTcp();
    }
  }

  #sendClose(payload: Buffer): void {
    this.#control(Opcode.CLOSE, payload);
    this.#closeSent = true;
    this.#state = ReadyState.CLOSING;
    this.#stopKeepalive();
    if (this.#opts.closeTimeout > 0 && this.#closeTimer === undefined) {
      this.#closeTimer = setTimeout(() => {
        this.#error ??= new WsmodError('WSMOD_ERR_CLOSE_TIMEOUT');
        this.#socket.destroy();
      }, this.#opts.closeTimeout);
      this.#closeTimer.unref();
    }
  }

  /** Both close frames exchanged: the server closes TCP first (RFC 6455 §7.1.1); a client waits for it. */
  #finishClosing(): void {
    this.#flush();
    if (!this.#client) this.#endTcp();
  }

  /** Ends our side of TCP once (a second end() would make Node build an error with a stack trace). */
  #endTcp(): void {
    this.#flush();
    if (!this.#socket.writableEnded) this.#socket.end();
  }

  #onSocketEnd(): void {
    // The peer will send nothing more. Whatever state we are in, our side ends too.
    this.#parser.stop();
    if (this.#state !== ReadyState.CLOSED) this.#endTcp();
  }

  #onSocketError(err: Error): void {
    this.#error ??= new WsmodError('WSMOD_ERR_SOCKET', err.message, { cause: err });
  }

  #onSocketClose(): void {
    if (this.#state === ReadyState.CLOSED) return;
    this.#state = ReadyState.CLOSED;
    this.#parser.stop();
    this.#deflate?.close();
    this.#inbound.length = 0;
    this.#outbound.length = 0;
    this.#outboundBytes = 0;
    this.#stopKeepalive();
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#runBuf = null;
    this.#runStart = this.#runEnd = 0;
    // Neither side sent a close frame: the closure was abnormal (RFC 6455 §7.1.5).
    if (!this.#closeReceived && !this.#closeSent) {
      this.#closeCode = 1006;
      this.#closeReason = '';
    }
    this.#events.onClose(this.#closeCode, this.#closeReason, this.#error);
  }

  /** After a write completes or the socket drains: onDrain once everything queued reached the kernel. */
  #onSocketDrain(): void {
    if (this.#wantDrain && this.#state === ReadyState.OPEN && this.bufferedAmount === 0) {
      this.#wantDrain = false;
      this.#events.onDrain();
    }
  }

  #onTick(): void {
    if (this.#pingTicks >= 0) {
      if (++this.#pingTicks >= this.#pongTicks) {
        this.#stopKeepalive();
        this.fail(new WsmodError('WSMOD_ERR_PONG_TIMEOUT'));
      }
      return;
    }
    if (++this.#silentTicks > TICKS_PER_IDLE) {
      this.#silentTicks = 0;
      this.#pingTicks = 0;
      this.#control(Opcode.PING, '');
    }
  }

  #stopKeepalive(): void {
    if (this.#keepalive !== undefined) {
      clearInterval(this.#keepalive);
      this.#keepalive = undefined;
    }
  }

  #control(opcode: number, data: Buffer | string): boolean {
    if (this.#closeSent || this.#state === ReadyState.CLOSED) return false;
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (length > MAX_CONTROL_PAYLOAD) throw new WsmodError('WSMOD_ERR_CONTROL_PAYLOAD', `${length} bytes`);
    this.#frame(opcode, data, length);
    return true;
  }

  /** Appends one whole frame to the outbound batch and makes sure a flush follows. */
  #frame(opcode: number, data: Buffer | Uint8Array | string, length: number, rsv = 0): void {
    const masked = this.#client;
    const headerSize = frameHeaderSize(length, masked);
    const maskKey = masked ? randomFillSync(Buffer.allocUnsafe(4)) : undefined;
    const init = maskKey === undefined ? { opcode, fin: true, rsv, length } : { opcode, fin: true, rsv, length, maskKey };
    const total = headerSize + length;
    const arena = outputArena;
    if (total <= SMALL_FRAME) {
      arena.reserve(total);
      const buf = arena.buf;
      const at = arena.at;
      writeFrameHeader(buf, at, init);
      if (typeof data === 'string') buf.write(data, at + headerSize);
      else buf.set(data, at + headerSize);
      if (maskKey !== undefined) applyMask(buf, at + headerSize, at + total, maskKey, 0, 0);
      arena.at = at + total;
      this.#appendRun(buf, at, at + total);
    } else {
      arena.reserve(headerSize);
      const buf = arena.buf;
      const at = arena.at;
      writeFrameHeader(buf, at, init);
      arena.at = at + headerSize;
      this.#appendRun(buf, at, at + headerSize);
      let payload: Buffer;
      if (typeof data === 'string') payload = Buffer.from(data);
      else if (maskKey !== undefined) payload = Buffer.from(data); // never mask the caller's buffer in place
      else payload = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (maskKey !== undefined) applyMask(payload, 0, length, maskKey, 0, 0);
      this.#closeRun();
      this.#pending.push(payload);
      this.#pendingBytes += length;
    }
    this.#appended();
  }

  /**
   * Appends a whole frame built elsewhere (shared by many connections): a small one is copied into the
   * arena to leave with this connection's other output in one write; a large one goes by reference.
   */
  #raw(frame: Buffer): void {
    if (frame.length <= SMALL_FRAME) {
      const arena = outputArena;
      arena.reserve(frame.length);
      const at = arena.at;
      arena.buf.set(frame, at);
      arena.at = at + frame.length;
      this.#appendRun(arena.buf, at, at + frame.length);
    } else {
      this.#closeRun();
      this.#pending.push(frame);
      this.#pendingBytes += frame.length;
    }
    this.#appended();
  }

  #appended(): void {
    // Coalescing pays for small frames; once a batch is this large, writing it now costs nothing extra
    // and keeps bufferedAmount honest about what the kernel has not taken.
    if (this.#pendingBytes + (this.#runEnd - this.#runStart) >= FLUSH_THRESHOLD) this.#flush();
    else this.#scheduleFlush();
  }

  /** Extends the open run when the new bytes follow it in the same arena, else starts a new run. */
  #appendRun(buf: Buffer, start: number, end: number): void {
    if (this.#runBuf === buf && this.#runEnd === start) {
      this.#runEnd = end;
      return;
    }
    this.#closeRun();
    this.#runBuf = buf;
    this.#runStart = start;
    this.#runEnd = end;
  }

  #closeRun(): void {
    if (this.#runBuf === null) return;
    this.#pending.push(this.#runBuf.subarray(this.#runStart, this.#runEnd));
    this.#pendingBytes += this.#runEnd - this.#runStart;
    this.#runBuf = null;
    this.#runStart = this.#runEnd = 0;
  }

  #scheduleFlush(): void {
    // Inside an input chunk the flush happens when the chunk is done; elsewhere at the end of this tick.
    if (this.#reading || this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** Writes the whole batch: one write for one slice, else a corked burst that Node sends with writev. */
  #flush(): void {
    this.#closeRun();
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    this.#pendingBytes = 0;
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) return;
    // While a plugin waits for onDrain, the last write reports when the queue reached the kernel.
    const done = this.#wantDrain ? this.#afterWrite : undefined;
    if (pending.length === 1) {
      socket.write(pending[0]!, done);
      return;
    }
    socket.cork();
    const last = pending.length - 1;
    for (let i = 0; i < last; i++) socket.write(pending[i]!);
    socket.write(pending[last]!, done);
    socket.uncork();
  }
}
