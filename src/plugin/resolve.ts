/**
 * Makes `import … from 'wsmod'` (and `require('wsmod')`, and the `wsmod/*` subpaths) inside a plugin
 * resolve to the copy of wsmod that is running the plugin, wherever the plugin file lives: a folder
 * with no package.json, a project that depends on another wsmod version, or next to a global install.
 * The plugin then gets the host's own API objects (its `definePlugin`, `WsmodError`, apiVersion),
 * never a second copy, and never "Cannot find package 'wsmod'".
 *
 * Three pieces, because tsx (which loads plugin files, each load in a namespace of its own) would
 * otherwise resolve `wsmod` from the plugin's folder and tag its URL with the namespace:
 * - a `module.register` resolve hook, registered after each tsx namespace so that it runs first
 *   (this is what ES module plugins meet on Node 20);
 * - on Node 22.15+, where tsx's hooks run in-thread ahead of it, an in-thread
 *   (`module.registerHooks`) resolve hook and a load hook that answers a tagged URL of this copy
 *   with a facade re-exporting the host's own values;
 * - for CommonJS `require` (tsx compiles a `.ts` file outside a `"type": "module"` package to
 *   CommonJS), a narrow wrapper of `Module._load`: Node 20 has no synchronous hook for `require`,
 *   and the wrapper hands out the very module namespace the host uses, on every version.
 */
import { existsSync, readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The host's package: its root folder and the files its public specifiers name. */
export interface WsmodPackage {
  /** The folder holding wsmod's package.json. */
  readonly root: string;
  /** `wsmod`, `wsmod/client`, … → file URL of the module this running copy uses for it. */
  readonly entries: ReadonlyMap<string, string>;
}

let cached: WsmodPackage | undefined;

/**
 * Finds the running wsmod package from this file's own location (src/plugin/ under tsx, or
 * dist/plugin/ when built) and maps each public specifier to a file of this same copy. When running
 * from src/, a specifier whose `exports` target is `dist/x.js` maps to `src/x.ts`, so a plugin shares
 * the module instances of a host run from source (tests, development) too.
 */
export function wsmodPackage(): WsmodPackage {
  if (cached !== undefined) return cached;
  const here = fileURLToPath(import.meta.url);
  const fromSource = extname(here) === '.ts';
  const root = resolve(dirname(here), '..', '..');
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name?: string; exports?: unknown };
  const name = manifest.name ?? 'wsmod';
  const entries = new Map<string, string>();
  const exportsField = manifest.exports;
  const map: Record<string, unknown> =
    typeof exportsField === 'string' || isConditions(exportsField) ? { '.': exportsField } : ((exportsField ?? {}) as Record<string, unknown>);
  for (const [subpath, target] of Object.entries(map)) {
    if (subpath.includes('*') || subpath.endsWith('.json')) continue;
    const file = pickTarget(target);
    if (file === undefined) continue;
    let path = resolve(root, file);
    if (fromSource) {
      // dist/<x>.js is built from src/<x>.ts: use the source the running host itself was loaded from.
      const source = join(root, 'src', path.slice(join(root, 'dist').length).replace(/\.js$/, '.ts'));
      if (path.startsWith(join(root, 'dist') + '/') && existsSync(source)) path = source;
    }
    entries.set(subpath === '.' ? name : `${name}/${subpath.slice(2)}`, pathToFileURL(path).href);
  }
  cached = { root, entries };
  return cached;
}

/** True for an exports value that is a conditions object (`{ import, default }`) rather than a subpath map. */
function isConditions(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).every((k) => !k.startsWith('.'));
}

/** The ESM file an exports target names (`import`, then `default`, then `node`), or undefined. */
function pickTarget(target: unknown): string | undefined {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const found = pickTarget(t);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof target !== 'object' || target === null) return undefined;
  const conditions = target as Record<string, unknown>;
  for (const key of ['import', 'node', 'default']) {
    if (key in conditions) {
      const found = pickTarget(conditions[key]);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Module namespaces of this copy, by specifier, handed to `require()` (see {@link preloadWsmod}). */
const namespaces = new Map<string, unknown>();

/**
 * Imports this copy's root entry, so that a CommonJS `require('wsmod')` can be answered with the
 * very module namespace the host uses (a synchronous require cannot import an ES module on every
 * Node version; and from src/ it would compile a second copy). Subpaths are imported on first use
 * by an ES module plugin; a CommonJS plugin that requires a subpath before then gets it through
 * Node's require of ES modules (Node 20.19+, 22.12+).
 */
export async function preloadWsmod(): Promise<void> {
  const pkg = wsmodPackage();
  for (const [specifier, url] of pkg.entries) {
    if (specifier.includes('/') || namespaces.has(specifier)) continue;
    namespaces.set(specifier, await import(url));
  }
}

let commonJsInstalled = false;

/**
 * Installs the CommonJS side once per thread: `require('wsmod')` and `require('wsmod/<sub>')` from
 * any file get this copy. Node 20 has no synchronous resolve hook for `require` (module.registerHooks
 * came in 22.15), so this wraps `Module._load` for exactly these specifiers; every other request
 * passes through untouched.
 */
function installCommonJsResolution(): void {
  if (commonJsInstalled) return;
  commonJsInstalled = true;
  const pkg = wsmodPackage();
  const loader = Module as unknown as { _load(request: string, parent: unknown, isMain: boolean): unknown };
  const original = loader._load;
  loader._load = function loadWsmod(this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
    const ns = namespaces.get(request);
    if (ns !== undefined) return ns;
    const url = pkg.entries.get(request);
    // An unpreloaded subpath: load this copy's file (require of an ES module) instead of searching node_modules.
    if (url !== undefined) return original.call(this, fileURLToPath(url), parent, isMain);
    return original.call(this, request, parent, isMain);
  };
}

/**
 * The ES module resolve hook, as source: it runs on Node's hooks thread, which has no TypeScript
 * loader, so it travels as a data: URL of plain JavaScript rather than as a file of this package.
 */
const RESOLVE_HOOK = `
let entries = new Map();
export function initialize(data) { entries = new Map(Object.entries(data.entries)); }
export function resolve(specifier, context, next) {
  const url = entries.get(specifier);
  return url === undefined ? next(specifier, context) : { url, shortCircuit: true };
}
`;

type HookContext = { conditions?: readonly string[]; parentURL?: string | undefined; format?: string | null | undefined };
type SyncResolve = (specifier: string, context: HookContext, next: (specifier: string, context?: HookContext) => { url: string }) => {
  url: string;
  shortCircuit?: boolean;
};
type SyncLoad = (
  url: string,
  context: HookContext,
  next: (url: string, context?: HookContext) => { format?: string | null | undefined; source?: unknown },
) => { format?: string | null | undefined; source?: unknown; shortCircuit?: boolean };
type RegisterHooks = (hooks: { resolve: SyncResolve; load: SyncLoad }) => unknown;

/**
 * Registers, after each tsx namespace the loader creates, the `module.register` resolve hook that
 * maps `wsmod` and `wsmod/*` to this copy. Hooks registered later run first, so on Node 20 ours
 * answers before tsx could tag wsmod's URL with the plugin's namespace (or map it through the
 * working directory's tsconfig `paths`) and evaluate another copy of the API. (Where tsx's hooks
 * run in-thread, {@link installWsmodResolution} covers what this cannot reach; measured on Node
 * 24, tsx's CommonJS namespaces also need this hook chain present, so it is registered there too.)
 */
export function registerWsmodResolution(): void {
  Module.register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`, { data: { entries: Object.fromEntries(wsmodPackage().entries) } });
}

let installed = false;

/**
 * Installs, once per thread and before tsx registers anything, what does not depend on the order of
 * tsx's namespaces: the `require` wrapper ({@link installCommonJsResolution}) and, where Node has
 * `module.registerHooks` (22.15+), one in-thread hook pair. tsx registers its namespace hooks
 * in-thread there too, ahead of anything registered with `module.register`, and a hook placed in
 * front of them upsets tsx's CommonJS handling; so ours sits behind them: resolve maps the
 * specifiers, and load answers a namespace-tagged URL of this copy's entry with a facade whose
 * exports are the host's own values (classes, functions, constants), from the module the host
 * already evaluated. Safe to call more than once; the loader calls it on every load.
 */
export function installWsmodResolution(): void {
  installCommonJsResolution();
  if (installed) return;
  installed = true;
  const registerHooks = (Module as unknown as { registerHooks?: RegisterHooks }).registerHooks;
  if (typeof registerHooks !== 'function') return;
  const pkg = wsmodPackage();
  const byUrl = new Map([...pkg.entries].map(([specifier, url]) => [url, specifier]));
  const hostRequire = createRequire(import.meta.url);
  const registry = hostModules();
  registerHooks.call(Module, {
    resolve(specifier, context, next) {
      const url = pkg.entries.get(specifier);
      return url === undefined ? next(specifier, context) : { url, shortCircuit: true };
    },
    load(url, context, next) {
      const query = url.indexOf('?');
      const bare = query === -1 ? url : url.slice(0, query);
      const specifier = query === -1 ? undefined : byUrl.get(bare);
      if (specifier === undefined) return next(url, context);
      let ns = namespaces.get(specifier);
      // require() of this copy's ES module returns the instance the host's import made (Node 22.12+).
      if (ns === undefined) namespaces.set(specifier, (ns = hostRequire(fileURLToPath(bare)) as unknown));
      registry.set(bare, ns);
      return { format: 'module', source: facadeSource(bare, ns), shortCircuit: true };
    },
  });
}

/** The host's module namespaces by URL, where a facade module (same thread) can read them. */
function hostModules(): Map<string, unknown> {
  const key = Symbol.for('wsmod.hostModules');
  const g = globalThis as unknown as Record<symbol, Map<string, unknown> | undefined>;
  return (g[key] ??= new Map());
}

/** An ES module that re-exports, by value, every export of the host module at `url`. */
function facadeSource(url: string, ns: unknown): string {
  const lines = [`const m = globalThis[Symbol.for('wsmod.hostModules')].get(${JSON.stringify(url)});`];
  for (const name of Object.keys(ns as object)) {
    if (name === 'default') lines.push('export default m.default;');
    else if (/^[A-Za-z_$][\w$]*$/.test(name)) lines.push(`export const ${name} = m[${JSON.stringify(name)}];`);
  }
  return lines.join('\n');
}

/** `createRequire` rooted at this copy's package, for finding its own dependencies (typescript…). */
export function requireFromWsmod(): NodeJS.Require {
  return createRequire(join(wsmodPackage().root, 'package.json'));
}
