import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type Socket, connect } from 'node:net';
import { type Host, createHost } from '../src/host/host.ts';
import type { HostOptions, RouteOptions } from '../src/host/options.ts';
import type { Logger } from '../src/log.ts';
import { definePlugin } from '../src/plugin/api.ts';
import { encodeFrame } from '../src/protocol/frame-serializer.ts';

/** A logger that records entries instead of printing them, so tests can assert on what was logged. */
export function memoryLogger(): Logger & { readonly entries: Array<{ level: string; obj: object; msg?: string }> } {
  const entries: Array<{ level: string; obj: object; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) => {
    entries.push(msg === undefined ? { level, obj } : { level, obj, msg });
  };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The echo plugin used by most tests. */
export const echoPlugin = definePlugin({
  name: 'echo',
  apiVersion: 1,
  onMessage(session, data, isBinary) {
    session.send(data, { binary: isBinary });
  },
});

/** A running standalone host on 127.0.0.1 and a free port. */
export interface TestHost {
  readonly host: Host;
  readonly port: number;
  /** ws://127.0.0.1:port */
  readonly base: string;
  readonly log: ReturnType<typeof memoryLogger>;
  close(): Promise<void>;
}

/** Starts a host with the given routes (default: echo on /echo) on a free port. */
export async function startHost(
  routes: readonly RouteOptions[] = [{ path: '/echo', plugin: echoPlugin }],
  options: Omit<HostOptions, 'routes'> = {},
): Promise<TestHost> {
  const log = memoryLogger();
  const host = createHost({ logger: log, ...options, routes });
  const { port } = await host.listen(0, '127.0.0.1');
  return { host, port, base: `ws://127.0.0.1:${port}`, log, close: () => host.close({ deadline: 2000 }) };
}

/** A raw TCP client that performed a WebSocket handshake: send any bytes, read what comes back. */
export interface RawClient {
  readonly socket: Socket;
  /** The response head (status line and headers). */
  readonly response: string;
  /** Sends bytes as they are. */
  write(bytes: Buffer | string): void;
  /** Sends one frame, masked with a random key (like a client must). */
  frame(opcode: number, payload: Buffer | string, fin?: boolean, rsv?: number): void;
  /** Resolves with every byte received after the handshake once the server closes the TCP connection. */
  closed(): Promise<Buffer>;
}

/** Opens a TCP connection, sends a valid handshake for `path` (plus extra headers), reads the 101. */
export async function rawClient(port: number, path = '/echo', headers: Record<string, string> = {}): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const key = randomBytes(16).toString('base64');
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  let buffered = Buffer.alloc(0);
  let response = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end !== -1) {
        response = buffered.subarray(0, end).toString('latin1');
        buffered = buffered.subarray(end + 4);
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`closed during handshake: ${buffered.toString('latin1')}`)));
  });
  const received: Buffer[] = [buffered];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => {});
  const closedPromise = new Promise<Buffer>((resolve) => socket.once('close', () => resolve(Buffer.concat(received))));
  return {
    socket,
    response,
    write: (bytes) => socket.write(bytes),
    frame: (opcode, payload, fin = true, rsv = 0) =>
      socket.write(encodeFrame({ opcode, fin, rsv, maskKey: randomBytes(4) }, typeof payload === 'string' ? Buffer.from(payload) : payload)),
    closed: () => closedPromise,
  };
}

/** Decodes unmasked server frames: [{opcode, fin, payload}]. */
export function parseServerFrames(bytes: Buffer): Array<{ opcode: number; fin: boolean; payload: Buffer }> {
  const frames: Array<{ opcode: number; fin: boolean; payload: Buffer }> = [];
  let i = 0;
  while (i + 2 <= bytes.length) {
    const b1 = bytes[i]!;
    let len = bytes[i + 1]! & 0x7f;
    let at = i + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(at));
      at += 8;
    }
    if (at + len > bytes.length) break;
    frames.push({ opcode: b1 & 0x0f, fin: (b1 & 0x80) !== 0, payload: bytes.subarray(at, at + len) });
    i = at + len;
  }
  return frames;
}

/** The close code in a close frame payload (1005 when empty). */
export function closeCodeOf(payload: Buffer): number {
  return payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
}

/** An HTTP response read off a raw socket. */
export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Sends a raw HTTP request (request line and header lines, CRLF added) and reads the response until
 * the server closes the connection or the body is complete.
 */
export async function rawRequest(port: number, lines: readonly string[]): Promise<RawResponse> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  const chunks: Buffer[] = [];
  return new Promise<RawResponse>((resolve, reject) => {
    const parse = (): RawResponse | undefined => {
      const all = Buffer.concat(chunks).toString('latin1');
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const [statusLine = '', ...headerLines] = all.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const body = all.slice(end + 4);
      const length = Number(headers['content-length'] ?? NaN);
      if (Number.isFinite(length) && Buffer.byteLength(body, 'latin1') < length) return undefined;
      return { status: Number(statusLine.split(' ')[1]), headers, body };
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const r = parse();
      if (r !== undefined) {
        socket.destroy();
        resolve(r);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const r = parse();
      if (r === undefined) reject(new Error(`connection closed without a complete response: ${Buffer.concat(chunks).toString('latin1')}`));
      else resolve(r);
    });
  });
}

/** Request lines of a valid handshake for `path` on `port`, with overrides (null removes a header). */
export function handshakeLines(port: number, path = '/echo', overrides: Record<string, string | null> = {}, requestLine?: string): string[] {
  const headers: Record<string, string | null> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...overrides,
  };
  return [
    requestLine ?? `GET ${path} HTTP/1.1`,
    ...Object.entries(headers)
      .filter((e): e is [string, string] => e[1] !== null)
      .map(([k, v]) => `${k}: ${v}`),
  ];
}

/** A plugin that echoes and records its hooks, for assertions on the server side. */
export function recordingPlugin(name = 'recorder') {
  const closes: Array<{ id: string; code: number; reason: string }> = [];
  const opened: string[] = [];
  let shutdowns = 0;
  const plugin = definePlugin({
    name,
    apiVersion: 1,
    onOpen(session) {
      opened.push(session.id);
    },
    onMessage(session, data, isBinary) {
      session.send(data, { binary: isBinary });
    },
    onClose(session, code, reason) {
      closes.push({ id: session.id, code, reason });
    },
    onShutdown() {
      shutdowns++;
    },
  });
  return {
    plugin,
    closes,
    opened,
    get shutdowns() {
      return shutdowns;
    },
  };
}

/** Waits until `predicate` holds, polling; fails after `ms`. For server-side effects that follow a client event. */
export async function until(predicate: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
