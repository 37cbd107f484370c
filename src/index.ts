/**
 * wsmod: a WebSocket host. Services are plugins written against one small, versioned API; the host
 * runs them standalone or mounted in any Node server.
 *
 * This root export is the front door: what a plugin author and an embedder need, and nothing that
 * costs a load it does not use (no TypeScript loader, no logger until one logs). The rest lives
 * behind subpaths: `wsmod/plugin` (loading and isolation), `wsmod/client`, `wsmod/check`,
 * `wsmod/config`, `wsmod/connection`, `wsmod/protocol` and `wsmod/log`.
 */
export { definePlugin, definePluginFactory, PLUGIN_API_VERSION } from './plugin/api.ts';
export type {
  AcceptInit,
  Headers,
  MaybePromise,
  PluginContext,
  PluginFactory,
  PluginHost,
  Plugin,
  PublishOptions,
  PublishResult,
  SendOptions,
  SendResult,
  Session,
  UpgradeDecision,
  UpgradeRequest,
} from './plugin/api.ts';
export { createHost } from './host/host.ts';
export type { CloseOptions, Host, ListenInfo, TlsOptions } from './host/host.ts';
export type { HostOptions, RouteOptions } from './host/options.ts';
export type { OriginPolicy } from './host/origin.ts';
export type { BackpressurePolicy } from './connection/connection.ts';
export type { SlowSubscriberPolicy } from './host/options-schema.ts';
export type { Backplane, BackplaneStats, TopicMessage } from './pubsub/backplane.ts';
export type { Broker, BrokerStats } from './pubsub/broker.ts';
export type { Logger, LogLevel } from './log.ts';
export { ERRORS, WsmodError, isWsmodError } from './errors.ts';
export type { ErrorCode, ErrorDefinition } from './errors.ts';
