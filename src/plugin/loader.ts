import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { WsmodError } from '../errors.ts';
import type { Plugin } from './api.ts';
import { validatePlugin } from './validate.ts';

/**
 * Loads an in-process plugin from a file (TypeScript loads directly, no build step) and checks it
 * against the plugin API. The module's default export is the plugin. Errors name the file.
 */
export async function loadPlugin(specifier: string, baseDir = process.cwd()): Promise<Plugin<unknown>> {
  const file = isAbsolute(specifier) ? specifier : resolve(baseDir, specifier);
  if (!existsSync(file)) throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${file}: no such file`);
  let mod: { default?: unknown };
  try {
    mod = /\.[cm]?tsx?$/.test(file)
      ? ((await tsImport(pathToFileURL(file).href, import.meta.url)) as { default?: unknown })
      : ((await import(pathToFileURL(file).href)) as { default?: unknown });
  } catch (err) {
    throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${file}: failed to load: ${(err as Error).message}`, { cause: err });
  }
  return validatePlugin(mod.default, file);
}
