/**
 * Close codes (RFC 6455 §7.4.1 and the IANA "WebSocket Close Code Number Registry"), in one table:
 * what each means and whether it may appear in a close frame on the wire.
 */

/** One close code's entry. */
export interface CloseCodeInfo {
  readonly name: string;
  readonly meaning: string;
  /** May be sent in, and accepted from, a close frame. 1005, 1006 and 1015 are for local reporting only. */
  readonly onWire: boolean;
}

/** The registered close codes below 3000. */
export const CLOSE_CODES: ReadonlyMap<number, CloseCodeInfo> = new Map([
  [1000, { name: 'NORMAL', meaning: 'normal closure', onWire: true }],
  [1001, { name: 'GOING_AWAY', meaning: 'endpoint going away (server shutdown, page navigation)', onWire: true }],
  [1002, { name: 'PROTOCOL_ERROR', meaning: 'protocol error', onWire: true }],
  [1003, { name: 'UNSUPPORTED_DATA', meaning: 'data type the endpoint cannot accept', onWire: true }],
  [1004, { name: 'RESERVED', meaning: 'reserved, never used', onWire: false }],
  [1005, { name: 'NO_STATUS', meaning: 'close frame carried no code (local report only)', onWire: false }],
  [1006, { name: 'ABNORMAL', meaning: 'closed without a close frame (local report only)', onWire: false }],
  [1007, { name: 'INVALID_PAYLOAD', meaning: 'message data inconsistent with its type (invalid UTF-8)', onWire: true }],
  [1008, { name: 'POLICY_VIOLATION', meaning: 'policy violation', onWire: true }],
  [1009, { name: 'MESSAGE_TOO_BIG', meaning: 'message too big to process', onWire: true }],
  [1010, { name: 'MANDATORY_EXTENSION', meaning: 'client expected an extension the server did not negotiate', onWire: true }],
  [1011, { name: 'INTERNAL_ERROR', meaning: 'unexpected condition in the server', onWire: true }],
  [1012, { name: 'SERVICE_RESTART', meaning: 'service restarting', onWire: true }],
  [1013, { name: 'TRY_AGAIN_LATER', meaning: 'temporary overload', onWire: true }],
  [1014, { name: 'BAD_GATEWAY', meaning: 'bad gateway', onWire: true }],
  [1015, { name: 'TLS_HANDSHAKE', meaning: 'TLS handshake failed (local report only)', onWire: false }],
]);

/** Named close codes for use in code. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
} as const;

/**
 * True when `code` may travel in a close frame: registered codes marked onWire (1000-1003, 1007-1014),
 * and 3000-4999 (libraries, frameworks and applications). RFC 6455 §7.4.2: 0-999 are never used,
 * 1000-2999 belong to the protocol, so unregistered ones there are invalid too.
 */
export function isValidCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return CLOSE_CODES.get(code)?.onWire === true;
}
