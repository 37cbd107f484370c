import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { WsmodError } from '../errors.ts';
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
 * `file: key.path: what was expected, found what`.
 */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  const path = resolve(file);
  if (!existsSync(path)) throw new WsmodError('WSMOD_ERR_CONFIG', `${path}: no such file`);
  const raw = await readRaw(path);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new WsmodError('WSMOD_ERR_CONFIG', `${path}:\n${formatIssues(result.error.issues, raw)}`);
  }
  return { file: path, baseDir: dirname(path), config: result.data };
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

/** One line per issue: the key path, what was expected, and what was found there. */
function formatIssues(issues: readonly z.core.$ZodIssue[], raw: unknown): string {
  return issues
    .flatMap((issue) => explainUnion(issue))
    .map((issue) => {
      const at = issue.path.length === 0 ? '(top level)' : issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      const found = valueAt(raw, issue.path);
      const shown = issue.code === 'unrecognized_keys' ? '' : `, found ${describe(found)}`;
      return `  ${at}: ${message}${shown}`;
    })
    .join('\n');
}

/**
 * A value matching none of a union's forms ("8080", "host:port" or an object, for `listen`) is best
 * explained by the form it came closest to: the alternative whose problems lie deepest in the value.
 */
function explainUnion(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
  const depth = (list: readonly z.core.$ZodIssue[]) => Math.max(0, ...list.map((i) => i.path.length));
  const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0]!;
  if (depth(best) === 0) return [issue];
  return best.flatMap((inner) => explainUnion({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue));
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const json = JSON.stringify(v);
  return json === undefined ? String(v) : json.length > 60 ? `${json.slice(0, 57)}...` : json;
}
