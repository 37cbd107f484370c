import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { clientHandshake } from '../client/handshake.ts';
import { WsmodError } from '../errors.ts';
import { RSV1 } from '../protocol/constants.ts';
import { parseExtensions } from '../protocol/extensions.ts';
import { FrameParser, type FrameHandler } from '../protocol/frame-parser.ts';
import { encodeFrame } from '../protocol/frame-serializer.ts';
import { DEFAULT_DEFLATE, type DeflateConfig, DeflateCodec, type DeflateParams, acceptDeflateResponse } from '../protocol/permessage-deflate.ts';
import { isValidUtf8 } from '../protocol/utf8.ts';
import type {
  CaseContext,
  CaseDefinition,
  CaseResult,
  Expectation,
  ExpectedClose,
  FrameSpec,
  ObservedEvent,
  SendMessageOptions,
  WireEntry,
} from './types.ts';
import { CLOSE } from './types.ts';
import { judge, sameEvents } from './verdict.ts';

/** Options of one case run. */
export interface CaseSessionOptions {
  /** How long to wait for the server's close frame after ours, and for the server to close TCP after the close handshake (ms). */
  readonly closeWait?: number;
  /** Largest message accepted from the server. */
  readonly maxMessageSize?: number;
  /** Wire log limits: entries kept, and bytes shown per entry. */
  readonly wireEntries?: number;
  readonly wireBytes?: number;
}

const DEFAULT_TIMEOUT = 10_000;

/**
 * How the suite compresses: every message whatever its size (as Autobahn's client does), zlib's
 * default level and memLevel. Context takeover and windows come from the negotiated parameters.
 */
const CLIENT_DEFLATE: DeflateConfig = { ...DEFAULT_DEFLATE, threshold: 0 };

/**
 * The server's answer to permessage-deflate offers: the parameters in use, undefined when the server
 * answered no extension, or why the client must fail the connection (RFC 7692 §7.1: one
 * permessage-deflate element with valid parameters, consistent with one of the offers).
 */
export function acceptDeflateOffers(responseHeader: string, offers: readonly string[]): DeflateParams | string | undefined {
  const answered = parseExtensions(responseHeader);
  if (answered === null) return `malformed Sec-WebSocket-Extensions in the response: ${responseHeader}`;
  if (answered.length === 0) return undefined;
  if (answered.length > 1) return `the server answered ${answered.length} extensions, one permessage-deflate was expected: ${responseHeader}`;
  const response = answered[0]!;
  const reasons: string[] = [];
  for (const offer of offers) {
    const parsed = parseExtensions(offer)?.[0];
    if (parsed === undefined) continue;
    const accepted = acceptDeflateResponse(response, parsed);
    if (typeof accepted !== 'string') return accepted;
    reasons.push(accepted);
  }
  return `the response "${responseHeader}" fits none of the offers (${[...new Set(reasons)].join('; ')})`;
}

/**
 * One case on one connection: the CaseContext a case drives, the client side of the protocol
 * (a strict frame parser, auto-pong, the closing handshake as Autobahn's fuzzing client plays it),
 * and the record from which the verdict is computed.
 */
export class CaseSession implements CaseContext, FrameHandler {
  readonly #def: CaseDefinition;
  readonly #url: string;
  readonly #opts: Required<CaseSessionOptions>;
  readonly received: ObservedEvent[] = [];
  readonly #notes: string[] = [];
  readonly #wire: WireEntry[] = [];
  #wireDropped = 0;
  #socket: Socket | undefined;
  #parser: FrameParser | undefined;
  #t0 = 0;
  #opened = 0;
  #sendChain: Promise<void> = Promise.resolve();

  // permessage-deflate (cases with `deflate`): the codec once negotiated; inbound events wait their
  // turn behind a message being inflated, so they are recorded in wire order.
  #codec: DeflateCodec | undefined;
  #deflate: DeflateParams | undefined;
  #inbound: Promise<void> = Promise.resolve();
  #handshakeError: string | undefined;
  #unimplemented: string | undefined;

  #expected: Expectation | undefined;
  #expectedClose: ExpectedClose | undefined;
  #closeSent = false;
  #closeReceived = false;
  #closedByMe = false;
  #droppedByMe = false;
  #failedByMe = false;
  #remoteCloseCode: number | null = null;
  #remoteCloseReason: string | null = null;
  #tcpClosed = false;
  #closeTimer: NodeJS.Timeout | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  #done!: () => void;
  readonly #finished = new Promise<void>((resolve) => (this.#done = resolve));

  constructor(url: string, def: CaseDefinition, options: CaseSessionOptions = {}) {
    this.#url = url;
    this.#def = def;
    this.#opts = {
      closeWait: options.closeWait ?? 2000,
      maxMessageSize: options.maxMessageSize ?? 256 * 1024 * 1024,
      wireEntries: options.wireEntries ?? 400,
      wireBytes: options.wireBytes ?? 64,
    };
  }

  /** Runs the case to the end of its connection and judges it. */
  async run(): Promise<CaseResult> {
    this.#t0 = performance.now();
    const timeout = this.#def.timeout ?? DEFAULT_TIMEOUT;
    try {
      const offers = this.#def.deflate?.offers;
      const handshakeTimeout = Math.min(timeout, 10_000);
      const hs = await clientHandshake(
        this.#url,
        offers === undefined ? { timeout: handshakeTimeout } : { timeout: handshakeTimeout, extensions: offers.join(', ') },
      );
      this.#info(`handshake request:\n${hs.request.trimEnd()}`);
      this.#info(`handshake response:\n${hs.response}`);
      if (offers !== undefined) {
        const accepted = acceptDeflateOffers(hs.extensions, offers);
        if (typeof accepted === 'string') {
          // RFC 6455 §4.1, RFC 7692 §7.1: the client fails the connection; the case never opens.
          hs.socket.destroy();
          this.#handshakeError = accepted;
          throw new Error(`the client refuses the server's handshake: ${accepted}`);
        }
        if (accepted === undefined) {
          this.#unimplemented = 'The server did not accept the permessage-deflate offer (no extension in its response).';
        } else {
          this.#deflate = accepted;
          this.#codec = new DeflateCodec(accepted, 'client', CLIENT_DEFLATE);
          this.#info(`permessage-deflate in use: ${JSON.stringify(accepted)}`);
        }
      }
      this.#socket = hs.socket;
      this.#opened = performance.now();
      this.#parser = new FrameParser(
        this,
        this.#codec === undefined
          ? { role: 'client', maxMessageSize: this.#opts.maxMessageSize }
          : { role: 'client', maxMessageSize: this.#opts.maxMessageSize, allowedRsv: RSV1 },
      );
      const socket = hs.socket;
      socket.on('data', (chunk: Buffer) => this.#onData(chunk));
      socket.on('error', (err) => this.note(`socket error: ${err.message}`));
      socket.on('close', () => this.#onTcpClose());
      socket.on('end', () => this.#info('server closed its side (FIN)'));
      if (hs.head.length > 0) this.#onData(hs.head);
      socket.resume();
      this.#timers.push(
        setTimeout(() => {
          if (this.#tcpClosed) return;
          this.note(`case timeout after ${timeout} ms: dropping the connection`);
          this.#drop();
        }, timeout),
      );
      // The case's script may still be sleeping when the connection ends; the connection's end is the
      // end of the case (its later sends are no-ops).
      const script = Promise.resolve()
        .then(() => (this.#unimplemented === undefined ? this.#def.run(this) : this.#skipUnimplemented()))
        .catch((err: unknown) => {
          this.note(`case threw: ${(err as Error).stack ?? String(err)}`);
          this.#drop();
        });
      await Promise.race([script.then(() => this.#finished), this.#finished]);
    } catch (err) {
      this.note(`could not connect: ${(err as Error).message}`);
      this.#tcpClosed = true;
    } finally {
      for (const t of this.#timers) clearTimeout(t);
      if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
      this.#codec?.close();
    }
    const duration = performance.now() - (this.#opened || this.#t0);
    return judge({
      def: this.#def,
      received: this.received,
      expected: this.#expected,
      expectedClose: this.#expectedClose,
      closedByMe: this.#closedByMe,
      droppedByMe: this.#droppedByMe,
      wasClean: this.#closeSent && this.#closeReceived && !this.#droppedByMe && !this.#failedByMe,
      connected: this.#socket !== undefined,
      handshakeError: this.#handshakeError,
      unimplemented: this.#unimplemented,
      remoteCloseCode: this.#remoteCloseCode,
      remoteCloseReason: this.#remoteCloseReason,
      duration,
      wire: this.#wireDropped > 0 ? [...this.#wire, this.#entry('info', `${this.#wireDropped} more wire entries not shown`)] : this.#wire,
      notes: this.#notes,
    });
  }

  // ---- CaseContext ----

  expect(expectation: Expectation, close: ExpectedClose): void {
    this.#expected = expectation;
    this.#expectedClose = close;
  }

  sendFrame(frame: FrameSpec): Promise<void> {
    const payload = typeof frame.payload === 'string' ? Buffer.from(frame.payload) : (frame.payload ?? Buffer.alloc(0));
    const mask = frame.mask ?? true;
    const bytes = encodeFrame(
      mask
        ? { opcode: frame.opcode, fin: frame.fin ?? true, rsv: (frame.rsv ?? 0) << 4, maskKey: frame.maskKey ?? randomBytes(4) }
        : { opcode: frame.opcode, fin: frame.fin ?? true, rsv: (frame.rsv ?? 0) << 4 },
      payload,
    );
    return this.#enqueue(bytes, frame.chopsize, frame.chopDelay);
  }

  sendRaw(bytes: Buffer, options: { readonly chopsize?: number; readonly chopDelay?: number } = {}): Promise<void> {
    return this.#enqueue(bytes, options.chopsize, options.chopDelay);
  }

  async sendMessage(payload: Buffer | string, binary: boolean, options: SendMessageOptions = {}): Promise<void> {
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const size = options.fragmentSize ?? 0;
    const opcode = binary ? 0x2 : 0x1;
    const codec = this.#codec;
    if (options.compress === true && codec === undefined) throw new Error('sendMessage: compress requested but permessage-deflate is not in use');
    if (codec !== undefined && options.compress !== false) {
      // Compressed in turn on the send chain: messages keep their order, and so does the compression
      // context (context takeover). RSV1 on the first frame only (RFC 7692 §6).
      const next = this.#sendChain.then(async () => {
        const body = await codec.compress(data);
        await this.#write(messageFrames(body, opcode, size, RSV1));
      });
      this.#sendChain = next.catch(() => {});
      await next;
      return;
    }
    if (size <= 0 || data.length <= size) {
      await this.sendFrame({ opcode, payload: data });
      return;
    }
    const frames: Buffer[] = [];
    for (let at = 0; at < data.length; at += size) {
      const end = Math.min(at + size, data.length);
      frames.push(encodeFrame({ opcode: at === 0 ? opcode : 0x0, fin: end === data.length, maskKey: randomBytes(4) }, data.subarray(at, end)));
    }
    await this.#enqueue(Buffer.concat(frames));
  }

  compress(payload: Buffer | string): Promise<Buffer> {
    const codec = this.#codec;
    if (codec === undefined) return Promise.reject(new Error('compress: permessage-deflate is not in use'));
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const next = this.#sendChain.then(() => codec.compress(data));
    this.#sendChain = next.then(
      () => {},
      () => {},
    );
    return next;
  }

  get deflate(): DeflateParams | undefined {
    return this.#deflate;
  }

  sendClose(code?: number, reason?: Buffer | string): Promise<void> {
    // Once closing has started, a further close is ignored (as Autobahn's sendClose does).
    if (this.#closeSent || this.#tcpClosed) return Promise.resolve();
    // Like Autobahn's sendCloseFrame: with no code, a given reason is the whole payload (e.g. 1 octet).
    const r = typeof reason === 'string' ? Buffer.from(reason) : (reason ?? Buffer.alloc(0));
    let payload = r;
    if (code !== undefined) {
      payload = Buffer.alloc(2 + r.length);
      payload.writeUInt16BE(code & 0xffff, 0);
      r.copy(payload, 2);
    }
    this.#markCloseSent();
    return this.sendFrame({ opcode: 0x8, payload });
  }

  sleep(ms: number): Promise<void> {
    // Unreferenced: a script sleeping past the end of its connection must not keep the process alive.
    return sleep(ms, undefined, { ref: false });
  }

  killAfter(seconds: number): void {
    this.#timers.push(
      setTimeout(() => {
        if (this.#tcpClosed) return;
        this.note(`killAfter(${seconds}): dropping the connection`);
        this.#drop();
      }, seconds * 1000),
    );
  }

  isOpen(): boolean {
    return !this.#closeSent && !this.#closeReceived && !this.#tcpClosed && this.#socket !== undefined;
  }

  note(line: string): void {
    this.#notes.push(line);
    this.#info(line);
  }

  elapsed(): number {
    return performance.now() - this.#opened;
  }

  // ---- FrameHandler: what the server sends ----

  /** @internal `compressed`: RSV1 was set on the message's first frame (permessage-deflate). */
  onMessage(data: Buffer, isBinary: boolean, compressed: boolean): void {
    const codec = this.#codec;
    if (codec === undefined) {
      this.#event({ type: 'message', data: Buffer.from(data), binary: isBinary });
      return;
    }
    const copy = compressed ? data : Buffer.from(data);
    this.#inOrder(async () => {
      const payload = compressed ? await codec.decompress(copy, this.#opts.maxMessageSize) : copy;
      // The parser leaves compressed text unchecked: UTF-8 is a property of the inflated message (RFC 7692 §6).
      if (compressed && !isBinary && !isValidUtf8(payload)) throw new WsmodError('WSMOD_ERR_INVALID_UTF8');
      this.#event({ type: 'message', data: payload, binary: isBinary });
    });
  }

  /** @internal */
  onPing(data: Buffer): void {
    const copy = Buffer.from(data);
    if (this.#codec === undefined) this.#ping(copy);
    else this.#inOrder(() => this.#ping(copy));
  }

  /** @internal */
  onPong(data: Buffer): void {
    const copy = Buffer.from(data);
    if (this.#codec === undefined) this.#event({ type: 'pong', data: copy });
    else this.#inOrder(() => this.#event({ type: 'pong', data: copy }));
  }

  /** @internal The server's close frame: answer it (Autobahn echoes the code), then wait for the server to close TCP. */
  onClose(code: number, reason: Buffer): void {
    if (this.#codec === undefined) this.#close(code, reason);
    else {
      const copy = Buffer.from(reason);
      this.#inOrder(() => this.#close(code, copy));
    }
  }

  // ---- internals ----

  #ping(data: Buffer): void {
    if (!this.#closeSent) void this.sendFrame({ opcode: 0xa, payload: data });
    this.#event({ type: 'ping', data });
  }

  #close(code: number, reason: Buffer): void {
    this.#closeReceived = true;
    this.#remoteCloseCode = code === 1005 ? null : code;
    this.#remoteCloseReason = code === 1005 ? null : reason.toString();
    this.#info(`close frame from the server: ${code === 1005 ? 'no code' : code} ${reason.toString()}`);
    if (!this.#closeSent) {
      this.#closeSent = true;
      const payload = Buffer.alloc(code === 1005 ? 0 : 2);
      if (code !== 1005) payload.writeUInt16BE(code, 0);
      void this.sendFrame({ opcode: 0x8, payload });
    }
    this.#armCloseWait();
  }

  /**
   * With permessage-deflate: runs inbound work in wire order behind messages being inflated. A message
   * that does not inflate fails the connection (1007, RFC 7692 §7.2.2 / WSMOD_ERR_INFLATE) and nothing
   * after it is recorded.
   */
  #inOrder(job: () => void | Promise<void>): void {
    this.#inbound = this.#inbound.then(async () => {
      if (this.#failedByMe) return;
      try {
        await job();
      } catch (err) {
        this.#parser?.stop();
        this.#failConnection(err as WsmodError);
      }
    });
  }

  /** Autobahn's case for a feature the server lacks: no script, the client closes normally at once. */
  #skipUnimplemented(): Promise<void> {
    this.note(this.#unimplemented ?? 'unimplemented');
    this.expect({}, { closedByMe: true, closeCode: [CLOSE.NORMAL], requireClean: true });
    return this.sendClose(CLOSE.NORMAL);
  }

  #event(event: ObservedEvent): void {
    const keep = this.#def.onEvent?.(this, event);
    if (keep !== false) this.received.push(event);
    this.#finishWhenDone();
  }

  /** Autobahn's finishWhenDone: once what was received matches every expectation, close if the case says so. */
  #finishWhenDone(): void {
    const expected = this.#expected;
    const close = this.#expectedClose;
    if (expected === undefined || close === undefined || this.#closeSent) return;
    for (const list of Object.values(expected)) {
      if (list !== undefined && !sameEvents(this.received, list)) return;
    }
    if (close.closedByMe) void this.sendClose(close.closeCode[0] ?? 1000);
  }

  #onData(chunk: Buffer): void {
    this.#log('rx', chunk);
    const parser = this.#parser;
    if (parser === undefined || parser.stopped) return;
    try {
      parser.push(chunk);
    } catch (err) {
      this.#failConnection(err as WsmodError);
    }
  }

  /** The server broke the protocol: fail the connection as a client must (RFC 6455 §7.1.7). */
  #failConnection(e: WsmodError): void {
    this.note(`server violated the protocol: ${e.code ?? ''} ${e.message}`);
    this.#failedByMe = true;
    if (!this.#closeSent) {
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(e.closeCode ?? 1002, 0);
      if (!this.#closeReceived) this.#closedByMe = true;
      this.#closeSent = true;
      void this.sendFrame({ opcode: 0x8, payload }).then(() => this.#drop());
    } else {
      this.#drop();
    }
  }

  /** Any close frame the client puts on the wire starts (or answers) the closing handshake. */
  #markCloseSent(): void {
    if (!this.#closeSent && !this.#closeReceived) this.#closedByMe = true;
    this.#closeSent = true;
    this.#armCloseWait();
  }

  /** After close frames: give the server closeWait to finish its part, then drop TCP ourselves. */
  #armCloseWait(): void {
    if (this.#tcpClosed) return;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = setTimeout(() => {
      if (this.#tcpClosed) return;
      this.note(
        this.#closeReceived
          ? `the server did not close the TCP connection within ${this.#opts.closeWait} ms of the closing handshake`
          : `no close frame from the server within ${this.#opts.closeWait} ms`,
      );
      this.#drop();
    }, this.#opts.closeWait);
  }

  #drop(): void {
    if (this.#tcpClosed || this.#socket === undefined) return;
    this.#droppedByMe = true;
    this.#info('client drops the TCP connection');
    this.#socket.destroy();
  }

  #onTcpClose(): void {
    if (this.#tcpClosed) return;
    this.#tcpClosed = true;
    this.#info(this.#droppedByMe ? 'TCP closed (by the client)' : 'TCP closed (by the server)');
    this.#parser?.stop();
    // Messages still inflating are recorded before the case ends.
    if (this.#codec === undefined) this.#done();
    else void this.#inbound.then(() => this.#done());
  }

  #enqueue(bytes: Buffer, chopsize?: number, chopDelay?: number): Promise<void> {
    const next = this.#sendChain.then(() => this.#write(bytes, chopsize, chopDelay));
    this.#sendChain = next.catch(() => {});
    return next;
  }

  async #write(bytes: Buffer, chopsize?: number, chopDelay?: number): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || this.#tcpClosed || !socket.writable) return;
    if (chopsize === undefined || chopsize <= 0 || chopsize >= bytes.length) {
      this.#log('tx', bytes);
      await new Promise<void>((resolve) => socket.write(bytes, () => resolve()));
      return;
    }
    for (let at = 0; at < bytes.length; at += chopsize) {
      if (this.#tcpClosed || !socket.writable) return;
      const piece = bytes.subarray(at, Math.min(at + chopsize, bytes.length));
      this.#log('tx', piece);
      socket.write(piece);
      if (chopDelay !== undefined && chopDelay > 0) await sleep(chopDelay);
      else await nextTurn();
    }
  }

  #entry(dir: WireEntry['dir'], text: string, bytes?: number): WireEntry {
    const t = Math.round((performance.now() - this.#t0) * 1000) / 1000;
    return bytes === undefined ? { t, dir, text } : { t, dir, text, bytes };
  }

  #info(text: string): void {
    this.#push(this.#entry('info', text));
  }

  #log(dir: 'tx' | 'rx', bytes: Buffer): void {
    const shown = bytes.subarray(0, this.#opts.wireBytes).toString('hex');
    this.#push(this.#entry(dir, bytes.length > this.#opts.wireBytes ? `${shown}…` : shown, bytes.length));
  }

  #push(entry: WireEntry): void {
    if (this.#wire.length < this.#opts.wireEntries) this.#wire.push(entry);
    else this.#wireDropped++;
  }
}

/** A message's frames: one, or fragments of `size` payload octets; `rsv` on the first frame only. */
function messageFrames(data: Buffer, opcode: number, size: number, rsv: number): Buffer {
  if (size <= 0 || data.length <= size) return encodeFrame({ opcode, fin: true, rsv, maskKey: randomBytes(4) }, data);
  const frames: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) {
    const end = Math.min(at + size, data.length);
    const first = at === 0;
    frames.push(encodeFrame({ opcode: first ? opcode : 0x0, fin: end === data.length, rsv: first ? rsv : 0, maskKey: randomBytes(4) }, data.subarray(at, end)));
  }
  return Buffer.concat(frames);
}
