/**
 * `wsmod/client`: a WebSocket client over the same connection engine as the host (used by
 * `wsmod check`, the benchmarks and tests), and the bare client handshake.
 */
export { connect, WebSocketClient } from './client.ts';
export type { ClientClose, ClientMessage, ClientOptions } from './client.ts';
export { clientHandshake } from './handshake.ts';
export type { ClientHandshake, ClientHandshakeOptions } from './handshake.ts';
