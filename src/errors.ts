/**
 * The one registry of wsmod's errors. Every failure wsmod reports carries a stable `WSMOD_ERR_*` code,
 * and each code maps to the HTTP status it answers a refused handshake with, or to the WebSocket close
 * code it fails a connection with. Tests assert codes, never message text; docs/errors.md lists them
 * all (a test keeps the two in step).
 */

/** What an error code does on the wire. */
export interface ErrorDefinition {
  /** One-line meaning, used as the default message. */
  readonly message: string;
  /** HTTP status of the refusal, for errors raised before the 101 response. */
  readonly status?: number;
  /** Close code sent (or reported, for 1006) when the error ends an open connection. */
  readonly closeCode?: number;
}

/** Every error wsmod raises, by code. */
export const ERRORS = {
  // ---- Frames (RFC 6455 §5) -> close codes ----
  WSMOD_ERR_UNMASKED_FRAME: { message: 'client frames must be masked (RFC 6455 §5.1)', closeCode: 1002 },
  WSMOD_ERR_MASKED_FRAME: { message: 'server frames must not be masked (RFC 6455 §5.1)', closeCode: 1002 },
  WSMOD_ERR_RESERVED_BITS: { message: 'RSV bits set without a negotiated extension (RFC 6455 §5.2)', closeCode: 1002 },
  WSMOD_ERR_RESERVED_OPCODE: { message: 'reserved opcode (RFC 6455 §5.2)', closeCode: 1002 },
  WSMOD_ERR_CONTROL_TOO_LONG: { message: 'control frame payload over 125 bytes (RFC 6455 §5.5)', closeCode: 1002 },
  WSMOD_ERR_CONTROL_FRAGMENTED: { message: 'fragmented control frame (RFC 6455 §5.5)', closeCode: 1002 },
  WSMOD_ERR_UNEXPECTED_CONTINUATION: { message: 'continuation frame without a message in progress (RFC 6455 §5.4)', closeCode: 1002 },
  WSMOD_ERR_EXPECTED_CONTINUATION: { message: 'new data frame inside a fragmented message (RFC 6455 §5.4)', closeCode: 1002 },
  WSMOD_ERR_LENGTH_MSB: { message: '64-bit payload length with the most significant bit set (RFC 6455 §5.2)', closeCode: 1002 },
  WSMOD_ERR_CLOSE_PAYLOAD: { message: 'close frame payload of 1 byte (RFC 6455 §5.5.1)', closeCode: 1002 },
  WSMOD_ERR_CLOSE_CODE: { message: 'invalid close code (RFC 6455 §7.4)', closeCode: 1002 },
  WSMOD_ERR_INVALID_UTF8: { message: 'invalid UTF-8 in a text message (RFC 6455 §8.1)', closeCode: 1007 },
  WSMOD_ERR_INVALID_UTF8_REASON: { message: 'invalid UTF-8 in a close reason (RFC 6455 §5.5.1)', closeCode: 1007 },
  WSMOD_ERR_MESSAGE_TOO_BIG: { message: 'message larger than maxMessageSize', closeCode: 1009 },
  WSMOD_ERR_INFLATE: { message: 'a compressed message is not valid DEFLATE data (RFC 7692 §7.2.2)', closeCode: 1007 },

  // ---- Connection life -> close codes ----
  WSMOD_ERR_PONG_TIMEOUT: { message: 'no pong within the keepalive timeout: peer presumed dead', closeCode: 1006 },
  WSMOD_ERR_CLOSE_TIMEOUT: { message: 'closing handshake not completed within closeTimeout: TCP destroyed' },
  WSMOD_ERR_BACKPRESSURE: { message: 'outbound queue over maxBackpressure (policy "close")', closeCode: 1008 },
  WSMOD_ERR_PLUGIN_THREW: { message: 'the plugin threw or rejected while handling this session', closeCode: 1011 },
  WSMOD_ERR_SHUTDOWN: { message: 'the host is shutting down', closeCode: 1001 },
  WSMOD_ERR_SOCKET: { message: 'the TCP connection failed', closeCode: 1006 },
  WSMOD_ERR_SLOW_SUBSCRIBER: { message: 'a topic message would take the outbound queue over maxBackpressure (slowSubscriber "close")', closeCode: 1013 },

  // ---- Handshake (RFC 6455 §4.2) -> HTTP status ----
  WSMOD_ERR_METHOD: { message: 'WebSocket handshakes must use GET', status: 405 },
  WSMOD_ERR_HTTP_VERSION: { message: 'WebSocket handshakes need HTTP/1.1 or later', status: 400 },
  WSMOD_ERR_HOST_MISSING: { message: 'Host header missing', status: 400 },
  WSMOD_ERR_DUPLICATE_HEADER: { message: 'a header that must appear once was sent more than once', status: 400 },
  WSMOD_ERR_UPGRADE_HEADER: { message: 'Upgrade header must contain the "websocket" token', status: 400 },
  WSMOD_ERR_CONNECTION_HEADER: { message: 'Connection header must contain the "Upgrade" token', status: 400 },
  WSMOD_ERR_KEY: { message: 'Sec-WebSocket-Key must be the base64 encoding of 16 bytes', status: 400 },
  WSMOD_ERR_VERSION: { message: 'unsupported Sec-WebSocket-Version; this server speaks 13', status: 426 },
  WSMOD_ERR_PROTOCOL_HEADER: { message: 'Sec-WebSocket-Protocol must be a list of distinct tokens', status: 400 },
  WSMOD_ERR_EXTENSIONS_HEADER: { message: 'Sec-WebSocket-Extensions is malformed (RFC 6455 §9.1)', status: 400 },
  WSMOD_ERR_UPGRADE_REQUIRED: { message: 'this path is a WebSocket endpoint: upgrade required', status: 426 },
  WSMOD_ERR_NOT_FOUND: { message: 'no WebSocket route at this path', status: 404 },
  WSMOD_ERR_ORIGIN: { message: 'Origin not allowed for this route', status: 403 },
  WSMOD_ERR_ORIGIN_REQUIRED: { message: 'this route requires an Origin header', status: 403 },
  WSMOD_ERR_HEADERS_TOO_LARGE: { message: 'request headers too large', status: 431 },
  WSMOD_ERR_SHUTTING_DOWN: { message: 'the host is shutting down', status: 503 },
  WSMOD_ERR_MAX_CONNECTIONS: { message: 'too many connections', status: 503 },
  WSMOD_ERR_MAX_CONNECTIONS_PER_IP: { message: 'too many connections from this address', status: 503 },
  WSMOD_ERR_HANDSHAKE_TIMEOUT: { message: 'handshake not completed within handshakeTimeout', status: 408 },
  WSMOD_ERR_UPGRADE_REJECTED: { message: 'the plugin refused the upgrade', status: 403 },
  WSMOD_ERR_BAD_REQUEST: { message: 'malformed HTTP request', status: 400 },
  WSMOD_ERR_UPGRADE_FAILED: { message: 'the plugin failed while deciding on the upgrade', status: 500 },

  // ---- Programming and configuration errors (thrown to the caller) ----
  WSMOD_ERR_PLUGIN_LOAD: { message: 'the plugin file could not be loaded' },
  WSMOD_ERR_PLUGIN_INVALID: { message: 'the plugin does not satisfy the plugin API' },
  WSMOD_ERR_PLUGIN_API_VERSION: { message: 'the plugin asks for a plugin API version this host does not provide' },
  WSMOD_ERR_PROTOCOL_NOT_OFFERED: { message: 'the plugin chose a subprotocol the client did not offer', status: 500 },
  WSMOD_ERR_INVALID_HEADER: { message: 'invalid HTTP header name or value', status: 500 },
  WSMOD_ERR_INVALID_OPTION: { message: 'invalid option' },
  WSMOD_ERR_INVALID_CLOSE: { message: 'invalid close code or reason for close()' },
  WSMOD_ERR_CONTROL_PAYLOAD: { message: 'ping and pong payloads are limited to 125 bytes' },
  WSMOD_ERR_TOPIC_INVALID: { message: 'a topic is a string of 1 to 256 UTF-8 bytes without control characters' },
  WSMOD_ERR_TOO_MANY_TOPICS: { message: 'the session is subscribed to maxTopics topics already' },
  WSMOD_ERR_DUPLICATE_ROUTE: { message: 'two routes share a path' },
  WSMOD_ERR_CONFIG: { message: 'invalid configuration' },
  WSMOD_ERR_CLIENT_HANDSHAKE: { message: 'the server did not complete a valid WebSocket handshake' },
} as const satisfies Record<string, ErrorDefinition>;

/** A `WSMOD_ERR_*` code. */
export type ErrorCode = keyof typeof ERRORS;

/** An error from the registry: `code` is stable, `status`/`closeCode` say what it does on the wire. */
export class WsmodError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  readonly closeCode: number | undefined;

  constructor(code: ErrorCode, detail?: string, options?: ErrorOptions) {
    const def: ErrorDefinition = ERRORS[code];
    super(detail === undefined ? def.message : `${def.message}: ${detail}`, options);
    this.name = 'WsmodError';
    this.code = code;
    this.status = def.status;
    this.closeCode = def.closeCode;
  }
}

/** True when `err` is a {@link WsmodError}, optionally with the given code. */
export function isWsmodError(err: unknown, code?: ErrorCode): err is WsmodError {
  return err instanceof WsmodError && (code === undefined || err.code === code);
}
