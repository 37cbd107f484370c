import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** Options of {@link init}. */
export interface InitOptions {
  /** The package name (npm rules, e.g. `my-plugin` or `@me/my-plugin`). Default: from the folder name. */
  readonly name?: string | undefined;
  /** Write into a folder that is not empty (template files overwrite files of the same name). */
  readonly force?: boolean | undefined;
  /**
   * The npm spec the project depends on wsmod by (`^0.2.0`, `file:../wsmod`, a git URL, ...). Default:
   * the running wsmod packed into the project as `vendor/wsmod-<version>.tgz`, so `npm install` works
   * on any machine, offline from wsmod's point of view, and installs exactly the wsmod that wrote it.
   */
  readonly wsmod?: string | undefined;
}

/** The package root (two levels above this file, in src/ and in dist/ alike). */
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The plugin project template; every file is copied with `{{name}}` replaced by the project name. */
export const TEMPLATE_DIR = join(packageRoot, 'templates', 'plugin');

/**
 * Template files stored under another name, because npm would drop or rename them in the published
 * package (it never ships a `.gitignore`).
 */
const RENAMED: Readonly<Record<string, string>> = { gitignore: '.gitignore' };

const NAME_PLACEHOLDER = /\{\{name\}\}/g;
const WSMOD_PLACEHOLDER = /\{\{wsmod\}\}/g;

/** Where the default wsmod tarball goes in the project (committed with it, so a clone installs). */
const VENDOR_DIR = 'vendor';

/** npm's rules for a package name: lower case, URL-safe, optionally scoped, at most 214 characters. */
const PACKAGE_NAME = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

/**
 * `wsmod init <dir>`: scaffolds a plugin project in `dir` (created when missing) from the template in
 * templates/plugin/: package.json, tsconfig.json, src/plugin.ts (a typed plugin factory),
 * wsmod.config.yaml, test/plugin.test.ts, README.md and .gitignore. Refuses a folder that exists and
 * is not empty unless `force`. Returns the absolute paths of the files written, in template order.
 */
export async function init(dir: string, options: InitOptions = {}): Promise<string[]> {
  const target = resolve(dir);
  const name = options.name ?? nameFromFolder(target);
  if (name.length > 214 || !PACKAGE_NAME.test(name)) {
    throw new Error(
      `wsmod init: "${name}" is not a valid npm package name (lower case letters, digits, "-", ".", "_", "~", optionally "@scope/"); choose one with --name`,
    );
  }
  if (options.wsmod !== undefined && options.wsmod.trim() === '') throw new Error('wsmod init: --wsmod needs an npm dependency spec, like ^0.2.0 or file:../wsmod');
  await checkTarget(target, options.force === true);

  const files = await templateFiles(TEMPLATE_DIR);
  if (files.length === 0) throw new Error(`wsmod init: the template folder ${TEMPLATE_DIR} is missing or empty`);
  const written: string[] = [];
  // The registry has no wsmod yet (a `^0.1.0` range 404s), so by default the project gets this very
  // copy of wsmod as a tarball: the same code and types as the wsmod that scaffolded it.
  let spec = options.wsmod;
  if (spec === undefined) {
    const tarball = await packSelf(join(target, VENDOR_DIR));
    written.push(tarball);
    spec = `file:${VENDOR_DIR}/${basename(tarball)}`;
  }
  for (const file of files) {
    const rel = relative(TEMPLATE_DIR, file);
    const parts = rel.split(sep).map((part) => RENAMED[part] ?? part);
    const out = join(target, ...parts);
    const text = (await readFile(file, 'utf8')).replace(NAME_PLACEHOLDER, name).replace(WSMOD_PLACEHOLDER, jsonString(spec));
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, text);
    written.push(out);
  }
  return written;
}

/** `value` as it goes between the quotes of a JSON string (the only template placing it is package.json). */
function jsonString(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

/**
 * `npm pack` of the running wsmod into `dir`; returns the tarball's path. Scripts are skipped: the
 * package's dist/ is what runs this code (or, from a checkout, what `npm run build` made), and an
 * installed copy has no compiler to rebuild it with.
 */
async function packSelf(dir: string): Promise<string> {
  if (!existsSync(join(packageRoot, 'dist', 'index.js'))) {
    throw new Error(
      `wsmod init: ${packageRoot} has no dist/ to pack (a checkout that was never built): run npm run build there, or pass --wsmod <spec> to depend on wsmod another way`,
    );
  }
  await mkdir(dir, { recursive: true });
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)('npm', ['pack', packageRoot, '--pack-destination', dir, '--ignore-scripts', '--json', '--loglevel=error'], {
      maxBuffer: 64 * 1024 * 1024,
    }));
  } catch (err) {
    const detail = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new Error(`wsmod init: npm pack of ${packageRoot} failed (${detail}); pass --wsmod <spec> to depend on wsmod another way`);
  }
  const packed = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string }>;
  const filename = packed[0]?.filename;
  if (filename === undefined) throw new Error(`wsmod init: npm pack of ${packageRoot} reported no tarball`);
  // npm names a scoped package's tarball scope-name-version.tgz; wsmod is unscoped, so this is it.
  return join(dir, basename(filename));
}

/** A package name from the folder name: lower case, other characters replaced by "-". */
function nameFromFolder(target: string): string {
  const name = basename(target)
    .toLowerCase()
    .replace(/[^a-z0-9-._~]+/g, '-')
    .replace(/^[._]+/, '')
    .replace(/^-+|-+$/g, '');
  return name === '' ? 'wsmod-plugin' : name.slice(0, 214);
}

/** The target must be missing, an empty folder, or (with force) any folder. */
async function checkTarget(target: string, force: boolean): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(target)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isDirectory) throw new Error(`wsmod init: ${target} exists and is not a directory`);
  const entries = await readdir(target);
  if (entries.length > 0 && !force) {
    const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? ', ...' : '');
    throw new Error(
      `wsmod init: ${target} is not empty (${shown}); choose a new or empty directory, or use --force to write the template files into it`,
    );
  }
}

/** Every file under `dir`, sorted, so the result is the same on every system. */
async function templateFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await templateFiles(p)));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}
