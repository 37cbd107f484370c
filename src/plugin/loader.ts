import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';
import { WsmodError } from '../errors.ts';
import type { Plugin, PluginContext } from './api.ts';
import { validatePlugin } from './validate.ts';

/** Where a plugin comes from and how it is set up. */
export interface LoadPluginOptions {
  /** Directory relative specifiers are resolved from (the config file's folder). Default: cwd. */
  readonly baseDir?: string;
  /** The route's `options`, passed to a plugin factory. */
  readonly options?: unknown;
  /** Passed to a plugin factory. */
  readonly context?: PluginContext;
}

/** A specifier that names a file (relative or absolute path) rather than a package. */
export function isFileSpecifier(specifier: string): boolean {
  return specifier.startsWith('.') || isAbsolute(specifier) || /\.[cm]?[jt]sx?$/.test(specifier);
}

/**
 * Loads an in-process plugin from a file (TypeScript or JavaScript, no build step) or an installed
 * package, and checks it against the plugin API. The module's default export is a plugin, or a
 * plugin factory called with the route's options. Each load evaluates the module and the files it
 * imports afresh (see {@link importFresh}), so a reload picks up edited plugin files. Errors name the file.
 */
export async function loadPlugin(specifier: string, options: LoadPluginOptions = {}): Promise<Plugin<unknown>> {
  const baseDir = options.baseDir ?? process.cwd();
  let target = specifier;
  if (isFileSpecifier(specifier)) {
    target = isAbsolute(specifier) ? specifier : resolve(baseDir, specifier);
    if (!existsSync(target)) throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${target}: no such file`);
    target = pathToFileURL(target).href;
  }
  const where = isFileSpecifier(specifier) ? resolve(baseDir, specifier) : specifier;
  let mod: { default?: unknown };
  try {
    mod = (await importFresh(target, pathToFileURL(`${baseDir}/`).href)) as { default?: unknown };
  } catch (err) {
    throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${where}: failed to load: ${(err as Error).message}`, { cause: err });
  }
  let exported = mod.default;
  // A module compiled as CommonJS (no "type": "module" nearby) arrives wrapped once more.
  if (typeof exported === 'object' && exported !== null && 'default' in exported && !('apiVersion' in exported)) {
    exported = (exported as { default: unknown }).default;
  }
  if (typeof exported === 'function') {
    const context = options.context ?? { path: '', log: silentLog };
    try {
      exported = await (exported as (o: unknown, c: PluginContext) => unknown)(options.options, context);
    } catch (err) {
      throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${where}: the plugin factory refused its options: ${(err as Error).message}`, {
        cause: err,
      });
    }
  } else if (options.options !== undefined) {
    throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${where}: options were given but the module exports a plugin, not a plugin factory`);
  }
  return validatePlugin(exported, where);
}

let generation = 0;

/**
 * Imports a module (TypeScript or JavaScript) in a tsx namespace of its own: the module and every
 * file it imports are evaluated anew, not taken from an earlier load's cache. The namespace stays
 * registered so the module's own later dynamic imports keep working.
 */
export function importFresh(specifier: string, parentURL: string): Promise<unknown> {
  const api = register({ namespace: `wsmod-${process.pid}-${++generation}` });
  return api.import(specifier, parentURL);
}

const silentLog: PluginContext['log'] = { debug() {}, info() {}, warn() {}, error() {} };
