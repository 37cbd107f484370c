/**
 * `wsmod serve --check-config` type-checks the TypeScript plugins of a configuration: plugins run
 * through tsx, which strips types without checking them, so a type error would otherwise surface
 * only as wrong behaviour at run time. TypeScript is optional: it is resolved from the
 * configuration's folder (the user's project), else from wsmod's own dependencies, and imported
 * only here, only when there is a TypeScript plugin to check.
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as TS from 'typescript';
import { isFileSpecifier } from '../plugin/loader.ts';
import { requireFromWsmod, wsmodPackage } from '../plugin/resolve.ts';

/** The outcome of {@link typecheckPlugins}. */
export interface TypecheckResult {
  /** The TypeScript files checked (empty when there were none, or TypeScript is not installed). */
  readonly files: readonly string[];
  /** One line per error: `file:line:col: message`. */
  readonly errors: readonly string[];
  /** Set when there were TypeScript plugins but no TypeScript to check them with. */
  readonly skipped?: string;
}

const TS_FILE = /\.[cm]?tsx?$/;

/**
 * Type-checks the TypeScript plugin files among `specifiers` (relative to `baseDir`). A plugin's
 * nearest tsconfig.json is honoured; without one, strict defaults apply. `wsmod` and its subpaths
 * are typed by this running copy of wsmod, as they are resolved at run time.
 */
export async function typecheckPlugins(specifiers: readonly string[], baseDir: string): Promise<TypecheckResult> {
  const files = [...new Set(specifiers.filter((s) => isFileSpecifier(s) && TS_FILE.test(s)).map((s) => resolve(baseDir, s)))];
  if (files.length === 0) return { files, errors: [] };
  const found = findTypeScript(baseDir);
  if (found === undefined) {
    return { files: [], errors: [], skipped: 'TypeScript is not installed here (npm install -D typescript): TypeScript plugins were loaded but not type-checked' };
  }
  const ts = ((await import(pathToFileURL(found).href)) as { default: typeof TS }).default;
  const errors: string[] = [];
  // wsmod's own files are typed by their own build; report only what the plugin author wrote.
  const own = [join(wsmodPackage().root, 'src') + sep, join(wsmodPackage().root, 'dist') + sep];
  // One program per tsconfig (plugins in one project share theirs), one for files with none.
  const groups = new Map<string, string[]>();
  for (const file of files) {
    const config = ts.findConfigFile(dirname(file), (f) => ts.sys.fileExists(f)) ?? '';
    groups.set(config, [...(groups.get(config) ?? []), file]);
  }
  for (const [config, roots] of groups) {
    const program = ts.createProgram({ rootNames: roots, options: compilerOptions(ts, config, baseDir) });
    for (const d of ts.getPreEmitDiagnostics(program)) {
      if (d.category !== ts.DiagnosticCategory.Error) continue;
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
      if (d.file === undefined || d.start === undefined) {
        errors.push(`${config || baseDir}: ${text}`);
        continue;
      }
      if (own.some((dir) => d.file!.fileName.startsWith(dir))) continue;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      errors.push(`${d.file.fileName}:${line + 1}:${character + 1}: ${text}`);
    }
  }
  return { files, errors };
}

/** typescript's entry file: from the user's folder first, then from wsmod's own dependencies. */
function findTypeScript(baseDir: string): string | undefined {
  for (const req of [createRequire(join(baseDir, 'noop.js')), requireFromWsmod()]) {
    try {
      return req.resolve('typescript');
    } catch {
      // not installed there: try the next place
    }
  }
  return undefined;
}

function compilerOptions(ts: typeof TS, configFile: string, baseDir: string): TS.CompilerOptions {
  let options: TS.CompilerOptions;
  if (configFile !== '') {
    const read = ts.readConfigFile(configFile, (f) => ts.sys.readFile(f));
    options = ts.parseJsonConfigFileContent(read.config ?? {}, ts.sys, dirname(configFile), undefined, configFile).options;
  } else {
    // No tsconfig: what tsx runs without complaint, checked strictly.
    options = {
      strict: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.Preserve,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      allowImportingTsExtensions: true,
      esModuleInterop: true,
      skipLibCheck: true,
      ...nodeTypes(baseDir),
    };
  }
  return { ...options, noEmit: true, paths: { ...options.paths, ...wsmodTypes() } };
}

/** `types: ['node']` where @types/node can be found (the user's project, else wsmod's), so Buffer is typed. */
function nodeTypes(baseDir: string): TS.CompilerOptions {
  for (const req of [createRequire(join(baseDir, 'noop.js')), requireFromWsmod()]) {
    try {
      const pkg = req.resolve('@types/node/package.json');
      return { types: ['node'], typeRoots: [dirname(dirname(pkg))] };
    } catch {
      // not there
    }
  }
  return { types: [] };
}

/** `paths` entries that type `wsmod` and `wsmod/*` with this running copy's declarations (or sources). */
function wsmodTypes(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [specifier, url] of wsmodPackage().entries) {
    const file = fileURLToPath(url);
    out[specifier] = [file.endsWith('.js') ? file.replace(/\.js$/, '.d.ts') : file];
  }
  return out;
}
