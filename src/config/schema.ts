/**
 * The configuration file of `wsmod serve`: global `listen`, `limits`, `logging`, and `routes` with the
 * per-route directives of DESIGN.md. The rules of every key createHost and createProcessPlugin also
 * take come from their schemas (`host/options-schema.ts`, `plugin/isolation/process-options.ts`);
 * this file adds only units for sizes and durations (`1MiB`, `30s`) and the keys that exist only in a
 * file (listen, tls, logging, plugin, command, isolation, options). Unknown keys are errors (a typo
 * must not silently fall back to a default).
 */
import type { z as zt } from 'zod';
import { checkKeepalive, hostLimits, routeDirectives, routePath } from '../host/options-schema.ts';
import { type Units, expecting, oneOf, plainUnits, strictObject, text, wholeNumber, zod } from '../option-schema.ts';
import { commandSchema, processDirectives } from '../plugin/isolation/process-options.ts';
import { parseDuration, parseSize } from './units.ts';

const z = zod();

/**
 * Units in a file: a string with a unit becomes the number the API takes, and then the API's rule
 * and wording apply; a string that is no size or duration is left as it is, for that rule to refuse.
 */
const fileUnits: Units = {
  size: (min, max) => z.preprocess((v) => (typeof v === 'string' ? (parseSize(v) ?? v) : v), plainUnits.size(min, max)),
  duration: (min) => z.preprocess((v) => (typeof v === 'string' ? (parseDuration(v) ?? v) : v), plainUnits.duration(min)),
};

const port = wholeNumber(0, 65535, expecting('a port number from 0 to 65535', '0 picks a free port'));

const tls = strictObject(
  {
    cert: text(expecting('a certificate file (PEM)', 'write for example cert: tls/cert.pem')),
    key: text(expecting('a private key file (PEM)', 'write for example key: tls/key.pem')),
    ca: text('a CA certificate file (PEM)').optional(),
    passphrase: z.string({ error: 'a string' }).optional(),
  },
  'an object with cert and key',
);

const listenObject = strictObject(
  {
    host: text('an address such as 127.0.0.1, 0.0.0.0 or ::1').default('127.0.0.1'),
    port,
    tls: tls.optional(),
  },
  'an object { host, port, tls }',
);

/** `"host:port"`, `"[v6]:port"`; a string of digits alone is a port written in quotes. */
const hostPort = z.string().transform((s, ctx) => {
  if (/^\s*\d+\s*$/.test(s)) {
    ctx.addIssue({ code: 'custom', message: expecting('a port number, not a string', `write ${s.trim()} without quotes, or "127.0.0.1:${s.trim()}"`) });
    return z.NEVER;
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(s);
  const p = Number(m?.[2]);
  if (m === null || p > 65535) {
    ctx.addIssue({ code: 'custom', message: expecting('"host:port" with a port from 0 to 65535', 'write for example "127.0.0.1:8080" or "[::1]:8080"') });
    return z.NEVER;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: p };
});

const LISTEN_FORMS = 'a port number, "host:port", an object { host, port, tls }, or a list of these';
const LISTEN_HINT = 'write for example listen: 8080 or listen: "0.0.0.0:8080"';
const listenEntry = z.union([port.transform((p) => ({ host: '127.0.0.1', port: p })), hostPort, listenObject], { error: expecting(LISTEN_FORMS, LISTEN_HINT) });

const listen = z
  .union([listenEntry.transform((e) => [e]), z.array(listenEntry).min(1, { error: expecting('at least one listener', LISTEN_HINT) })], {
    error: expecting(LISTEN_FORMS, LISTEN_HINT),
  })
  .default([{ host: '127.0.0.1', port: 8080 }]);

const PROCESS_KEYS = Object.keys(processDirectives(plainUnits)) as Array<keyof ReturnType<typeof processDirectives>>;

const route = strictObject(
  {
    path: routePath(),
    plugin: text(expecting('a plugin module: a file path or a package name', 'write for example plugin: ./echo.ts')).optional(),
    command: commandSchema().optional(),
    isolation: oneOf(['inline', 'worker', 'process']).optional(),
    options: z.unknown().optional(),
    ...routeDirectives(fileUnits),
    ...processDirectives(fileUnits),
  },
  'a route: an object with path and plugin or command',
)
  .superRefine(checkKeepalive)
  .superRefine((r, ctx) => {
    if ((r.plugin === undefined) === (r.command === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: expecting('exactly one of "plugin" (a module) or "command" (a process)', 'write plugin: ./echo.ts, or command: [program, args...]'),
        params: { found: r.plugin === undefined ? 'neither' : 'both' },
      });
      return;
    }
    if (r.command !== undefined && r.isolation !== undefined && r.isolation !== 'process') {
      ctx.addIssue({ code: 'custom', path: ['isolation'], message: expecting('"process" or no isolation on a "command" route', 'remove isolation, or use plugin for a module') });
    }
    if (r.plugin !== undefined && r.isolation === 'process') {
      ctx.addIssue({ code: 'custom', path: ['isolation'], message: expecting('"inline" or "worker" on a "plugin" route', 'isolation "process" runs a "command" instead') });
    }
    if (r.command === undefined) {
      for (const key of PROCESS_KEYS) {
        if (r[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: expecting(`no "${key}" on a "plugin" route`, `"${key}" applies to "command" routes only`) });
      }
    }
  });

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

/** `backplane: { redis: {...} }`: topics shared with the other hosts on the same Redis (docs/pubsub.md). */
const redisBackplane = strictObject(
  {
    url: text('a redis:// or rediss:// URL').refine((u) => /^rediss?:\/\/./.test(u), {
      error: expecting('a redis:// or rediss:// URL', 'write for example url: redis://127.0.0.1:6379'),
    }),
    prefix: z.string({ error: expecting('a string', 'write for example prefix: "chat:"') }).optional(),
    maxQueue: wholeNumber(1, undefined, expecting('a whole number ≥ 1 of publishes')).optional(),
    maxQueueBytes: fileUnits.size(1).optional(),
    reconnectDelay: strictObject({ min: fileUnits.duration(1).optional(), max: fileUnits.duration(1).optional() }, 'an object { min, max }').optional(),
  },
  'an object { url, prefix?, maxQueue?, maxQueueBytes?, reconnectDelay? }',
);
const backplane = strictObject({ redis: redisBackplane }, 'an object { redis: { url } }');

/** More worker processes than this is a typo (a machine with 1024 cores runs one host per NUMA node). */
const MAX_WORKERS = 1024;

/** `workers`: processes sharing the listeners (docs/workers.md); 1 is a single process without a cluster. */
export const workersSchema = wholeNumber(1, MAX_WORKERS, expecting(`a whole number from 1 to ${MAX_WORKERS}`, '1 runs one process; write for example workers: 4'));

/** The schema of a configuration file (built when the CLI loads this module; `import 'wsmod'` does not). */
export const configSchema = strictObject({
  listen,
  limits: strictObject(hostLimits(fileUnits), 'an object of host-wide limits').default({}),
  logging: strictObject({ level: oneOf(LOG_LEVELS).default('info') }, 'an object { level }').default({ level: 'info' }),
  backplane: backplane.optional(),
  workers: workersSchema.default(1),
  routes: z.array(route, { error: expecting('a list of routes', 'write routes: [{ path: /echo, plugin: ./echo.ts }]') }).min(1, {
    error: expecting('a list of at least one route', 'write routes: [{ path: /echo, plugin: ./echo.ts }]'),
  }),
}).superRefine((c, ctx) => {
  const seen = new Set<string>();
  c.routes.forEach((r, i) => {
    if (seen.has(r.path)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'path'], message: expecting('a path no other route has', 'give each route its own path') });
    seen.add(r.path);
  });
});

/** A validated configuration (sizes in bytes, durations in ms). */
export type Config = zt.output<typeof configSchema>;
/** One validated route. */
export type RouteConfig = Config['routes'][number];
/** One validated listener. */
export interface ListenConfig {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string | undefined; readonly passphrase?: string | undefined } | undefined;
}
