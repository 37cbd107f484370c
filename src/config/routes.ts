import type { RouteOptions } from '../host/options.ts';
import type { Logger } from '../log.ts';
import type { Plugin } from '../plugin/api.ts';
import { WsmodError } from '../errors.ts';
import { routeDirectives } from '../host/options-schema.ts';
import { plainUnits } from '../option-schema.ts';
import { type ProcessPluginOptions, createProcessPlugin } from '../plugin/isolation/process.ts';
import { processDirectives, programProblem } from '../plugin/isolation/process-options.ts';
import { createWorkerPlugin } from '../plugin/isolation/worker.ts';
import { loadPlugin } from '../plugin/loader.ts';
import { shutdownUnserved } from '../plugin/runtime.ts';
import type { LoadedConfig } from './load.ts';
import type { RouteConfig } from './schema.ts';

/**
 * Turns a configuration's routes into host routes: loads each plugin inline, starts it in a worker,
 * or wraps a command as a process plugin. All or nothing: if one route fails, the plugins already
 * started are shut down and the error (naming the file) is thrown. A `command` whose program does
 * not exist or is not executable is refused here (WSMOD_ERR_CONFIG), so `--check-config` and a start
 * catch it instead of the first client.
 */
export async function buildRoutes(loaded: LoadedConfig, log: Logger): Promise<RouteOptions[]> {
  checkPrograms(loaded);
  const built: RouteOptions[] = [];
  try {
    for (const route of loaded.config.routes) {
      built.push({ ...directives(route), plugin: await pluginFor(route, loaded.baseDir, log) });
    }
  } catch (err) {
    await shutdownUnserved(built.map((r) => r.plugin), log);
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
      ...(definedKeys(route, PROCESS_KEYS) as Partial<ProcessPluginOptions>),
      ...(route.options === undefined ? {} : { options: route.options }),
    });
  }
  const specifier = route.plugin!;
  if (route.isolation === 'worker') {
    return createWorkerPlugin({ specifier, baseDir, path: route.path, log, ...(route.options === undefined ? {} : { options: route.options }) });
  }
  return loadPlugin(specifier, { baseDir, options: route.options, context: { path: route.path, log } });
}

/**
 * Every `command` route's program must be there to run: a path relative to the configuration's
 * folder, or a bare name on PATH, as a shell would look it up.
 */
function checkPrograms(loaded: LoadedConfig): void {
  const problems: string[] = [];
  loaded.config.routes.forEach((route, i) => {
    if (route.command === undefined) return;
    const problem = programProblem(route.command, loaded.baseDir);
    if (problem !== undefined) problems.push(`  routes[${i}].command: expected a program that exists and is executable, found ${problem}`);
  });
  if (problems.length > 0) throw new WsmodError('WSMOD_ERR_CONFIG', `${loaded.file}:\n${problems.join('\n')}`);
}

/** The keys of a route that are directives of the host, and those of a process plugin. */
const DIRECTIVE_KEYS = Object.keys(routeDirectives(plainUnits)) as ReadonlyArray<keyof RouteConfig>;
const PROCESS_KEYS = Object.keys(processDirectives(plainUnits)) as ReadonlyArray<keyof RouteConfig>;

/** The host directives of a configured route (everything but how its plugin is made). */
function directives(route: RouteConfig): Omit<RouteOptions, 'plugin'> {
  return { path: route.path, ...definedKeys(route, DIRECTIVE_KEYS) } as Omit<RouteOptions, 'plugin'>;
}

/** The given keys of a route that are set (absent keys stay absent, so the defaults apply). */
function definedKeys(route: RouteConfig, keys: ReadonlyArray<keyof RouteConfig>): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => route[k] !== undefined).map((k) => [k, route[k]]));
}
