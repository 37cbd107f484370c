import { WsmodError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Plugin } from '../plugin/api.ts';
import { validatePlugin } from '../plugin/validate.ts';
import type { BackpressurePolicy } from '../connection/connection.ts';
import { DEFAULT_DEFLATE, type DeflateConfig } from '../protocol/permessage-deflate.ts';
import { type OriginPolicy, compileOriginPolicy } from './origin.ts';

/** The secure defaults of DESIGN.md, in one place (documented in docs/protocol.md). */
export const DEFAULTS = {
  origin: 'same' as OriginPolicy,
  requireOrigin: false,
  maxMessageSize: 1024 * 1024,
  idleTimeout: 30_000,
  pongTimeout: 30_000,
  closeTimeout: 5_000,
  maxBackpressure: 1024 * 1024,
  backpressurePolicy: 'drop' as BackpressurePolicy,
  handshakeTimeout: 10_000,
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
  shutdownDeadline: 10_000,
} as const;

/** One route: a path, the plugin serving it, and its directives. Sizes in bytes, durations in ms. */
export interface RouteOptions {
  /** Exact request path (no query), starting with "/". */
  readonly path: string;
  readonly plugin: Plugin<any>;
  /** Which Origins may connect. Default `same`. */
  readonly origin?: OriginPolicy;
  /** Refuse requests without an Origin header. Default false. */
  readonly requireOrigin?: boolean;
  /** Subprotocols in preference order; default: the plugin's `protocols`. */
  readonly protocols?: readonly string[];
  /** Largest incoming message. Default 1 MiB. */
  readonly maxMessageSize?: number;
  /** Silence before a keepalive ping; 0 disables keepalive. Default 30 s. */
  readonly idleTimeout?: number;
  /** Time to hear back after a keepalive ping. Default 30 s. */
  readonly pongTimeout?: number;
  /** Time for the closing handshake before the TCP connection is destroyed. Default 5 s. */
  readonly closeTimeout?: number;
  /** Outbound bytes held per session before the backpressure policy applies. Default 1 MiB. */
  readonly maxBackpressure?: number;
  /** `drop` (send returns 'dropped') or `close` (the session is closed with 1008). Default `drop`. */
  readonly backpressurePolicy?: BackpressurePolicy;
  /**
   * permessage-deflate (RFC 7692): off by default; `true` for the defaults (no context takeover either
   * way, threshold 1 KiB), or settings to override them.
   */
  readonly compression?: boolean | Partial<DeflateConfig>;
}

/** Options of {@link createHost}. */
export interface HostOptions {
  readonly routes: readonly RouteOptions[];
  /** Time from the upgrade request to the 101 (including an async onUpgrade). Default 10 s. */
  readonly handshakeTimeout?: number;
  /** Open sessions plus handshakes in progress, host-wide. Default 10,000. */
  readonly maxConnections?: number;
  /** The same, per remote address. Default 1,000. */
  readonly maxConnectionsPerIp?: number;
  /** Default deadline of close(), and the time a replaced plugin's onShutdown gets. Default 10 s. */
  readonly shutdownDeadline?: number;
  /** Where wsmod logs; default a pino logger on stderr at level info. */
  readonly logger?: Logger;
}

/** A route with every directive resolved. */
export interface Route {
  readonly path: string;
  readonly plugin: Plugin<unknown>;
  readonly origin: OriginPolicy;
  readonly requireOrigin: boolean;
  readonly protocols: readonly string[];
  readonly maxMessageSize: number;
  readonly idleTimeout: number;
  readonly pongTimeout: number;
  readonly closeTimeout: number;
  readonly maxBackpressure: number;
  readonly backpressurePolicy: BackpressurePolicy;
  /** Compression settings when permessage-deflate is on for the route. */
  readonly compression: DeflateConfig | undefined;
}

function nonNegative(value: unknown, name: string, where: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `${where}: ${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

/** Resolves a route's directives against the defaults, refusing bad values with WSMOD_ERR_INVALID_OPTION. */
export function resolveRoute(options: RouteOptions, index: number): Route {
  const where = `routes[${index}]`;
  if (typeof options.path !== 'string' || !options.path.startsWith('/') || /[?#\s]/.test(options.path)) {
    throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `${where}: path must start with "/" and hold no query, got ${String(options.path)}`);
  }
  const plugin = validatePlugin(options.plugin, `${where} (${options.path})`);
  const policy = options.backpressurePolicy ?? DEFAULTS.backpressurePolicy;
  if (policy !== 'drop' && policy !== 'close') {
    throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `${where}: backpressurePolicy must be "drop" or "close"`);
  }
  const maxMessageSize = nonNegative(options.maxMessageSize, 'maxMessageSize', where, DEFAULTS.maxMessageSize);
  if (maxMessageSize > 2 ** 32) {
    throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `${where}: maxMessageSize is capped at 4 GiB`);
  }
  const idleTimeout = nonNegative(options.idleTimeout, 'idleTimeout', where, DEFAULTS.idleTimeout);
  const pongTimeout = nonNegative(options.pongTimeout, 'pongTimeout', where, DEFAULTS.pongTimeout);
  if (idleTimeout > 0 && pongTimeout === 0) {
    throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `${where}: pongTimeout must be above 0 while keepalive is on (idleTimeout 0 turns it off)`);
  }
  return {
    path: options.path,
    plugin,
    origin: compileOriginPolicy(options.origin ?? DEFAULTS.origin, where),
    requireOrigin: options.requireOrigin ?? DEFAULTS.requireOrigin,
    protocols: options.protocols ?? plugin.protocols ?? [],
    maxMessageSize,
    idleTimeout,
    pongTimeout,
    closeTimeout: nonNegative(options.closeTimeout, 'closeTimeout', where, DEFAULTS.closeTimeout),
    maxBackpressure: nonNegative(options.maxBackpressure, 'maxBackpressure', where, DEFAULTS.maxBackpressure),
    backpressurePolicy: policy,
    compression: resolveCompression(options.compression, where),
  };
}

function inRange(value: unknown, name: string, where: string, lo: number, hi: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) {
    throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `${where}: compression.${name} must be an integer from ${lo} to ${hi}, got ${String(value)}`);
  }
  return value;
}

/** Resolves the `compression` directive against the defaults. */
function resolveCompression(value: RouteOptions['compression'], where: string): DeflateConfig | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return DEFAULT_DEFLATE;
  if (typeof value !== 'object' || value === null) {
    throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `${where}: compression must be true, false or an object of settings`);
  }
  const bool = (v: unknown, name: string, fallback: boolean): boolean => {
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `${where}: compression.${name} must be true or false`);
    return v;
  };
  const d = DEFAULT_DEFLATE;
  return {
    threshold: nonNegative(value.threshold, 'compression.threshold', where, d.threshold),
    serverNoContextTakeover: bool(value.serverNoContextTakeover, 'serverNoContextTakeover', d.serverNoContextTakeover),
    clientNoContextTakeover: bool(value.clientNoContextTakeover, 'clientNoContextTakeover', d.clientNoContextTakeover),
    serverMaxWindowBits: inRange(value.serverMaxWindowBits, 'serverMaxWindowBits', where, 8, 15, d.serverMaxWindowBits),
    clientMaxWindowBits: inRange(value.clientMaxWindowBits, 'clientMaxWindowBits', where, 8, 15, d.clientMaxWindowBits),
    level: inRange(value.level, 'level', where, -1, 9, d.level),
    memLevel: inRange(value.memLevel, 'memLevel', where, 1, 9, d.memLevel),
  };
}

/** Resolved host-wide limits. */
export interface HostLimits {
  readonly handshakeTimeout: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly shutdownDeadline: number;
}

/** Resolves host-wide limits against the defaults. */
export function resolveLimits(options: HostOptions): HostLimits {
  return {
    handshakeTimeout: nonNegative(options.handshakeTimeout, 'handshakeTimeout', 'host', DEFAULTS.handshakeTimeout),
    maxConnections: nonNegative(options.maxConnections, 'maxConnections', 'host', DEFAULTS.maxConnections),
    maxConnectionsPerIp: nonNegative(options.maxConnectionsPerIp, 'maxConnectionsPerIp', 'host', DEFAULTS.maxConnectionsPerIp),
    shutdownDeadline: nonNegative(options.shutdownDeadline, 'shutdownDeadline', 'host', DEFAULTS.shutdownDeadline),
  };
}
