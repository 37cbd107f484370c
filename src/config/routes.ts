import type { RouteOptions } from '../host/options.ts';
import type { Logger } from '../log.ts';
import type { Plugin } from '../plugin/api.ts';
import { createProcessPlugin } from '../plugin/isolation/process.ts';
import { createWorkerPlugin } from '../plugin/isolation/worker.ts';
import { loadPlugin } from '../plugin/loader.ts';
import type { LoadedConfig } from './load.ts';
import type { RouteConfig } from './schema.ts';

/**
 * Turns a configuration's routes into host routes: loads each plugin inline, starts it in a worker,
 * or wraps a command as a process plugin. All or nothing: if one route fails, the plugins already
 * started are shut down and the error (naming the file) is thrown.
 */
export async function buildRoutes(loaded: LoadedConfig, log: Logger): Promise<RouteOptions[]> {
  const built: RouteOptions[] = [];
  try {
    for (const route of loaded.config.routes) {
      built.push({ ...directives(route), plugin: await pluginFor(route, loaded.baseDir, log) });
    }
  } catch (err) {
    await Promise.allSettled(built.map((r) => r.plugin.onShutdown?.()));
    throw err;
  }
  return built;
}

async function pluginFor(route: RouteConfig, baseDir: string, log: Logger): Promise<Plugin<unknown>> {
  if (route.command !== undefined) {
    return createProcessPlugin({
      command: route.command,
      baseDir,
      path: route.path,
      log,
      ...(route.binary === undefined ? {} : { binary: route.binary }),
      ...(route.maxProcesses === undefined ? {} : { maxProcesses: route.maxProcesses }),
      ...(route.killGrace === undefined ? {} : { killGrace: route.killGrace }),
      ...(route.env === undefined ? {} : { env: route.env }),
      ...(route.options === undefined ? {} : { options: route.options }),
    });
  }
  const specifier = route.plugin!;
  if (route.isolation === 'worker') {
    return createWorkerPlugin({ specifier, baseDir, path: route.path, log, ...(route.options === undefined ? {} : { options: route.options }) });
  }
  return loadPlugin(specifier, { baseDir, options: route.options, context: { path: route.path, log } });
}

/** The host directives of a configured route (everything but how its plugin is made). */
function directives(route: RouteConfig): Omit<RouteOptions, 'plugin'> {
  const out: Record<string, unknown> = { path: route.path };
  for (const key of [
    'origin',
    'requireOrigin',
    'protocols',
    'maxMessageSize',
    'idleTimeout',
    'pongTimeout',
    'closeTimeout',
    'maxBackpressure',
    'backpressurePolicy',
    'compression',
  ] as const) {
    if (route[key] !== undefined) out[key] = route[key];
  }
  return out as unknown as Omit<RouteOptions, 'plugin'>;
}
