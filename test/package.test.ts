// The package as users get it: `npm pack`'s tarball passes publint and arethetypeswrong, installs into
// a fresh project with no install-script warning but esbuild's (explained in the README), and its
// front door is small and cheap: `import 'wsmod'` loads neither tsx (nor esbuild) nor pino.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CommandResult, runCommand as run } from './command.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin');

let tmp: string;
let tarball: string;
before(async () => {
  // `npm test` builds dist/ before any test runs; the tarball is packed from it as it is (no scripts,
  // so no second build racing the tests that read dist/).
  assert.ok(existsSync(join(ROOT, 'dist', 'index.js')), 'dist/ is missing: run npm run build (npm test does)');
  tmp = await mkdtemp(join(tmpdir(), 'wsmod-package-'));
  const r = await run('npm', ['pack', '--pack-destination', tmp, '--ignore-scripts', '--json', '--loglevel=error'], ROOT);
  assert.equal(r.status, 0, `npm pack failed:\n${r.stderr}`);
  const packed = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Array<{ filename: string }>;
  tarball = join(tmp, packed[0]!.filename);
  assert.ok(existsSync(tarball));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  test('publint finds no problem (warnings fail too)', { timeout: 120_000 }, async () => {
    const r = await run(join(BIN, 'publint'), ['run', tarball, '--strict'], ROOT);
    assert.equal(r.status, 0, `publint:\n${r.stdout}\n${r.stderr}`);
  });

  test('arethetypeswrong: every entry point resolves to its types and code (ESM-only profile)', { timeout: 120_000 }, async () => {
    // esm-only: wsmod is an ES module package, so CommonJS `require` from TypeScript's node10/node16-cjs
    // resolution is not a target (Node ≥ 20.19 can still require() it, as the last test shows).
    const r = await run(join(BIN, 'attw'), [tarball, '--profile', 'esm-only', '--format', 'ascii', '--no-color'], ROOT);
    assert.equal(r.status, 0, `attw:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /"wsmod\/client"/, 'the subpath entries are checked');
  });
});

test("the README's export table names every entry of package.json exports, and no other", async () => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const exported = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => k.replace(/^\./, 'wsmod')).sort();
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const listed = [...readme.matchAll(/^\| `(wsmod(?:\/[a-z-]+)?)` \|/gm)].map((m) => m[1]!).sort();
  assert.deepEqual(listed, exported);
  for (const [key, target] of Object.entries(pkg.exports)) {
    if (key === './package.json') continue;
    assert.deepEqual(Object.keys(target as object), ['types', 'import', 'default'], `${key}: types first, then import and default`);
  }
});

describe('installed into a fresh project', () => {
  let project: string;
  let install: CommandResult;

  before(async () => {
    project = join(tmp, 'consumer');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`);
    install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], project);
    assert.equal(install.status, 0, `npm install of the tarball failed:\n${install.stdout}\n${install.stderr}`);
  });

  test("npm install warns about no install script but esbuild's (the README says what it is)", () => {
    // npm 11 lists each dependency whose install script it skipped: `npm warn install-scripts   name@1.2.3 (postinstall: ...)`.
    const skipped: string[] = [...install.stderr.matchAll(/^npm warn install-scripts\s+(@?[^@\s]+)@\S+ \(/gm)].map((m) => m[1]!);
    assert.ok(!skipped.includes('wsmod'), 'wsmod itself has no install script (it builds on prepack, not prepare)');
    assert.deepEqual(skipped.filter((name) => name !== 'esbuild'), [], `unexplained install-script warnings:\n${install.stderr}`);
  });

  test('every subpath export loads, and the root exports only the front door', { timeout: 60_000 }, async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => k.replace(/^\./, 'wsmod'));
    assert.ok(subpaths.length > 1);
    const script = `
      const out = {};
      for (const s of ${JSON.stringify(subpaths)}) out[s] = Object.keys(await import(s)).sort();
      console.log(JSON.stringify(out));`;
    const r = await run(process.execPath, ['--input-type=module', '-e', script], project);
    assert.equal(r.status, 0, r.stderr);
    const names = JSON.parse(r.stdout) as Record<string, string[]>;
    assert.deepEqual(names['wsmod'], ['ERRORS', 'PLUGIN_API_VERSION', 'WsmodError', 'createHost', 'definePlugin', 'definePluginFactory', 'isWsmodError']);
    for (const s of subpaths) assert.ok(names[s]!.length > 0, `${s} exports nothing`);
  });

  describe("import 'wsmod' loads neither tsx, esbuild nor pino", () => {
    /** Every module URL that the ES module loader resolved, and every CommonJS module require() loaded. */
    async function modulesLoadedBy(code: string): Promise<string[]> {
      const log = join(project, `resolved-${Math.random().toString(36).slice(2)}.log`);
      await writeFile(log, '');
      // A resolve hook (module.register, Node ≥ 20.6) sees every ESM import; the hook thread appends to
      // a file so nothing depends on messages between threads. require() (pino is loaded that way) is
      // seen in require.cache, which every CommonJS load goes through.
      await writeFile(
        join(project, 'hooks.mjs'),
        `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  appendFileSync(log, result.url + '\\n');
  return result;
}
`,
      );
      await writeFile(
        join(project, 'record.mjs'),
        `import { register } from 'node:module';
register('./hooks.mjs', import.meta.url, { data: { log: process.env.RESOLVED_LOG } });
`,
      );
      const script = `${code}
        const { createRequire } = await import('node:module');
        console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
      const r = await run(process.execPath, ['--import', './record.mjs', '--input-type=module', '-e', script], project, { env: { RESOLVED_LOG: log } });
      assert.equal(r.status, 0, r.stderr);
      const required = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as string[];
      const resolved = (await readFile(log, 'utf8')).split('\n').filter((l) => l !== '');
      assert.ok(resolved.some((u) => u.includes('/node_modules/wsmod/dist/index.js')), `the recorder saw wsmod load:\n${resolved.join('\n')}`);
      return [...resolved, ...required];
    }

    const heavy = (modules: string[], name: string) => modules.filter((m) => m.includes(`/node_modules/${name}/`));

    test('the root import: none of them', { timeout: 60_000 }, async () => {
      const loaded = await modulesLoadedBy(`
        const wsmod = await import('wsmod');
        // A host made and closed without logging: the default logger must not load pino either.
        const host = wsmod.createHost({ routes: [{ path: '/x', plugin: wsmod.definePlugin({ name: 'x', apiVersion: 1, onMessage() {} }) }] });
        await host.close();`);
      for (const name of ['tsx', 'esbuild', 'pino']) assert.deepEqual(heavy(loaded, name), [], `import 'wsmod' loaded ${name}`);
    });

    test('the recorder sees them when they are loaded (the check above can fail)', { timeout: 60_000 }, async () => {
      const loaded = await modulesLoadedBy(`
        await import('wsmod');
        const { createLogger } = await import('wsmod/log');
        createLogger('error').error({ probe: true }, 'a line, so pino loads');
        const { register } = await import('tsx/esm/api');
        register();`);
      for (const name of ['tsx', 'esbuild', 'pino']) assert.notDeepEqual(heavy(loaded, name), [], `${name} was loaded but not seen`);
    });
  });

  test('CommonJS can require() it (Node ≥ 20.19 loads ES modules synchronously)', { timeout: 60_000 }, async () => {
    await writeFile(join(project, 'probe.cjs'), "const wsmod = require('wsmod');\nconsole.log(typeof wsmod.createHost, wsmod.PLUGIN_API_VERSION);\n");
    const r = await run(process.execPath, ['probe.cjs'], project);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'function 1');
  });
});
