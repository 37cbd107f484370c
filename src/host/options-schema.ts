/**
 * The one definition of the host's options: a route's directives and the host-wide limits, with their
 * ranges and defaults. `createHost` parses with these schemas (numbers of bytes and milliseconds);
 * the configuration file's schema (`config/schema.ts`) is built from the same functions with units
 * (`1MiB`, `30s`) and adds its file-only keys. Semantics decided here, once:
 * - `maxConnections`, `maxConnectionsPerIp` are at least 1: 0 would refuse every upgrade, and there is
 *   deliberately no "unlimited".
 * - `maxMessageSize` is from 1 byte to 4 GiB; `idleTimeout` 0 turns keepalive off, and then only
 *   may `pongTimeout` be 0.
 * - Sizes and durations are whole numbers.
 */
import type { z as zt } from 'zod';
import type { BackpressurePolicy } from '../connection/connection.ts';
import { type Units, count, expecting, flag, integerRange, oneOf, strictObject, zod } from '../option-schema.ts';
import { type OriginPolicy, normalizeOrigin } from './origin.ts';

/** The secure defaults of DESIGN.md, in one place (documented in docs/protocol.md and docs/configuration.md). */
export const DEFAULTS = {
  origin: 'same' as OriginPolicy,
  requireOrigin: false,
  maxMessageSize: 1024 * 1024,
  idleTimeout: 30_000,
  pongTimeout: 30_000,
  closeTimeout: 5_000,
  maxBackpressure: 1024 * 1024,
  backpressurePolicy: 'close' as BackpressurePolicy,
  maxTopics: 64,
  slowSubscriber: 'drop' as SlowSubscriberPolicy,
  handshakeTimeout: 10_000,
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
  shutdownDeadline: 10_000,
} as const;

/**
 * What a route does when a topic message would take a subscriber's outbound queue over maxBackpressure:
 * `drop` the message for that subscriber (counted), or `close` the subscriber with 1013 (counted).
 */
export type SlowSubscriberPolicy = 'drop' | 'close';

/** The largest `maxMessageSize`: 4 GiB (a message length the parser counts in 32 bits plus one). */
export const MAX_MESSAGE_SIZE_LIMIT = 2 ** 32;

/** RFC 7230 §3.2.6 token: what a subprotocol name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A route path: exact, starting with "/", no query. */
export function routePath(): zt.ZodType<string, unknown> {
  const message = expecting('a path starting with "/", without "?", "#" or spaces', 'write for example "/echo"');
  return zod().string({ error: message }).regex(/^\/[^?#\s]*$/, { error: message });
}

function originPolicy(): zt.ZodType<OriginPolicy, unknown> {
  const z = zod();
  const message = expecting('"same", "any" or a list of origins', 'write for example origin: ["https://example.com"]');
  const entry = z.string({ error: expecting('an origin: scheme://host[:port]', 'write for example "https://example.com"') }).transform((s, ctx) => {
    const normalized = normalizeOrigin(s);
    if (normalized === undefined) {
      ctx.addIssue({ code: 'custom', message: expecting('an origin: scheme://host[:port]', 'write for example "https://example.com"') });
      return z.NEVER;
    }
    return normalized;
  });
  return z.union([z.enum(['same', 'any'], { error: message }), z.array(entry, { error: message }).min(1, { error: message })], { error: message });
}

/** permessage-deflate: true, false or settings over DEFAULT_DEFLATE. */
function compression(units: Units) {
  const z = zod();
  const settings = strictObject(
    {
      threshold: units.size(0).optional(),
      serverNoContextTakeover: flag().optional(),
      clientNoContextTakeover: flag().optional(),
      serverMaxWindowBits: integerRange(8, 15).optional(),
      clientMaxWindowBits: integerRange(8, 15).optional(),
      level: integerRange(-1, 9).optional(),
      memLevel: integerRange(1, 9).optional(),
    },
    'an object of compression settings',
  );
  return z.union([z.boolean(), settings], { error: expecting('true, false or an object of compression settings', 'write compression: true for the defaults') });
}

/**
 * A route's directives (everything but its path and plugin), with sizes and durations written in
 * `units`. The keys, their ranges and their wording are the same for createHost and the file.
 */
export function routeDirectives(units: Units) {
  const z = zod();
  const token = expecting("a subprotocol token (letters, digits and !#$%&'*+-.^_`|~)", 'write for example "chat.v1"');
  return {
    origin: originPolicy().optional(),
    requireOrigin: flag().optional(),
    protocols: z.array(z.string({ error: token }).regex(TOKEN, { error: token }), { error: 'a list of subprotocol tokens' }).optional(),
    maxMessageSize: units.size(1, MAX_MESSAGE_SIZE_LIMIT).optional(),
    idleTimeout: units.duration(0).optional(),
    pongTimeout: units.duration(0).optional(),
    closeTimeout: units.duration(0).optional(),
    maxBackpressure: units.size(0).optional(),
    backpressurePolicy: oneOf(['drop', 'close']).optional(),
    compression: compression(units).optional(),
    maxTopics: count(0, 'write 0 to forbid subscriptions on this route').optional(),
    slowSubscriber: oneOf(['drop', 'close']).optional(),
  };
}

/**
 * The rule across a route's keys: with keepalive on (idleTimeout > 0), a pong must be awaited for
 * some time. Used as a refinement by createHost's route schema and the file's.
 */
export function checkKeepalive(route: { readonly idleTimeout?: number | undefined; readonly pongTimeout?: number | undefined }, ctx: zt.RefinementCtx): void {
  const idle = route.idleTimeout ?? DEFAULTS.idleTimeout;
  const pong = route.pongTimeout ?? DEFAULTS.pongTimeout;
  if (idle > 0 && pong === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['pongTimeout'],
      message: expecting(`a duration above 0 ms while keepalive is on (idleTimeout ${idle})`, 'raise pongTimeout, or set idleTimeout: 0 to turn keepalive off'),
    });
  }
}

const NO_UNLIMITED = '0 would refuse every connection and there is no "unlimited": write a large number such as 100000';

/** The host-wide limits, with durations written in `units`. */
export function hostLimits(units: Units) {
  return {
    handshakeTimeout: units.duration(0).optional(),
    maxConnections: count(1, NO_UNLIMITED).optional(),
    maxConnectionsPerIp: count(1, NO_UNLIMITED).optional(),
    shutdownDeadline: units.duration(0).optional(),
  };
}

/** A logger as createHost takes it: pino's shape (debug, info, warn, error). */
export function loggerSchema() {
  return zod().custom<unknown>(
    (v) => typeof v === 'object' && v !== null && ['debug', 'info', 'warn', 'error'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
    { error: 'a logger: an object with debug, info, warn and error methods (pino, or createLogger())' },
  );
}
