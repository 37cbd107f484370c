// `wsmod init`: the scaffold's files, the refusals, and the scaffold run for real as a user would:
// `wsmod init` (the built binary) into a fresh folder, a plain `npm install` there (wsmod from the
// tarball init packed into vendor/, the rest from the registry), its own tests, its type check, and
// its installed `wsmod serve` reading its wsmod.config.yaml.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { TEMPLATE_DIR, init } from '../src/cli/init.ts';
import { connect } from '../src/client/client.ts';
import { childEnv, runCommand as run } from './command.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'wsmod.js');

/** What init writes from the template, relative to the project folder. */
const FILES = ['.gitignore', 'README.md', 'package.json', 'src/plugin.ts', 'test/plugin.test.ts', 'tsconfig.json', 'wsmod.config.yaml'];

/** The running wsmod's version: the default scaffold carries it as vendor/wsmod-<version>.tgz. */
const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const TARBALL = `vendor/wsmod-${VERSION}.tgz`;

/** A registry spec, so tests about the template files need not pack wsmod each time. */
const SPEC = { wsmod: '^0.1.0' } as const;

const CONFIG = `listen:
  - host: 127.0.0.1
    port: 8080
routes:
  - path: /hello
    plugin: ./src/plugin.ts
    options:
      greeting: Hello
`;

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'wsmod-init-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The files under `dir`, relative and sorted (node_modules left out). */
async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p, base)));
    else out.push(relative(base, p));
  }
  return out.sort();
}

/** Builds dist/ when it is missing or older than src/ (`npm test` builds first, so then it is current). */
async function ensureBuilt(): Promise<void> {
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return Math.max(m, newest(p));
      return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? Math.max(m, statSync(p).mtimeMs) : m;
    }, 0);
  const built = join(ROOT, 'dist', 'index.js');
  if (existsSync(built) && existsSync(CLI) && statSync(built).mtimeMs >= newest(join(ROOT, 'src'))) return;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await run(process.execPath, [tsc, '-p', 'tsconfig.build.json'], ROOT);
  assert.equal(r.status, 0, `building dist/ failed:\n${r.output}`);
}

describe('wsmod init: the files', () => {
  test('writes the template with the project name and this wsmod packed into vendor/, and returns the files written', { timeout: 120_000 }, async () => {
    await ensureBuilt();
    const dir = join(tmp, 'My Greeter');
    const written = await init(dir, {});
    assert.deepEqual(written.map((f) => relative(dir, f)).sort(), [...FILES, TARBALL].sort());
    assert.deepEqual(await listFiles(dir), [...FILES, TARBALL].sort());
    const packed = execFileSync('tar', ['-tzf', join(dir, TARBALL)], { encoding: 'utf8' }).split('\n');
    for (const f of ['package/package.json', 'package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/cli/wsmod.js']) {
      assert.ok(packed.includes(f), `${f} is not in the vendored tarball`);
    }

    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<string, any>;
    assert.equal(pkg['name'], 'my-greeter', 'the name comes from the folder, made a valid package name');
    assert.equal(pkg['type'], 'module');
    assert.equal(pkg['scripts']['start'], 'wsmod serve');
    assert.equal(pkg['scripts']['test'], 'node --import tsx --test test/*.test.ts');
    assert.deepEqual(pkg['dependencies'], { wsmod: `file:${TARBALL}` }, 'a path inside the project: the folder can move, and installs offline from wsmod');
    assert.deepEqual(pkg['allowScripts'], { esbuild: false }, "esbuild's optional postinstall is declined, so npm install does not warn");

    const tsconfig = JSON.parse(await readFile(join(dir, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    assert.equal(tsconfig.compilerOptions['strict'], true);
    assert.equal(tsconfig.compilerOptions['module'], 'NodeNext');
    assert.equal(tsconfig.compilerOptions['noEmit'], true);

    const config = await readFile(join(dir, 'wsmod.config.yaml'), 'utf8');
    assert.equal(config, CONFIG);
    assert.deepEqual(parseYaml(config), {
      listen: [{ host: '127.0.0.1', port: 8080 }],
      routes: [{ path: '/hello', plugin: './src/plugin.ts', options: { greeting: 'Hello' } }],
    });

    const plugin = await readFile(join(dir, 'src', 'plugin.ts'), 'utf8');
    assert.match(plugin, /import \{[^}]*definePluginFactory[^}]*\} from 'wsmod'/);
    assert.match(plugin, /name: 'my-greeter'/);
    const testFile = await readFile(join(dir, 'test', 'plugin.test.ts'), 'utf8');
    assert.match(testFile, /from 'wsmod'/);
    assert.match(testFile, /createHost/);
    assert.match(testFile, /listen\(0, '127\.0\.0\.1'\)/);
    assert.match(testFile, /loadPlugin\('\.\/src\/plugin\.ts', \{ baseDir, options/);
    assert.match(await readFile(join(dir, '.gitignore'), 'utf8'), /^node_modules\/$/m);
    assert.match(await readFile(join(dir, 'README.md'), 'utf8'), /^# my-greeter$/m);
    for (const f of FILES) assert.doesNotMatch(await readFile(join(dir, f), 'utf8'), /\{\{/, `${f}: a placeholder was left`);
  });

  test('--name sets the package and plugin name; an invalid name is refused', async () => {
    const dir = join(tmp, 'named');
    await init(dir, { name: '@me/greeter', ...SPEC });
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name: string };
    assert.equal(pkg.name, '@me/greeter');
    assert.match(await readFile(join(dir, 'src', 'plugin.ts'), 'utf8'), /name: '@me\/greeter'/);
    await assert.rejects(init(join(tmp, 'bad-name'), { name: 'Not A Name', ...SPEC }), /not a valid npm package name/);
    assert.equal(existsSync(join(tmp, 'bad-name')), false, 'nothing is written when the name is refused');
  });

  test('refuses a directory that is not empty unless force; an empty one is fine', async () => {
    const dir = join(tmp, 'busy');
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'mine\n');
    await assert.rejects(init(dir, SPEC), (err: unknown) => err instanceof Error && /is not empty/.test(err.message) && /force/.test(err.message));
    assert.deepEqual(await listFiles(dir), ['notes.txt'], 'nothing written on refusal');

    const written = await init(dir, { force: true, ...SPEC });
    assert.equal(written.length, FILES.length);
    assert.deepEqual(await listFiles(dir), [...FILES, 'notes.txt'].sort());
    assert.equal(await readFile(join(dir, 'notes.txt'), 'utf8'), 'mine\n', 'other files are left alone');

    const empty = join(tmp, 'empty');
    await mkdir(empty);
    assert.equal((await init(empty, SPEC)).length, FILES.length);

    const file = join(tmp, 'a-file');
    await writeFile(file, '');
    await assert.rejects(init(file, { force: true, ...SPEC }), /not a directory/);
  });

  test('--wsmod sets the dependency spec as given (escaped for JSON), and packs nothing', async () => {
    for (const spec of ['^0.2.0', 'file:../wsmod', 'file:../a "quoted" \\ dir']) {
      const dir = await mkdtemp(join(tmp, 'spec-'));
      await init(dir, { wsmod: spec });
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      assert.deepEqual(pkg.dependencies, { wsmod: spec });
      assert.equal(existsSync(join(dir, 'vendor')), false);
    }
    await assert.rejects(init(join(tmp, 'no-spec'), { wsmod: ' ' }), /--wsmod needs an npm dependency spec/);
  });

  test('the templates are published: "templates" is in package.json files, and npm packs every template file', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    assert.ok(pkg.files.includes('templates'));
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'], ROOT);
    assert.equal(r.status, 0, r.output);
    const packed = new Set((JSON.parse(r.output.slice(r.output.indexOf('['))) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
    for (const f of await listFiles(TEMPLATE_DIR)) assert.ok(packed.has(`templates/plugin/${f}`), `templates/plugin/${f} is not in the package`);
  });
});

describe('wsmod init: the scaffold runs against this checkout', () => {
  let dir: string;

  let installOutput: string;

  before(async () => {
    await ensureBuilt();
    const fresh = await mkdtemp(join(tmp, 'fresh-'));
    dir = join(fresh, 'hello-plugin');
    const scaffold = await run(process.execPath, [CLI, 'init', dir], fresh);
    assert.equal(scaffold.status, 0, `wsmod init failed:\n${scaffold.output}`);
    assert.match(scaffold.output, /next: cd .* && npm install/);
    // The user's command, as it is: wsmod from vendor/, the dev tools from the registry.
    const r = await run('npm', ['install'], dir);
    installOutput = r.output;
    assert.equal(r.status, 0, `npm install failed:\n${r.output}`);
    assert.ok(existsSync(join(dir, 'node_modules', 'wsmod', 'dist', 'index.js')), 'wsmod is installed');
  });

  test('npm install printed no warning (no install-script notice, no engine mismatch)', () => {
    assert.doesNotMatch(installOutput, /npm warn/i, installOutput);
  });

  test("the scaffold's own tests pass (npm test)", { timeout: 180_000 }, async () => {
    const r = await run('npm', ['test'], dir);
    assert.equal(r.status, 0, `npm test in the scaffold failed:\n${r.output}`);
    // node:test's summary: `# pass 3` (TAP, Node 20's default when piped) or `ℹ pass 3` (spec, Node 24's).
    assert.match(r.output, /^(?:#|ℹ) pass [1-9]/m);
    assert.match(r.output, /^(?:#|ℹ) fail 0$/m);
  });

  test('the scaffold type-checks against the published types (npm run typecheck)', { timeout: 180_000 }, async () => {
    const r = await run('npm', ['run', 'typecheck'], dir);
    assert.equal(r.status, 0, `tsc in the scaffold failed:\n${r.output}`);
  });

  test('it runs under `wsmod serve` from its folder: greets and echoes on /hello, exits 0 on SIGTERM', { timeout: 60_000 }, async () => {
    const configFile = join(dir, 'wsmod.config.yaml');
    const config = await readFile(configFile, 'utf8');
    assert.match(config, /port: 8080/);
    await writeFile(configFile, config.replace('port: 8080', 'port: 0'));

    // The project's own wsmod (the installed copy, what `npx wsmod serve` runs), not this checkout's.
    const installedCli = join(dir, 'node_modules', 'wsmod', 'dist', 'cli', 'wsmod.js');
    const child = spawn(process.execPath, [installedCli, 'serve'], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    try {
      const url = await listeningUrl(child, '/hello', exited);
      const client = await connect(url);
      assert.equal((await client.next()).text(), 'Hello!');
      client.send('world');
      const text = await client.next();
      assert.deepEqual([text.isBinary, text.text()], [false, 'Hello, world']);
      client.send(Buffer.from([7, 8, 9]));
      const binary = await client.next();
      assert.deepEqual([binary.isBinary, [...binary.data]], [true, [7, 8, 9]]);

      child.kill('SIGTERM');
      assert.equal((await client.closed).code, 1001, 'the session is closed with 1001 on shutdown');
      assert.deepEqual(await exited, { code: 0, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

/**
 * Reads `wsmod listening on ws://HOST:PORT/PATH` lines from the child's stdout until one is for
 * `path`; fails with everything the child printed if it exits first or takes too long.
 */
function listeningUrl(child: ChildProcess, path: string, exited: Promise<unknown>): Promise<string> {
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise<string>((resolve, reject) => {
    const fail = (why: string) => reject(new Error(`${why}\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`));
    const timer = setTimeout(() => fail(`wsmod serve printed no URL for ${path} within 30 s`), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      for (const line of stdout.split('\n')) {
        const m = /^wsmod listening on (wss?:\/\/\S+)$/.exec(line.trim());
        if (m !== null && new URL(m[1]!).pathname === path) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      fail(`wsmod serve exited before printing a URL for ${path}`);
    });
  });
}
