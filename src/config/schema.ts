import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';

/**
 * The configuration file of `wsmod serve`: global `listen`, `limits`, `logging`, and `routes` with the
 * per-route directives of DESIGN.md. Unknown keys are errors (a typo must not silently fall back to a
 * default). Sizes and durations accept units: `1MiB`, `30s`.
 */

const size = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const n = parseSize(value);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected a size such as 1MiB, 64KiB, 1MB or a number of bytes' });
    return z.NEVER;
  }
  return n;
});

const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const n = parseDuration(value);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 30s, 250ms, 2m or a number of milliseconds' });
    return z.NEVER;
  }
  return n;
});

const port = z.number().int().min(0).max(65535);
const token = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a token (RFC 7230 §3.2.6)');

const tls = z
  .object({
    cert: z.string().min(1),
    key: z.string().min(1),
    ca: z.string().min(1).optional(),
    passphrase: z.string().optional(),
  })
  .strict();

const listenObject = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port,
    tls: tls.optional(),
  })
  .strict();

const listenEntry = z.union([
  port.transform((p) => ({ host: '127.0.0.1', port: p })),
  z
    .string()
    .regex(/^(?:\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected "host:port"')
    .transform((s, ctx) => {
      const i = s.lastIndexOf(':');
      const p = Number(s.slice(i + 1));
      if (p > 65535) {
        ctx.addIssue({ code: 'custom', message: 'port must be 0-65535' });
        return z.NEVER;
      }
      return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: p };
    }),
  listenObject,
]);

const route = z
  .object({
    path: z.string().regex(/^\/[^?#\s]*$/, 'expected a path starting with "/" (no query, no spaces)'),
    plugin: z.string().min(1).optional(),
    command: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    isolation: z.enum(['inline', 'worker', 'process']).optional(),
    options: z.unknown().optional(),
    origin: z.union([z.enum(['same', 'any']), z.array(z.string().min(1)).min(1)]).optional(),
    requireOrigin: z.boolean().optional(),
    protocols: z.array(token).optional(),
    maxMessageSize: size.optional(),
    idleTimeout: duration.optional(),
    pongTimeout: duration.optional(),
    closeTimeout: duration.optional(),
    maxBackpressure: size.optional(),
    backpressurePolicy: z.enum(['drop', 'close']).optional(),
    compression: z
      .union([
        z.boolean(),
        z
          .object({
            threshold: size.optional(),
            serverNoContextTakeover: z.boolean().optional(),
            clientNoContextTakeover: z.boolean().optional(),
            serverMaxWindowBits: z.number().int().min(8).max(15).optional(),
            clientMaxWindowBits: z.number().int().min(8).max(15).optional(),
            level: z.number().int().min(-1).max(9).optional(),
            memLevel: z.number().int().min(1).max(9).optional(),
          })
          .strict(),
      ])
      .optional(),
    // process isolation only
    binary: z.boolean().optional(),
    maxProcesses: z.number().int().positive().optional(),
    killGrace: duration.optional(),
    env: z.record(z.string(), z.string()).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if ((r.plugin === undefined) === (r.command === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'a route needs exactly one of "plugin" (a module) or "command" (a process)' });
      return;
    }
    if (r.command !== undefined && r.isolation !== undefined && r.isolation !== 'process') {
      ctx.addIssue({ code: 'custom', path: ['isolation'], message: '"command" routes run as processes: isolation must be "process" or absent' });
    }
    if (r.plugin !== undefined && r.isolation === 'process') {
      ctx.addIssue({ code: 'custom', path: ['isolation'], message: 'isolation "process" needs "command", not "plugin"' });
    }
    if (r.command === undefined) {
      for (const key of ['binary', 'maxProcesses', 'killGrace', 'env'] as const) {
        if (r[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" applies to "command" routes only` });
      }
    }
  });

/** The schema of a configuration file. */
export const configSchema = z
  .object({
    listen: z
      .union([listenEntry.transform((e) => [e]), z.array(listenEntry).min(1)])
      .default([{ host: '127.0.0.1', port: 8080 }]),
    limits: z
      .object({
        handshakeTimeout: duration.optional(),
        maxConnections: z.number().int().positive().optional(),
        maxConnectionsPerIp: z.number().int().positive().optional(),
        shutdownDeadline: duration.optional(),
      })
      .strict()
      .default({}),
    logging: z
      .object({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
    routes: z.array(route).min(1),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.routes.forEach((r, i) => {
      if (seen.has(r.path)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'path'], message: `two routes share the path ${r.path}` });
      seen.add(r.path);
    });
  });

/** A validated configuration (sizes in bytes, durations in ms). */
export type Config = z.output<typeof configSchema>;
/** One validated route. */
export type RouteConfig = Config['routes'][number];
/** One validated listener. */
export interface ListenConfig {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string | undefined; readonly passphrase?: string | undefined } | undefined;
}
