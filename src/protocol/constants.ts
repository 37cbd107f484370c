/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Frame opcodes (RFC 6455 §5.2). 3-7 and 0xB-0xF are reserved. */
export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Bits of the first header byte (RFC 6455 §5.2). */
export const FIN = 0x80;
export const RSV1 = 0x40;
export const RSV2 = 0x20;
export const RSV3 = 0x10;
export const RSV_MASK = 0x70;

/** RFC 6455 §5.5: every control frame payload is at most 125 bytes. */
export const MAX_CONTROL_PAYLOAD = 125;

/** The longest frame header: 2 bytes + 8-byte extended length + 4-byte mask. */
export const MAX_HEADER_SIZE = 14;
