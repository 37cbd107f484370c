/**
 * `wsmod/config`: configuration files as `wsmod serve` reads them (finding, loading and validating
 * one, and turning its routes into plugins), and the host's default for every option.
 */
export { CONFIG_FILES, findConfig, loadConfig, type LoadedConfig } from './load.ts';
export { buildRoutes } from './routes.ts';
export type { Config, ListenConfig, RouteConfig } from './schema.ts';
export { DEFAULTS } from '../host/options.ts';
