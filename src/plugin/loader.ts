import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import Module from 'node:module';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WsmodError } from '../errors.ts';
import type { Plugin, PluginContext } from './api.ts';
import { installWsmodResolution, preloadWsmod, registerWsmodResolution, wsmodPackage } from './resolve.ts';
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
 * Loads an in-process plugin from a file (TypeScript or JavaScript, ES module or CommonJS, no build
 * step) or an installed package, and checks it against the plugin API. The module's default export
 * is a plugin, or a plugin factory called with the route's options. `import 'wsmod'` inside the
 * plugin gets this host's own copy of the API (see ./resolve.ts). Each load evaluates the module and
 * the files it imports afresh (see {@link importFresh}), so a reload picks up edited plugin files.
 *
 * Throws `WSMOD_ERR_PLUGIN_LOAD` when the file cannot be loaded (missing, a syntax error, an import
 * that is not found, top-level code that throws) and `WSMOD_ERR_PLUGIN_INVALID` when it loads but
 * does not export a plugin; each message names the file, what was found and what to write instead.
 */
export async function loadPlugin(specifier: string, options: LoadPluginOptions = {}): Promise<Plugin<unknown>> {
  const baseDir = options.baseDir ?? process.cwd();
  const file = isFileSpecifier(specifier) ? resolve(baseDir, specifier) : undefined;
  const where = file ?? specifier;
  if (file !== undefined && !existsSync(file)) {
    throw new WsmodError(
      'WSMOD_ERR_PLUGIN_LOAD',
      `${file}: no such file (the plugin path "${specifier}" is relative to ${baseDir}, ${options.baseDir === undefined ? 'the working directory' : "the configuration file's folder"}): correct the path or create the file`,
    );
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await importFresh(file === undefined ? specifier : pathToFileURL(file).href, pathToFileURL(`${baseDir}/`).href)) as Record<string, unknown>;
  } catch (err) {
    throw new WsmodError('WSMOD_ERR_PLUGIN_LOAD', explainLoadFailure(where, file, err), { cause: err });
  }
  let exported = defaultExport(mod, where);
  if (typeof exported === 'function') {
    if (isClass(exported)) {
      const name = exported.name || 'Plugin';
      throw new WsmodError(
        'WSMOD_ERR_PLUGIN_INVALID',
        `${where}: the default export is the class ${name}, not a plugin: export an instance (\`export default new ${name}()\`) or a plain object made with definePlugin (\`export default definePlugin({ name, apiVersion: 1, onMessage… })\`)`,
      );
    }
    const context = options.context ?? { path: '', log: silentLog };
    try {
      exported = await (exported as (o: unknown, c: PluginContext) => unknown)(options.options, context);
    } catch (err) {
      throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${where}: the plugin factory refused its options: ${(err as Error).message}`, {
        cause: err,
      });
    }
  } else if (options.options !== undefined) {
    throw new WsmodError(
      'WSMOD_ERR_PLUGIN_INVALID',
      `${where}: options were given but the module exports a plugin, not a plugin factory: export \`definePluginFactory((options) => definePlugin({…}))\` to receive them, or remove the route's options`,
    );
  }
  return validatePlugin(exported, where);
}

/**
 * The module's default export, unwrapping the CommonJS forms: a TypeScript or ESM file compiled to
 * CommonJS (tsx does so outside a `"type": "module"` package) arrives as `{ default: exports }` with
 * `exports.__esModule` set; `module.exports = plugin` arrives as the plugin itself. A module with no
 * default export is refused naming what it does export, so `export const plugin = …` gets a fix.
 */
function defaultExport(mod: Record<string, unknown>, where: string): unknown {
  let exports = mod;
  let value = mod['default'];
  if (isRecord(value) && (value['__esModule'] === true || ('default' in value && !('apiVersion' in value)))) {
    exports = value;
    value = value['default'];
  }
  if (value === undefined) {
    throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${where}: no default export; ${exportList(exports)}: write \`export default …\` (CommonJS: \`module.exports = …\`)`);
  }
  // `exports.plugin = …` in CommonJS: module.exports is a bag of named exports, one of them the plugin.
  // Node lists those names on the namespace too, which tells it from `export default { typo() {} }`.
  if (isRecord(value) && !('apiVersion' in value) && !('onMessage' in value) && !('name' in value)) {
    const named = Object.keys(mod).filter((k) => k !== 'default' && k !== 'module.exports' && k in value && mod[k] === value[k]);
    if (named.length > 0) {
      throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${where}: no default export; ${exportList(value)}: write \`module.exports = …\` (ES module: \`export default …\`)`);
    }
  }
  return value;
}

function exportList(exports: Record<string, unknown>): string {
  const names = Object.keys(exports).filter((k) => k !== 'default' && k !== '__esModule' && k !== 'module.exports');
  if (names.length === 0) return 'it exports nothing';
  return `it exports ${names.map((n) => `\`${n}\``).join(', ')}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isClass(fn: unknown): fn is abstract new (...args: never[]) => unknown {
  return typeof fn === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/**
 * One message for a module that failed to load: the file, the cause, and the likely fix. Syntax
 * errors get `file:line:col`: esbuild (TypeScript) reports it in its message; Node keeps the
 * location of a JavaScript syntax error out of the error object, so `node --check` supplies it.
 */
function explainLoadFailure(where: string, file: string | undefined, err: unknown): string {
  const e = err as { message?: unknown; code?: unknown; name?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  const transform = /^Transform failed with \d+ errors?:\n(.+?): ERROR: (.+)$/m.exec(message);
  if (transform !== null) return `${transform[1]}: syntax error: ${transform[2]}: fix the code at that line`;
  if (e.name === 'SyntaxError') {
    const located = file === undefined ? undefined : syntaxLocation(file);
    return `${located ?? where}: syntax error: ${message}: fix the code${located === undefined ? '' : ' at that line'}`;
  }
  if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') {
    const missing = /Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1];
    const from = /imported from (\S+)/.exec(message)?.[1] ?? /Require stack:\n- ([^\n?]+)/.exec(message)?.[1];
    if (missing !== undefined) {
      const fix = missing.startsWith('.') || isAbsolute(missing)
        ? 'correct the import path (relative to the importing file)'
        : `install it where the plugin can find it (\`npm install ${packageName(missing)}\` in the plugin's folder) or correct the name`;
      return `${where}: a module it imports was not found: '${missing}'${from !== undefined && from !== file ? ` (imported from ${from})` : ''}: ${fix}`;
    }
  }
  if (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE') {
    return `${where}: failed to load: ${message}: use \`import\` instead of \`require\`, or name the file .mjs/.mts`;
  }
  return `${where}: its top-level code threw while loading: ${message}: fix the module's top-level code (the cause has the stack)`;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** `file:line` of a JavaScript syntax error, from `node --check`, or undefined. */
function syntaxLocation(file: string): string | undefined {
  if (!/\.[cm]?jsx?$/.test(file)) return undefined;
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  const line = new RegExp(`^(?:file://)?${escapeRegExp(file)}:(\\d+)$`, 'm').exec(check.stderr ?? '')?.[1];
  return line === undefined ? undefined : `${file}:${line}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

let generation = 0;

/**
 * Imports a module (TypeScript or JavaScript) in a tsx namespace of its own: the module and every
 * file it imports are evaluated anew, not taken from an earlier load's cache. The namespace stays
 * registered so the module's own later dynamic imports keep working.
 *
 * tsx is imported here, on first use, not when wsmod is imported: a host whose plugins are objects
 * never loads it, and with worker isolation only the worker threads do. It serves JavaScript plugins too, because its namespaces are
 * what make CommonJS and ES module files evaluate afresh on a reload.
 */
export async function importFresh(specifier: string, parentURL: string): Promise<unknown> {
  const { register } = await import('tsx/esm/api');
  installWsmodResolution();
  await preloadWsmod();
  forgetCommonJsFiles();
  const api = register({ namespace: `wsmod-${process.pid}-${++generation}` });
  // After tsx's namespace, so that it runs first and hands out the host's own wsmod, untagged.
  registerWsmodResolution();
  return api.import(specifier, parentURL);
}

/**
 * Drops the user's CommonJS files from require's cache, so that this load evaluates them anew: tsx's
 * namespace makes ES module imports fresh, but a `require` (and a `.ts` file that tsx compiled to
 * CommonJS, in a folder without `"type": "module"`) is answered from the cache. Packages under
 * node_modules and wsmod's own files stay cached. Modules already loaded keep the objects they hold.
 */
function forgetCommonJsFiles(): void {
  const { root } = wsmodPackage();
  const keep = [`${sep}node_modules${sep}`];
  const own = [join(root, 'src') + sep, join(root, 'dist') + sep];
  const cache = Module.createRequire(import.meta.url).cache;
  for (const key of Object.keys(cache)) {
    if (keep.some((part) => key.includes(part)) || own.some((dir) => key.startsWith(dir))) continue;
    delete cache[key];
  }
}

const silentLog: PluginContext['log'] = { debug() {}, info() {}, warn() {}, error() {} };
