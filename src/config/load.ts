import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { WsmodError } from '../errors.ts';
import { checkOptions } from '../option-schema.ts';
import { importFresh } from '../plugin/loader.ts';
import { type Config, configSchema } from './schema.ts';

/** File names `wsmod serve` looks for, in this order, when no path is given. */
export const CONFIG_FILES = [
  'wsmod.config.yaml',
  'wsmod.config.yml',
  'wsmod.config.json',
  'wsmod.config.ts',
  'wsmod.config.mjs',
  'wsmod.config.js',
] as const;

/** A loaded configuration and where it came from (relative paths in it resolve from `baseDir`). */
export interface LoadedConfig {
  readonly file: string;
  readonly baseDir: string;
  readonly config: Config;
}

/** The first configuration file found in `dir`, or undefined. */
export function findConfig(dir: string): string | undefined {
  for (const name of CONFIG_FILES) {
    const file = join(dir, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/**
 * Reads and validates a configuration file (YAML, JSON, or a JS/TS module whose default export is the
 * configuration object). Throws WSMOD_ERR_CONFIG listing every problem as
 * `file:` and one line per problem, `key.path: expected …, found …; what to write` (the same
 * wording createHost and createProcessPlugin use for the same value).
 */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  const path = resolve(file);
  if (!existsSync(path)) throw new WsmodError('WSMOD_ERR_CONFIG', `${path}: no such file`);
  const raw = await readRaw(path);
  const checked = checkOptions(configSchema, raw);
  if (!checked.ok) throw new WsmodError('WSMOD_ERR_CONFIG', `${path}:\n${checked.problems.map((p) => `  ${p}`).join('\n')}`);
  return { file: path, baseDir: dirname(path), config: checked.value };
}

async function readRaw(path: string): Promise<unknown> {
  const ext = extname(path);
  try {
    if (ext === '.yaml' || ext === '.yml') return parseYaml(readFileSync(path, 'utf8'));
    if (ext === '.json') return JSON.parse(readFileSync(path, 'utf8'));
    if (['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'].includes(ext)) {
      const mod = (await importFresh(pathToFileURL(path).href, pathToFileURL(`${dirname(path)}/`).href)) as { default?: unknown };
      let value = mod.default;
      if (typeof value === 'object' && value !== null && 'default' in value && !('routes' in value)) {
        value = (value as { default: unknown }).default;
      }
      return typeof value === 'function' ? await (value as () => unknown)() : value;
    }
  } catch (err) {
    throw new WsmodError('WSMOD_ERR_CONFIG', `${path}: cannot be read: ${(err as Error).message}`, { cause: err });
  }
  throw new WsmodError('WSMOD_ERR_CONFIG', `${basename(path)}: unknown configuration format (use .yaml, .json, .js or .ts)`);
}
