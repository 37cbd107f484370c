/**
 * Makes `import … from 'wsmod'` (and `require('wsmod')`, and the `wsmod/*` subpaths) inside a plugin
 * resolve to the copy of wsmod that is running the plugin, wherever the plugin file lives: a folder
 * with no package.json, a project that depends on another wsmod version, or next to a global install.
 * The plugin then gets the host's own API objects (its `definePlugin`, `WsmodError`, apiVersion),
 * never a second copy, and never "Cannot find package 'wsmod'".
 *
 * ESM imports go through a `module.register` resolve hook; CommonJS `require`
 * (tsx compiles a `.ts` file outside a `"type": "module"` package to CommonJS) goes through
 * `module.registerHooks` where Node has it (22.15+) and otherwise through a narrow wrapper of
 * `Module._load` that answers only these specifiers.
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
 * any file get this copy. Uses `module.registerHooks` (Node 22.15+) when present, else wraps
 * `Module._load` for exactly these specifiers; every other request passes through untouched.
 */
export function installCommonJsResolution(): void {
  if (commonJsInstalled) return;
  commonJsInstalled = true;
  const pkg = wsmodPackage();
  const loader = Module as unknown as {
    _load(request: string, parent: unknown, isMain: boolean): unknown;
    registerHooks?: (hooks: { resolve?: CjsResolveHook }) => unknown;
  };
  const patched = loader._load;
  loader._load = function loadWsmod(this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
    const ns = namespaces.get(request);
    if (ns !== undefined) return ns;
    const url = pkg.entries.get(request);
    // An unpreloaded subpath: load this copy's file (require of an ES module) instead of searching node_modules.
    if (url !== undefined) return patched.call(this, fileURLToPath(url), parent, isMain);
    return patched.call(this, request, parent, isMain);
  };
  // Keep require.resolve('wsmod') consistent with what require('wsmod') returns.
  if (typeof loader.registerHooks === 'function') {
    loader.registerHooks({
      resolve(specifier, context, next) {
        const url = pkg.entries.get(specifier);
        return url === undefined ? next(specifier, context) : { url, shortCircuit: true };
      },
    });
  }
}

type CjsResolveHook = (
  specifier: string,
  context: { conditions?: readonly string[]; parentURL?: string | undefined },
  next: (specifier: string, context?: unknown) => { url: string },
) => { url: string; shortCircuit?: boolean };

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

/**
 * Registers the ES module resolve hook in this thread. Hooks registered later run first, so the
 * loader calls this after each tsx namespace it registers: tsx would otherwise tag wsmod's URL with
 * the plugin's namespace and evaluate a fresh copy of the whole API for every plugin load.
 */
export function registerEsmResolution(): void {
  const entries = Object.fromEntries(wsmodPackage().entries);
  Module.register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`, { data: { entries } });
}

/** `createRequire` rooted at this copy's package, for finding its own dependencies (typescript…). */
export function requireFromWsmod(): NodeJS.Require {
  return createRequire(join(wsmodPackage().root, 'package.json'));
}
