import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LoadedConfig, findConfig, loadConfig } from '../config/load.ts';
import { buildRoutes } from '../config/routes.ts';
import type { ListenConfig } from '../config/schema.ts';
import { type Host, type TlsOptions, createHost } from '../host/host.ts';
import { type LogLevel, type Logger, createLogger } from '../log.ts';
import { shutdownUnserved } from '../plugin/runtime.ts';
import type { Backplane } from '../pubsub/backplane.ts';
import { WsmodError } from '../errors.ts';
import { typecheckPlugins } from './typecheck.ts';
import { serveCluster } from '../cluster/primary.ts';
import { isClusterWorker, runWorker } from '../cluster/worker.ts';
import { ClusterBackplane } from '../cluster/cluster-backplane.ts';
import { DEFAULTS } from '../host/options.ts';

/** Options of `wsmod serve`. */
export interface ServeOptions {
  /** Configuration file; default: wsmod.config.* in the working directory, else the bundled examples. */
  readonly config?: string;
  /** Override `listen` with one address. */
  readonly host?: string;
  readonly port?: number;
  /** Override `logging.level`. */
  readonly logLevel?: LogLevel;
  /** Only validate the configuration, load its plugins and type-check the TypeScript ones, then exit. */
  readonly checkConfig?: boolean;
  /** Override `workers`: processes sharing the listeners (docs/workers.md). */
  readonly workers?: number;
}

/** The package root (two levels above this file, in src/ and in dist/ alike). */
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The configuration `npm start` uses: the bundled examples. */
export const BUNDLED_CONFIG = resolve(packageRoot, 'examples', 'wsmod.config.yaml');

/** The configuration file serve uses for these options. */
export function configFile(options: ServeOptions): string {
  return options.config ?? findConfig(process.cwd()) ?? BUNDLED_CONFIG;
}

/**
 * `wsmod serve [config]`: runs the configured routes standalone and prints each URL it serves.
 * SIGTERM/SIGINT shut down gracefully (1001 to every client); SIGHUP reloads the configuration and
 * plugins gracefully (new connections get the new version, open sessions finish on the old one; a
 * broken configuration or plugin is refused and the running version keeps serving). With `workers`
 * above 1 this process becomes the primary of a cluster (src/cluster/, docs/workers.md).
 * Returns the exit status for --check-config; otherwise runs until a signal.
 */
export async function serve(options: ServeOptions): Promise<number | undefined> {
  const file = configFile(options);
  const loaded = await loadConfig(file);
  const log = createLogger(options.logLevel ?? loaded.config.logging.level);
  if (options.checkConfig === true) {
    const routes = await buildRoutes(loaded, log);
    let failed: Awaited<ReturnType<typeof shutdownUnserved>>;
    try {
      // The host checks what the schema cannot (e.g. pongTimeout with keepalive on, origin lists).
      createHost({ routes, logger: log, ...hostLimits(loaded) });
    } finally {
      failed = await shutdownUnserved(routes.map((r) => r.plugin), log);
    }
    // A plugin whose onShutdown throws would fail every stop and reload: a problem of the configuration.
    for (const { plugin, err } of failed) {
      const i = routes.findIndex((r) => r.plugin === plugin);
      const route = loaded.config.routes[i];
      const where = route === undefined ? '' : ` (${route.plugin ?? String(route.command)}, route ${route.path})`;
      throw new WsmodError('WSMOD_ERR_PLUGIN_THREW', `plugin "${plugin.name}"${where} threw in onShutdown: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    // Last, as the slowest check: the TypeScript plugins, which tsx ran without checking their types.
    const typed = await typecheckPlugins(
      loaded.config.routes.flatMap((r) => (r.plugin === undefined ? [] : [r.plugin])),
      loaded.baseDir,
    );
    if (typed.errors.length > 0) {
      process.stderr.write(`wsmod: type errors in the plugins of ${loaded.file}:\n${typed.errors.join('\n')}\n`);
      return 1;
    }
    if (typed.skipped !== undefined) process.stderr.write(`wsmod: ${typed.skipped}\n`);
    const checked = typed.files.length === 0 ? '' : `, ${typed.files.length} TypeScript plugin${typed.files.length === 1 ? '' : 's'} type-checked`;
    process.stdout.write(`configuration OK: ${loaded.file} (${routes.length} route${routes.length === 1 ? '' : 's'}${checked})\n`);
    return 0;
  }
  const workers = options.workers ?? loaded.config.workers;
  if (workers > 1 && !isClusterWorker()) {
    // The primary loads no plugin: each worker runs this same command and builds its own host.
    await serveCluster({ workers, logger: log, shutdownDeadline: loaded.config.limits.shutdownDeadline ?? DEFAULTS.shutdownDeadline });
    return undefined;
  }
  const routes = await buildRoutes(loaded, log);
  const backplane = await backplaneOf(loaded, log);
  let host: Host;
  try {
    host = createHost({ routes, logger: log, ...hostLimits(loaded), ...(backplane !== undefined && { backplane }) });
  } catch (err) {
    await shutdownUnserved(routes.map((r) => r.plugin), log);
    await backplane?.close();
    throw err;
  }
  const listeners: ListenConfig[] =
    options.port !== undefined || options.host !== undefined
      ? [{ host: options.host ?? '127.0.0.1', port: options.port ?? 8080 }]
      : loaded.config.listen;
  const urls: string[] = [];
  for (const l of listeners) {
    const tls = l.tls === undefined ? undefined : readTls(l.tls, loaded.baseDir);
    const addr = await host.listen(l.port, l.host, tls === undefined ? {} : { tls });
    const authority = addr.host.includes(':') ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
    for (const path of host.routes.keys()) urls.push(`${tls === undefined ? 'ws' : 'wss'}://${authority}${path}`);
  }
  if (isClusterWorker()) {
    // The primary prints the URLs once and owns the signals; a reload replaces this process.
    runWorker({ host, urls, logger: log });
    return undefined;
  }
  for (const url of urls) process.stdout.write(`wsmod listening on ${url}\n`);
  handleSignals(host, loaded, log);
  return undefined;
}

/** The host-wide limits of a configuration, as createHost options. */
/** The configuration's backplane, started (it connects in the background; the host serves meanwhile). */
async function backplaneOf(loaded: LoadedConfig, log: Logger): Promise<Backplane | undefined> {
  const redis = loaded.config.backplane?.redis;
  // --workers without Redis: the workers share topics through the primary (docs/workers.md).
  if (redis === undefined) return isClusterWorker() ? new ClusterBackplane() : undefined;
  const { createRedisBackplane } = await import('../pubsub/redis.ts');
  const { reconnectDelay, ...rest } = redis;
  return createRedisBackplane({
    ...(Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as { url: string }),
    ...(reconnectDelay !== undefined && {
      reconnectDelay: Object.fromEntries(Object.entries(reconnectDelay).filter(([, v]) => v !== undefined)),
    }),
    logger: log,
  });
}

function hostLimits(loaded: LoadedConfig): { handshakeTimeout?: number; maxConnections?: number; maxConnectionsPerIp?: number; shutdownDeadline?: number } {
  const l = loaded.config.limits;
  return {
    ...(l.handshakeTimeout === undefined ? {} : { handshakeTimeout: l.handshakeTimeout }),
    ...(l.maxConnections === undefined ? {} : { maxConnections: l.maxConnections }),
    ...(l.maxConnectionsPerIp === undefined ? {} : { maxConnectionsPerIp: l.maxConnectionsPerIp }),
    ...(l.shutdownDeadline === undefined ? {} : { shutdownDeadline: l.shutdownDeadline }),
  };
}

function readTls(tls: NonNullable<ListenConfig['tls']>, baseDir: string): TlsOptions {
  return {
    cert: readFileSync(resolve(baseDir, tls.cert)),
    key: readFileSync(resolve(baseDir, tls.key)),
    ...(tls.ca === undefined ? {} : { ca: readFileSync(resolve(baseDir, tls.ca)) }),
    ...(tls.passphrase === undefined ? {} : { passphrase: tls.passphrase }),
  };
}

function handleSignals(host: Host, first: LoadedConfig, log: Logger): void {
  let current = first;
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, sessions: host.connections }, 'shutting down');
    host.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // Reloads run one at a time, in the order the signals came.
  let reloading: Promise<void> = Promise.resolve();
  const reload = (): void => {
    reloading = reloading.then(async () => {
      if (stopping) return;
      try {
        const next = await loadConfig(current.file);
        for (const key of ['listen', 'limits', 'logging', 'backplane'] as const) {
          if (JSON.stringify(next.config[key]) !== JSON.stringify(current.config[key])) {
            log.warn({ file: next.file, key }, `reload: "${key}" changes take effect on restart only`);
          }
        }
        const routes = await buildRoutes(next, log);
        try {
          host.replaceRoutes(routes);
        } catch (err) {
          await shutdownUnserved(routes.map((r) => r.plugin), log);
          throw err;
        }
        current = { ...next, config: { ...next.config, listen: current.config.listen, limits: current.config.limits, logging: current.config.logging, backplane: current.config.backplane } };
        log.info({ file: next.file, routes: next.config.routes.length }, 'configuration reloaded');
      } catch (err) {
        log.error({ file: current.file, err: (err as Error).message }, 'reload refused: the running configuration keeps serving');
      }
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', reload);
}
