/**
 * A small WebSocket echo server written from scratch on `node:net`, independent of wsmod's own code
 * (and of the `ws` package), used to prove that `wsmod check` judges honestly: with no defects it
 * behaves as RFC 6455 asks; each flag of {@link Defects} switches on one deliberate defect, and the
 * cases that probe that behaviour must then come out FAILED.
 *
 * What it implements: the HTTP upgrade handshake, an incremental frame parser (frames may arrive in
 * any chops; the header is judged as soon as it is complete, text payload is validated as its bytes
 * arrive so that invalid UTF-8 fails fast), echo of text and binary messages (fragments reassembled),
 * auto-pong, and the closing handshake (the server answers a close with the same code, 1000 for an
 * empty close, then closes TCP). Protocol errors fail the connection with 1002, invalid UTF-8 with 1007.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { type Server, type Socket, createServer } from 'node:net';

/** Deliberate defects; each flag breaks exactly one behaviour. */
export interface Defects {
  /** Echo text messages with invalid UTF-8 as they are (no 1007). */
  readonly noUtf8Validation?: boolean;
  /** Ignore the RSV bits (no 1002) and process the frame as if they were 0. */
  readonly acceptRsv?: boolean;
  /** Never answer pings. */
  readonly noPong?: boolean;
  /** After the closing handshake, never close the TCP connection. */
  readonly noTcpClose?: boolean;
  /** Echo each fragment of a fragmented message as its own message instead of the reassembled one. */
  readonly badFragmentEcho?: boolean;
}

export interface MiniServer {
  /** ws://127.0.0.1:port/ */
  readonly url: string;
  close(): Promise<void>;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_MESSAGE = 64 * 1024 * 1024;
/** How long the server waits for the peer's close frame after it sent its own (failing) close. */
const CLOSE_REPLY_WAIT = 1000;

/** Starts the server on 127.0.0.1 and a free port. */
export async function startMiniServer(defects: Defects = {}): Promise<MiniServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    new Connection(socket, defects);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('mini-server: no TCP address');
  return {
    url: `ws://127.0.0.1:${address.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// UTF-8: an incremental validator (RFC 3629 well-formed sequences: no overlongs, no surrogates,
// nothing above U+10FFFF), so a message can be judged fragment by fragment and byte by byte.
// ---------------------------------------------------------------------------------------------

class Utf8Validator {
  #need = 0;
  #lo = 0x80;
  #hi = 0xbf;

  /** Feeds bytes; false as soon as the sequence can no longer be valid UTF-8. */
  push(bytes: Buffer): boolean {
    for (const b of bytes) {
      if (this.#need === 0) {
        if (b < 0x80) continue;
        this.#lo = 0x80;
        this.#hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) this.#need = 1;
        else if (b === 0xe0) [this.#need, this.#lo] = [2, 0xa0];
        else if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) this.#need = 2;
        else if (b === 0xed) [this.#need, this.#hi] = [2, 0x9f];
        else if (b === 0xf0) [this.#need, this.#lo] = [3, 0x90];
        else if (b >= 0xf1 && b <= 0xf3) this.#need = 3;
        else if (b === 0xf4) [this.#need, this.#hi] = [3, 0x8f];
        else return false;
      } else {
        if (b < this.#lo || b > this.#hi) return false;
        this.#need--;
        this.#lo = 0x80;
        this.#hi = 0xbf;
      }
    }
    return true;
  }

  /** True when the bytes so far end on a character boundary. */
  get complete(): boolean {
    return this.#need === 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/** An unmasked server frame. */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 0x10000 ? 2 : 8;
  const header = Buffer.alloc(2 + ext);
  header[0] = (fin ? 0x80 : 0) | opcode;
  header[1] = ext === 0 ? n : ext === 2 ? 126 : 127;
  if (ext === 2) header.writeUInt16BE(n, 2);
  else if (ext === 8) header.writeBigUInt64BE(BigInt(n), 2);
  return Buffer.concat([header, payload]);
}

function closePayload(code: number, reason = ''): Buffer {
  const r = Buffer.from(reason);
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return p;
}

/** Close codes a peer may send (RFC 6455 §7.4.1, §7.4.2; 1012–1014 registered with IANA since). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

interface FrameHeader {
  readonly fin: boolean;
  readonly opcode: number;
  readonly length: number;
  readonly mask: Buffer;
}

class Fail extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

type State = 'handshake' | 'open' | 'closing' | 'closed';

class Connection {
  readonly #socket: Socket;
  readonly #defects: Defects;
  #state: State = 'handshake';
  #buf: Buffer = Buffer.alloc(0);

  // the frame being read
  #frame: FrameHeader | undefined;
  #payload: Buffer[] = [];
  #received = 0;

  // the message being reassembled
  #msgOpcode = 0; // 0: no message in progress
  #msgParts: Buffer[] = [];
  #msgSize = 0;
  #utf8: Utf8Validator | undefined;

  #closeTimer: NodeJS.Timeout | undefined;
  /** The peer's close frame has arrived (a failure found in it needs no further wait). */
  #peerClosed = false;

  constructor(socket: Socket, defects: Defects) {
    this.#socket = socket;
    this.#defects = defects;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => {
      this.#state = 'closed';
      if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    });
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#state === 'handshake') {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.#buf.length > 16 * 1024) this.#socket.destroy();
        return;
      }
      const head = this.#buf.subarray(0, end).toString('latin1');
      this.#buf = this.#buf.subarray(end + 4);
      if (!this.#handshake(head)) return;
    }
    try {
      this.#parse();
    } catch (err) {
      if (!(err instanceof Fail)) throw err;
      this.#fail(err.code, err.message);
    }
  }

  // ---- HTTP upgrade ----

  #handshake(head: string): boolean {
    const [requestLine = '', ...lines] = head.split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
    }
    const tokens = (name: string) => (headers.get(name) ?? '').split(',').map((t) => t.trim().toLowerCase());
    const key = headers.get('sec-websocket-key') ?? '';
    const ok =
      /^GET \S+ HTTP\/1\.1$/.test(requestLine) &&
      tokens('upgrade').includes('websocket') &&
      tokens('connection').includes('upgrade') &&
      headers.get('sec-websocket-version') === '13' &&
      Buffer.from(key, 'base64').length === 16;
    if (!ok) {
      this.#state = 'closed';
      this.#socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return false;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    this.#socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    this.#state = 'open';
    return true;
  }

  // ---- frames ----

  /** Consumes whatever complete pieces the buffer holds: headers as soon as complete, payload bytes as they arrive. */
  #parse(): void {
    while (this.#state === 'open' || this.#state === 'closing') {
      if (this.#frame === undefined) {
        const header = this.#readHeader();
        if (header === undefined) return;
        this.#frame = header;
        this.#payload = [];
        this.#received = 0;
      }
      const frame = this.#frame;
      const take = Math.min(frame.length - this.#received, this.#buf.length);
      if (take > 0) {
        const part = Buffer.from(this.#buf.subarray(0, take));
        this.#buf = this.#buf.subarray(take);
        for (let i = 0; i < part.length; i++) part[i] = part[i]! ^ frame.mask[(this.#received + i) & 3]!;
        this.#received += take;
        this.#payload.push(part);
        this.#onPayloadPart(frame, part);
      }
      if (this.#received < frame.length) return;
      this.#frame = undefined;
      this.#onFrame(frame, Buffer.concat(this.#payload));
    }
  }

  /** Parses and judges a frame header; undefined until all of its bytes are there. */
  #readHeader(): FrameHeader | undefined {
    const b = this.#buf;
    if (b.length < 2) return undefined;
    const b0 = b[0]!;
    const b1 = b[1]!;
    const fin = (b0 & 0x80) !== 0;
    const rsv = (b0 >> 4) & 0x07;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    let length = b1 & 0x7f;
    const control = opcode >= 0x8;
    // A close frame, even a malformed one, means the peer will not send another.
    if (opcode === 0x8 && this.#state === 'open') this.#peerClosed = true;

    if (rsv !== 0 && this.#defects.acceptRsv !== true) throw new Fail(1002, `RSV bits ${rsv} set without an extension`);
    if (![0x0, 0x1, 0x2, 0x8, 0x9, 0xa].includes(opcode)) throw new Fail(1002, `reserved opcode ${opcode}`);
    if (!masked) throw new Fail(1002, 'unmasked client frame');
    if (control && !fin) throw new Fail(1002, 'fragmented control frame');
    if (control && length > 125) throw new Fail(1002, 'control frame payload over 125 octets');
    if (opcode === 0x0 && this.#msgOpcode === 0) throw new Fail(1002, 'continuation frame without a message in progress');
    if ((opcode === 0x1 || opcode === 0x2) && this.#msgOpcode !== 0) throw new Fail(1002, 'new data frame while a fragmented message is in progress');

    let at = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      at = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(MAX_MESSAGE)) throw new Fail(1009, 'frame too big');
      length = Number(big);
      at = 10;
    }
    if (b.length < at + 4) return undefined;
    const mask = Buffer.from(b.subarray(at, at + 4));
    this.#buf = b.subarray(at + 4);

    if (!control) {
      if (this.#msgSize + length > MAX_MESSAGE) throw new Fail(1009, 'message too big');
      if (opcode !== 0x0) {
        this.#msgOpcode = opcode;
        this.#msgParts = [];
        this.#msgSize = 0;
        this.#utf8 = opcode === 0x1 && this.#defects.noUtf8Validation !== true ? new Utf8Validator() : undefined;
      }
    }
    return { fin, opcode, length, mask };
  }

  /** Payload bytes as they arrive: text is validated at once (fail fast). */
  #onPayloadPart(frame: FrameHeader, part: Buffer): void {
    if (frame.opcode >= 0x8 || this.#utf8 === undefined) return;
    if (!this.#utf8.push(part)) throw new Fail(1007, 'invalid UTF-8 in a text message');
  }

  #onFrame(frame: FrameHeader, payload: Buffer): void {
    switch (frame.opcode) {
      case 0x8:
        this.#onClose(payload);
        return;
      case 0x9:
        if (this.#state === 'open' && this.#defects.noPong !== true) this.#socket.write(serverFrame(0xa, payload));
        return;
      case 0xa:
        return;
      default:
        break;
    }
    // a data frame (text, binary or continuation)
    if (this.#state !== 'open') return;
    const opcode = this.#msgOpcode;
    if (this.#defects.badFragmentEcho === true && !(frame.fin && frame.opcode !== 0x0)) {
      // The defect: each fragment of a fragmented message goes back as a message of its own.
      this.#socket.write(serverFrame(opcode, payload));
      if (frame.fin) this.#endMessage();
      return;
    }
    this.#msgParts.push(payload);
    this.#msgSize += payload.length;
    if (!frame.fin) return;
    const message = Buffer.concat(this.#msgParts);
    if (opcode === 0x1 && this.#defects.noUtf8Validation !== true && (this.#utf8?.complete !== true || !isUtf8(message))) {
      throw new Fail(1007, 'invalid UTF-8 in a text message');
    }
    this.#endMessage();
    this.#socket.write(serverFrame(opcode, message));
  }

  #endMessage(): void {
    this.#msgOpcode = 0;
    this.#msgParts = [];
    this.#msgSize = 0;
    this.#utf8 = undefined;
  }

  #onClose(payload: Buffer): void {
    if (this.#state === 'closing') {
      // The peer's answer to our close: the handshake is complete.
      this.#closeTcp();
      return;
    }
    this.#peerClosed = true;
    let code = 1000;
    if (payload.length === 1) throw new Fail(1002, 'close frame with a 1-octet payload');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!validCloseCode(code)) throw new Fail(1002, `invalid close code ${code}`);
      if (!isUtf8(payload.subarray(2))) throw new Fail(1007, 'invalid UTF-8 in the close reason');
    }
    this.#state = 'closing';
    this.#socket.write(serverFrame(0x8, closePayload(code)));
    this.#closeTcp();
  }

  /**
   * Fails the connection: a close frame with the code, then wait briefly for the peer's close (at
   * once to TCP close when the failure was in the peer's own close frame).
   */
  #fail(code: number, _why: string): void {
    if (this.#state !== 'open') {
      this.#closeTcp();
      return;
    }
    this.#state = 'closing';
    this.#frame = undefined;
    this.#buf = Buffer.alloc(0);
    this.#endMessage();
    this.#socket.write(serverFrame(0x8, closePayload(code)));
    if (this.#peerClosed) {
      this.#closeTcp();
      return;
    }
    this.#closeTimer = setTimeout(() => this.#closeTcp(), CLOSE_REPLY_WAIT);
  }

  /** The server closes TCP after the closing handshake (RFC 6455 §7.1.1) — unless that is the defect. */
  #closeTcp(): void {
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    if (this.#defects.noTcpClose === true) {
      // The defect: keep the connection open; ignore whatever else arrives.
      this.#state = 'closed';
      return;
    }
    this.#state = 'closed';
    this.#socket.end();
  }
}
