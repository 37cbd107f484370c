import { Connection, type ReadyState } from '../connection/connection.ts';
import { WsmodError } from '../errors.ts';
import type { SendResult } from '../plugin/api.ts';
import { parseExtensions } from '../protocol/extensions.ts';
import { DEFAULT_DEFLATE, DeflateCodec, acceptDeflateResponse, deflateOffer } from '../protocol/permessage-deflate.ts';
import { type ClientHandshakeOptions, clientHandshake } from './handshake.ts';

/** A message received by the client. */
export interface ClientMessage {
  readonly data: Buffer;
  readonly isBinary: boolean;
  /** The payload as text (UTF-8). */
  text(): string;
}

/** How a client connection ended. */
export interface ClientClose {
  readonly code: number;
  readonly reason: string;
  /** Both close frames were exchanged. */
  readonly wasClean: boolean;
  readonly error: WsmodError | undefined;
}

/** Options of {@link connect}. */
export interface ClientOptions extends ClientHandshakeOptions {
  /** Largest message accepted from the server. Default 64 MiB. */
  readonly maxMessageSize?: number;
  /** Ping after this much silence (0: no keepalive, the default for clients). */
  readonly idleTimeout?: number;
  /** Time for the closing handshake. Default 5 s. */
  readonly closeTimeout?: number;
  /** Offer permessage-deflate (RFC 7692); used when the server accepts it. Default false. */
  readonly perMessageDeflate?: boolean;
}

/**
 * A WebSocket client on wsmod's own protocol core and connection engine (masked frames, strict
 * parsing of what the server sends). Messages can be taken one at a time with {@link next}, or
 * handled with the `onMessage` callback.
 */
export class WebSocketClient {
  readonly #connection: Connection;
  readonly #queue: ClientMessage[] = [];
  readonly #waiters: Array<{ resolve: (m: ClientMessage) => void; reject: (e: Error) => void }> = [];
  #closed: ClientClose | undefined;
  readonly #closedPromise: Promise<ClientClose>;
  /** Called for every message; when set, messages are not queued for {@link next}. */
  onMessage: ((message: ClientMessage) => void) | undefined;
  /** The subprotocol the server chose. */
  readonly protocol: string | undefined;

  /** The negotiated extensions ('' when none). */
  readonly extensions: string;

  /** @internal Use {@link connect}. */
  constructor(
    socket: import('node:net').Socket,
    head: Buffer,
    protocol: string | undefined,
    options: ClientOptions,
    deflate: { readonly codec: DeflateCodec; readonly header: string } | undefined,
  ) {
    this.protocol = protocol;
    this.extensions = deflate?.header ?? '';
    let resolveClosed!: (c: ClientClose) => void;
    this.#closedPromise = new Promise((resolve) => (resolveClosed = resolve));
    this.#connection = new Connection(
      socket,
      {
        role: 'client',
        maxMessageSize: options.maxMessageSize ?? 64 * 1024 * 1024,
        idleTimeout: options.idleTimeout ?? 0,
        pongTimeout: options.idleTimeout ?? 0,
        closeTimeout: options.closeTimeout ?? 5000,
        maxBackpressure: Number.MAX_SAFE_INTEGER,
        backpressurePolicy: 'drop',
        deflate: deflate?.codec,
      },
      {
        onMessage: (data, isBinary) => {
          const copy = Buffer.from(data);
          const message: ClientMessage = { data: copy, isBinary, text: () => copy.toString() };
          if (this.onMessage !== undefined) this.onMessage(message);
          else {
            const waiter = this.#waiters.shift();
            if (waiter !== undefined) waiter.resolve(message);
            else this.#queue.push(message);
          }
        },
        onDrain: () => {},
        onClose: (code, reason, error) => {
          this.#closed = { code, reason, wasClean: code !== 1006 && error === undefined, error };
          for (const w of this.#waiters.splice(0)) w.reject(new Error(`connection closed (${code})`));
          resolveClosed(this.#closed);
        },
      },
    );
    this.#connection.start(head);
  }

  /** OPEN, CLOSING or CLOSED (see ReadyState). */
  get readyState(): ReadyState {
    return this.#connection.readyState;
  }

  /** Sends a message: strings as text, bytes as binary unless `binary` says otherwise. */
  send(data: string | Uint8Array, options: { readonly binary?: boolean } = {}): SendResult {
    return this.#connection.send(data, options.binary ?? typeof data !== 'string');
  }

  /** Sends a ping. */
  ping(data: string | Buffer = ''): boolean {
    return this.#connection.ping(data);
  }

  /** The next message (queued ones first); rejects if the connection closes first. */
  next(): Promise<ClientMessage> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed !== undefined) return Promise.reject(new Error(`connection closed (${this.#closed.code})`));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Starts the closing handshake and resolves when the connection is closed. */
  close(code?: number, reason?: string): Promise<ClientClose> {
    this.#connection.close(code, reason);
    return this.#closedPromise;
  }

  /** Resolves when the connection is closed, however that happens. */
  get closed(): Promise<ClientClose> {
    return this.#closedPromise;
  }

  /** Drops the TCP connection at once. */
  terminate(): void {
    this.#connection.terminate();
  }
}

/** Opens a WebSocket client connection (ws: or wss:). Throws WSMOD_ERR_CLIENT_HANDSHAKE when refused. */
export async function connect(url: string | URL, options: ClientOptions = {}): Promise<WebSocketClient> {
  const offer = options.perMessageDeflate === true ? deflateOffer({ clientMaxWindowBits: true }) : undefined;
  const hs = await clientHandshake(url, offer === undefined ? options : { ...options, extensions: offer });
  let deflate: { codec: DeflateCodec; header: string } | undefined;
  if (offer !== undefined && hs.extensions !== '') {
    const response = parseExtensions(hs.extensions)?.[0];
    const offered = parseExtensions(offer)?.[0];
    const params = response === undefined || offered === undefined ? 'malformed response' : acceptDeflateResponse(response, offered);
    if (typeof params === 'string') {
      hs.socket.destroy();
      throw new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', `permessage-deflate: ${params}`);
    }
    deflate = { codec: new DeflateCodec(params, 'client', DEFAULT_DEFLATE), header: hs.extensions };
  }
  return new WebSocketClient(hs.socket, hs.head, hs.protocol, options, deflate);
}
