import { WsmodError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type Checked, checkOptions, once, plainUnits, problemText, strictObject, zod } from '../option-schema.ts';
import type { Plugin } from '../plugin/api.ts';
import { validatePlugin } from '../plugin/validate.ts';
import type { BackpressurePolicy, ConnectionOptions } from '../connection/connection.ts';
import { DEFAULT_DEFLATE, type DeflateConfig } from '../protocol/permessage-deflate.ts';
import type { OriginPolicy } from './origin.ts';
import type { Backplane } from '../pubsub/backplane.ts';
import { DEFAULTS, type SlowSubscriberPolicy, checkKeepalive, hostLimits, loggerSchema, routeDirectives, routePath } from './options-schema.ts';

export { DEFAULTS } from './options-schema.ts';

/**
 * One route: a path, the plugin serving it, and its directives. Sizes in bytes, durations in ms, whole
 * numbers; the ranges are those of the configuration file's keys of the same names (one schema,
 * `options-schema.ts`), and unknown keys are refused.
 */
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
  /** Largest incoming message, 1 byte to 4 GiB. Default 1 MiB. */
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
  /** Topics a session of this route may subscribe to at once (0 forbids subscribing). Default 64. */
  readonly maxTopics?: number;
  /**
   * A topic message that would take a subscriber over maxBackpressure: `drop` it for that subscriber
   * (counted), or `close` the subscriber with 1013. Default `drop`. See docs/pubsub.md.
   */
  readonly slowSubscriber?: SlowSubscriberPolicy;
}

/** Options of {@link createHost}: the routes, and the configuration file's `limits` as top-level keys. Unknown keys are refused. */
export interface HostOptions {
  readonly routes: readonly RouteOptions[];
  /** Time from the upgrade request to the 101 (including an async onUpgrade). Default 10 s. */
  readonly handshakeTimeout?: number;
  /** Open sessions plus handshakes in progress, host-wide; at least 1. Default 10,000. */
  readonly maxConnections?: number;
  /** The same, per remote address; at least 1. Default 1,000. */
  readonly maxConnectionsPerIp?: number;
  /** Default deadline of close(), and the time a replaced plugin's onShutdown gets. Default 10 s. */
  readonly shutdownDeadline?: number;
  /** Where wsmod logs; default a pino logger on stderr at level info. */
  readonly logger?: Logger;
  /**
   * Carries topics to other hosts (Redis) or worker processes; default none (topics stay in this
   * host). The host sets its callbacks and closes it in `host.close()`. See docs/pubsub.md.
   */
  readonly backplane?: Backplane;
}

/** A route with every directive resolved; the connection's limits are handed to each Connection as they are. */
export interface Route
  extends Pick<ConnectionOptions, 'maxMessageSize' | 'idleTimeout' | 'pongTimeout' | 'closeTimeout' | 'maxBackpressure' | 'backpressurePolicy'> {
  readonly path: string;
  readonly plugin: Plugin<unknown>;
  readonly origin: OriginPolicy;
  readonly requireOrigin: boolean;
  readonly protocols: readonly string[];
  /** Compression settings when permessage-deflate is on for the route. */
  readonly compression: DeflateConfig | undefined;
  readonly maxTopics: number;
  readonly slowSubscriber: SlowSubscriberPolicy;
}

/** createHost's schema of one route: its path, its plugin (checked by validatePlugin), its directives. */
const routeSchema = once(() =>
  strictObject({ path: routePath(), plugin: zod().unknown(), ...routeDirectives(plainUnits) }, 'a route: an object with path, plugin and directives').superRefine(checkKeepalive),
);

/** createHost's schema of its own keys; each route is checked by {@link resolveRoute}. */
const hostSchema = once(() =>
  strictObject(
    {
      routes: zod().array(zod().unknown(), { error: 'a list of routes' }),
      logger: loggerSchema().optional(),
      backplane: backplaneSchema().optional(),
      ...hostLimits(plainUnits),
    },
    'host options: an object with routes',
  ),
);

/** A backplane as createHost takes it: the Backplane interface's methods (src/pubsub/backplane.ts). */
function backplaneSchema() {
  return zod().custom<Backplane>(
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as Record<string, unknown>)['id'] === 'string' &&
      ['subscribe', 'unsubscribe', 'publish', 'close'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
    { error: 'a backplane: an object with id, subscribe, unsubscribe, publish and close (see docs/pubsub.md)' },
  );
}

/** The parsed value, or WSMOD_ERR_INVALID_OPTION with every problem. */
function valid<T>(checked: Checked<T>): T {
  if (!checked.ok) throw new WsmodError('WSMOD_ERR_INVALID_OPTION', problemText(checked.problems));
  return checked.value;
}

/**
 * Resolves a route's directives against the defaults. Refuses bad values with
 * WSMOD_ERR_INVALID_OPTION (`routes[i].key: expected …, found …`) and a bad plugin with
 * WSMOD_ERR_PLUGIN_*.
 */
export function resolveRoute(options: RouteOptions, index: number): Route {
  const r = valid(checkOptions(routeSchema(), options, ['routes', index]));
  const plugin = validatePlugin(options.plugin, `routes[${index}] (${r.path})`);
  return {
    path: r.path,
    plugin,
    origin: r.origin ?? DEFAULTS.origin,
    requireOrigin: r.requireOrigin ?? DEFAULTS.requireOrigin,
    protocols: r.protocols ?? plugin.protocols ?? [],
    maxMessageSize: r.maxMessageSize ?? DEFAULTS.maxMessageSize,
    idleTimeout: r.idleTimeout ?? DEFAULTS.idleTimeout,
    pongTimeout: r.pongTimeout ?? DEFAULTS.pongTimeout,
    closeTimeout: r.closeTimeout ?? DEFAULTS.closeTimeout,
    maxBackpressure: r.maxBackpressure ?? DEFAULTS.maxBackpressure,
    backpressurePolicy: r.backpressurePolicy ?? plugin.backpressurePolicy ?? DEFAULTS.backpressurePolicy,
    maxTopics: r.maxTopics ?? DEFAULTS.maxTopics,
    slowSubscriber: r.slowSubscriber ?? DEFAULTS.slowSubscriber,
    compression: r.compression === undefined || r.compression === false ? undefined : r.compression === true ? DEFAULT_DEFLATE : { ...DEFAULT_DEFLATE, ...(definedOnly(r.compression) as Partial<DeflateConfig>) },
  };
}

/** The keys of `o` whose value is not undefined (so they do not overwrite a default). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Resolved host-wide limits. */
export interface HostLimits {
  readonly handshakeTimeout: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly shutdownDeadline: number;
}

/** Resolves host-wide limits against the defaults; refuses bad values (and unknown keys) with WSMOD_ERR_INVALID_OPTION. */
export function resolveLimits(options: HostOptions): HostLimits {
  const h = valid(checkOptions(hostSchema(), options));
  return {
    handshakeTimeout: h.handshakeTimeout ?? DEFAULTS.handshakeTimeout,
    maxConnections: h.maxConnections ?? DEFAULTS.maxConnections,
    maxConnectionsPerIp: h.maxConnectionsPerIp ?? DEFAULTS.maxConnectionsPerIp,
    shutdownDeadline: h.shutdownDeadline ?? DEFAULTS.shutdownDeadline,
  };
}

// The interfaces above are what users read; the schemas are what runs. Keep their keys the same.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
const routeKeysMatch: SameKeys<RouteOptions, ReturnType<ReturnType<typeof routeSchema>['parse']>> = true;
const hostKeysMatch: SameKeys<HostOptions, ReturnType<ReturnType<typeof hostSchema>['parse']>> = true;
void routeKeysMatch;
void hostKeysMatch;
