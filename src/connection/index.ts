/**
 * `wsmod/connection`: the engine that runs one WebSocket over any Duplex (read loop, coalesced writes,
 * backpressure, keepalive, closing handshake). The host and the client are built on it.
 */
export { Connection, ReadyState } from './connection.ts';
export { PreparedMessage } from './prepared.ts';
export type { BackpressurePolicy, ConnectionEvents, ConnectionOptions, SendResult } from './connection.ts';
