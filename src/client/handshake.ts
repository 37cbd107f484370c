import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type Socket, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WsmodError } from '../errors.ts';
import { parseExtensions } from '../protocol/extensions.ts';
import { acceptKey } from '../protocol/handshake.ts';

/** Options of the client's opening handshake. */
export interface ClientHandshakeOptions {
  /** Subprotocols to offer, in order of preference. */
  readonly protocols?: readonly string[];
  /** Origin header to send (browsers always send one; other clients usually do not). */
  readonly origin?: string;
  /**
   * Sec-WebSocket-Extensions offer to send (e.g. built with `deflateOffer`). Without it, a response
   * naming any extension fails the handshake; with it, the response may only name offered extensions
   * and is returned as `extensions` for the caller to validate and accept.
   */
  readonly extensions?: string;
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time for TCP connect plus handshake, ms. Default 10 s. */
  readonly timeout?: number;
  /** For wss: verify the server certificate (default true). */
  readonly rejectUnauthorized?: boolean;
}

/** A completed client handshake: the socket (paused) and what the server said. */
export interface ClientHandshake {
  readonly socket: Socket;
  /** Bytes that followed the 101 response in the same read: the first frames. */
  readonly head: Buffer;
  /** The negotiated subprotocol, if any. */
  readonly protocol: string | undefined;
  /** The Sec-WebSocket-Extensions response header ('' when none). */
  readonly extensions: string;
  readonly request: string;
  readonly response: string;
}

/** Largest response head accepted from a server. */
const MAX_RESPONSE_HEAD = 64 * 1024;

/**
 * Opens a TCP (ws:) or TLS (wss:) connection and performs the opening handshake of RFC 6455 §4.1,
 * validating the server's answer as a client must: status 101, Upgrade and Connection tokens, the
 * Sec-WebSocket-Accept digest, a subprotocol only if one was offered, and extensions only if offered
 * (the caller validates the parameters of an extension it offered: see `extensions`). Throws
 * WSMOD_ERR_CLIENT_HANDSHAKE with the reason otherwise.
 */
export async function clientHandshake(url: string | URL, options: ClientHandshakeOptions = {}): Promise<ClientHandshake> {
  const target = typeof url === 'string' ? new URL(url) : url;
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:') {
    throw new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', `not a ws: or wss: URL: ${target.href}`);
  }
  const offered = options.extensions === undefined || options.extensions.trim() === '' ? undefined : parseExtensions(options.extensions);
  if (offered === null) throw new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', `malformed extensions offer: ${options.extensions ?? ''}`);
  const secure = target.protocol === 'wss:';
  const port = target.port === '' ? (secure ? 443 : 80) : Number(target.port);
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  const socket = secure
    ? tlsConnect({ host, port, servername: host, rejectUnauthorized: options.rejectUnauthorized ?? true, ALPNProtocols: ['http/1.1'] })
    : netConnect({ host, port });
  const timeout = options.timeout ?? 10_000;
  const timer = setTimeout(() => socket.destroy(new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', `no handshake within ${timeout} ms`)), timeout);
  try {
    await once(socket, secure ? 'secureConnect' : 'connect');
    socket.setNoDelay(true);
    const key = randomBytes(16).toString('base64');
    const lines = [
      `GET ${target.pathname}${target.search} HTTP/1.1`,
      `Host: ${target.host}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
    ];
    if (options.protocols !== undefined && options.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(', ')}`);
    if (options.origin !== undefined) lines.push(`Origin: ${options.origin}`);
    if (offered !== undefined && offered.length > 0) lines.push(`Sec-WebSocket-Extensions: ${options.extensions ?? ''}`);
    for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`${name}: ${value}`);
    const request = `${lines.join('\r\n')}\r\n\r\n`;
    socket.write(request);
    const { head, rest } = await readResponseHead(socket);
    socket.pause();
    const { status, headers } = parseResponseHead(head);
    const fail = (why: string): never => {
      throw new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', why);
    };
    if (status !== 101) fail(`server answered ${status} instead of 101: ${head.split('\r\n')[0] ?? ''}`);
    if (!tokens(headers['upgrade']).includes('websocket')) fail('response lacks "Upgrade: websocket"');
    if (!tokens(headers['connection']).includes('upgrade')) fail('response lacks "Connection: Upgrade"');
    if (headers['sec-websocket-accept'] !== acceptKey(key)) fail('wrong Sec-WebSocket-Accept');
    const protocol = headers['sec-websocket-protocol'];
    if (protocol !== undefined && !(options.protocols ?? []).includes(protocol)) fail(`server chose a subprotocol not offered: ${protocol}`);
    const extensions = headers['sec-websocket-extensions'] ?? '';
    if (extensions !== '') {
      // RFC 6455 §4.1 (client step 5): only extensions the client offered may be in use.
      if (offered === undefined || offered.length === 0) fail(`server answered extensions that were not offered: ${extensions}`);
      const answered = parseExtensions(extensions);
      if (answered === null) fail(`malformed Sec-WebSocket-Extensions in the response: ${extensions}`);
      const names = new Set((offered ?? []).map((e) => e.name));
      const unknown = (answered ?? []).filter((e) => !names.has(e.name)).map((e) => e.name);
      if (unknown.length > 0) fail(`server answered extensions that were not offered: ${unknown.join(', ')}`);
    }
    return { socket, head: rest, protocol, extensions, request, response: head };
  } catch (err) {
    socket.destroy();
    if (err instanceof WsmodError) throw err;
    throw new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', (err as Error).message, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** Reads up to the end of the response head; returns the head text and the bytes after it. */
function readResponseHead(socket: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end !== -1) {
        cleanup();
        resolve({ head: buffered.subarray(0, end).toString('latin1'), rest: buffered.subarray(end + 4) });
      } else if (buffered.length > MAX_RESPONSE_HEAD) {
        cleanup();
        reject(new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', 'response head too large'));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', 'connection closed during the handshake'));
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

function parseResponseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (m === null) throw new WsmodError('WSMOD_ERR_CLIENT_HANDSHAKE', `not an HTTP/1.1 response: ${statusLine}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(m[1]), headers };
}

function tokens(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}
