/**
 * wsmod: a WebSocket host. Services are plugins written against one small, versioned API; the host
 * runs them standalone or mounted in any Node server.
 */
export { definePlugin, definePluginFactory, PLUGIN_API_VERSION } from './plugin/api.ts';
export type {
  AcceptInit,
  Headers,
  MaybePromise,
  PluginContext,
  PluginFactory,
  Plugin,
  SendOptions,
  SendResult,
  Session,
  UpgradeDecision,
  UpgradeRequest,
} from './plugin/api.ts';
export { validatePlugin } from './plugin/validate.ts';
export { loadPlugin } from './plugin/loader.ts';
export { createWorkerPlugin, type WorkerPluginOptions } from './plugin/isolation/worker.ts';
export { createHost, Host } from './host/host.ts';
export type { CloseOptions, ListenInfo } from './host/host.ts';
export { DEFAULTS } from './host/options.ts';
export type { HostOptions, RouteOptions } from './host/options.ts';
export type { OriginPolicy } from './host/origin.ts';
export { Connection, ReadyState } from './connection/connection.ts';
export type { BackpressurePolicy, ConnectionEvents, ConnectionOptions } from './connection/connection.ts';
export { ERRORS, WsmodError, isWsmodError } from './errors.ts';
export type { ErrorCode, ErrorDefinition } from './errors.ts';
export { CLOSE_CODES, CloseCode, isValidCloseCode } from './protocol/close-codes.ts';
export { createLogger } from './log.ts';
export type { Logger, LogLevel } from './log.ts';
export { connect, WebSocketClient } from './client/client.ts';
export type { ClientClose, ClientMessage, ClientOptions } from './client/client.ts';
export { clientHandshake } from './client/handshake.ts';
export type { ClientHandshake, ClientHandshakeOptions } from './client/handshake.ts';
export { createProcessPlugin, type ProcessPlugin, type ProcessPluginOptions } from './plugin/isolation/process.ts';
