import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { type ErrorCode, WsmodError } from '../errors.ts';
import { WEBSOCKET_GUID } from './constants.ts';

/** Request headers as Node gives them: lower-case names; repeated headers joined or as arrays. */
export type HandshakeHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The parts of an opening handshake request that RFC 6455 §4.2.1 rules on. */
export interface HandshakeRequest {
  readonly method: string;
  /** `major.minor`, as in Node's `IncomingMessage.httpVersion`. */
  readonly httpVersion: string;
  readonly headers: HandshakeHeaders;
  /**
   * The header lines as received, name and value alternating (Node's `IncomingMessage.rawHeaders`).
   * Node keeps only the first of some repeated headers (Host) and joins others, so a header sent twice
   * shows only here.
   */
  readonly rawHeaders?: readonly string[];
}

/** A handshake that may proceed. */
export interface HandshakeAccept {
  readonly ok: true;
  readonly key: string;
  /** The client's subprotocols in its order of preference (empty when none offered). */
  readonly protocols: readonly string[];
}

/** A refused handshake: the HTTP status, the one-line reason, extra response headers. */
export interface HandshakeRefusal {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly status: number;
  readonly reason: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** The verdict on a handshake request. */
export type HandshakeResult = HandshakeAccept | HandshakeRefusal;

/** RFC 7230 §3.2.6 token characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Base64 of exactly 16 bytes, canonical: 21 free characters, one whose low 4 bits are 0, then "==". */
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * Headers a handshake may carry once only: RFC 9110 §7.2 (Host), RFC 6455 §4.1 and §11.3.1-11.3.5
 * (Sec-WebSocket-Key and -Version are single values), RFC 6454 §7.3 (Origin, the one origin of the page).
 */
const SINGLE_HEADERS = new Set(['host', 'sec-websocket-key', 'sec-websocket-version', 'origin']);

/** The first header of SINGLE_HEADERS that appears more than once in `raw`, if any. */
function repeatedHeader(raw: readonly string[]): string | undefined {
  let seen: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!SINGLE_HEADERS.has(name)) continue;
    seen ??= new Set();
    if (seen.has(name)) return raw[i];
    seen.add(name);
  }
  return undefined;
}

/** A refusal for `code`, with its status from the error registry. */
export function refusal(code: ErrorCode, detail?: string, headers: Record<string, string> = {}): HandshakeRefusal {
  const err = new WsmodError(code, detail);
  return { ok: false, code, status: err.status ?? 400, reason: err.message, headers };
}

/** The single value of a header, or undefined when absent; `null` when it was sent more than once. */
function single(headers: HandshakeHeaders, name: string): string | undefined | null {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  return v.length === 1 ? v[0] : null;
}

/** All values of a comma-separated list header, trimmed, empty elements dropped (RFC 7230 §7). */
export function listHeader(headers: HandshakeHeaders, name: string): string[] {
  const v = headers[name];
  if (v === undefined) return [];
  const joined = typeof v === 'string' ? v : v.join(',');
  const out: string[] = [];
  for (const part of joined.split(',')) {
    const t = part.trim();
    if (t !== '') out.push(t);
  }
  return out;
}

/**
 * Validates an opening handshake request (RFC 6455 §4.2.1), independent of any server: a function of
 * method, HTTP version and headers. Origin and routing are the host's business, not checked here.
 */
export function validateHandshake(req: HandshakeRequest): HandshakeResult {
  if (req.method !== 'GET') return refusal('WSMOD_ERR_METHOD', req.method, { Allow: 'GET' });
  const [major, minor] = req.httpVersion.split('.').map(Number);
  if (major === undefined || minor === undefined || !(major > 1 || (major === 1 && minor >= 1))) {
    return refusal('WSMOD_ERR_HTTP_VERSION', `HTTP/${req.httpVersion}`);
  }
  const repeated = req.rawHeaders === undefined ? undefined : repeatedHeader(req.rawHeaders);
  if (repeated !== undefined) return refusal('WSMOD_ERR_DUPLICATE_HEADER', repeated);
  const host = single(req.headers, 'host');
  if (host === undefined || host === null || host.trim() === '') return refusal('WSMOD_ERR_HOST_MISSING');
  const upgrade = listHeader(req.headers, 'upgrade');
  // Upgrade values are protocol[/version] (RFC 7230 §6.7); "websocket" carries no version.
  if (!upgrade.some((p) => p.toLowerCase() === 'websocket')) return refusal('WSMOD_ERR_UPGRADE_HEADER');
  if (!listHeader(req.headers, 'connection').some((t) => t.toLowerCase() === 'upgrade')) {
    return refusal('WSMOD_ERR_CONNECTION_HEADER');
  }
  const version = single(req.headers, 'sec-websocket-version');
  if (version === null || (version !== undefined && version.trim() !== '13')) {
    return refusal('WSMOD_ERR_VERSION', version === null ? 'sent twice' : version, { 'Sec-WebSocket-Version': '13' });
  }
  if (version === undefined) return refusal('WSMOD_ERR_VERSION', 'missing', { 'Sec-WebSocket-Version': '13' });
  const key = single(req.headers, 'sec-websocket-key');
  if (key === undefined || key === null || !KEY.test(key.trim())) return refusal('WSMOD_ERR_KEY');
  let protocols: string[] = [];
  if (req.headers['sec-websocket-protocol'] !== undefined) {
    protocols = listHeader(req.headers, 'sec-websocket-protocol');
    const raw = req.headers['sec-websocket-protocol'];
    const rawParts = (typeof raw === 'string' ? raw : raw.join(',')).split(',');
    // RFC 6455 §4.1: a list of tokens, each unique; empty elements are malformed here.
    if (
      protocols.length === 0 ||
      rawParts.some((p) => p.trim() === '') ||
      protocols.some((p) => !TOKEN.test(p)) ||
      new Set(protocols).size !== protocols.length
    ) {
      return refusal('WSMOD_ERR_PROTOCOL_HEADER');
    }
  }
  return { ok: true, key: key.trim(), protocols };
}

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2 step 5.4). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/**
 * Picks the subprotocol: the first of the server's, in its order of preference, that the client offered.
 * Never one the client did not offer (RFC 6455 §4.2.2).
 */
export function selectProtocol(serverPreference: readonly string[], offered: readonly string[]): string | undefined {
  return serverPreference.find((p) => offered.includes(p));
}

/** True for a valid HTTP field name and a value without CR, LF or NUL (header injection). */
export function isValidHeader(name: string, value: string): boolean {
  return TOKEN.test(name) && !/[\r\n\0]/.test(value);
}

function headerLines(headers: Readonly<Record<string, string>>): string {
  let out = '';
  for (const [name, value] of Object.entries(headers)) {
    if (!isValidHeader(name, value)) throw new WsmodError('WSMOD_ERR_INVALID_HEADER', name);
    out += `${name}: ${value}\r\n`;
  }
  return out;
}

/** The 101 response completing a handshake (RFC 6455 §4.2.2). */
export function acceptResponse(key: string, protocol?: string, headers: Readonly<Record<string, string>> = {}): string {
  // A subprotocol is a token (RFC 6455 §4.1); anything else could inject headers into the response.
  if (protocol !== undefined && !TOKEN.test(protocol)) throw new WsmodError('WSMOD_ERR_INVALID_HEADER', 'Sec-WebSocket-Protocol');
  return (
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
    (protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`) +
    headerLines(headers) +
    '\r\n'
  );
}

/** A complete refusal response: status line, headers, and the reason as a one-line text body. */
export function refusalResponse(status: number, reason: string, headers: Readonly<Record<string, string>> = {}): string {
  const body = `${reason.replace(/[\r\n]+/g, ' ')}\n`;
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    headerLines(headers) +
    '\r\n' +
    body
  );
}
