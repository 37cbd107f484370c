// Loading plugins (JavaScript and TypeScript files, ES modules and CommonJS, factories with options),
// the errors a plugin author gets for a file that does not load or does not export a plugin, and
// replacing plugins on a reload: open sessions finish on the old plugin, whose onShutdown runs after its last session.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect } from '../src/client/client.ts';
import { type ErrorCode, WsmodError, isWsmodError } from '../src/errors.ts';
import { definePlugin } from '../src/plugin/api.ts';
import { importFresh, loadPlugin } from '../src/plugin/loader.ts';
import { startHost, until } from './helpers.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

test('a JavaScript plugin and a TypeScript plugin load from files and serve', async () => {
  const js = await loadPlugin('./plain-echo.mjs', { baseDir: FIXTURES });
  const ts = await loadPlugin(fileURLToPath(new URL('../examples/echo.ts', import.meta.url)));
  const t = await startHost([
    { path: '/js', plugin: js },
    { path: '/ts', plugin: ts },
  ]);
  try {
    for (const path of ['/js', '/ts']) {
      const c = await connect(`${t.base}${path}`);
      c.send(`via ${path}`);
      assert.equal((await c.next()).text(), `via ${path}`);
      await c.close();
    }
  } finally {
    await t.close();
  }
});

test('plugin factories get their options; a plain plugin given options, a bad export and a missing file are refused naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsmod-plugins-'));
  try {
    writeFileSync(
      join(dir, 'greeter.ts'),
      `export default (options: { greeting: string }) => {
        if (typeof options?.greeting !== 'string') throw new Error('greeting must be a string');
        return { name: 'greeter', apiVersion: 1, onMessage(s: any, d: Buffer) { s.send(options.greeting + ' ' + d.toString()); } };
      };\n`,
    );
    writeFileSync(join(dir, 'not-a-plugin.ts'), 'export default 42;\n');
    const greeter = await loadPlugin('./greeter.ts', { baseDir: dir, options: { greeting: 'hi' } });
    const t = await startHost([{ path: '/g', plugin: greeter }]);
    try {
      const c = await connect(`${t.base}/g`);
      c.send('ada');
      assert.equal((await c.next()).text(), 'hi ada');
      await c.close();
    } finally {
      await t.close();
    }
    const refused = async (p: Promise<unknown>, re: RegExp) =>
      assert.rejects(p, (e: unknown) => isWsmodError(e, 'WSMOD_ERR_PLUGIN_INVALID') && re.test(e.message));
    await refused(loadPlugin('./greeter.ts', { baseDir: dir, options: { greeting: 5 } }), /greeter\.ts: the plugin factory refused its options: greeting must be a string/);
    await refused(loadPlugin('./plain-echo.mjs', { baseDir: FIXTURES, options: { x: 1 } }), /plain-echo\.mjs: options were given/);
    await refused(loadPlugin('./not-a-plugin.ts', { baseDir: dir }), /not-a-plugin\.ts: expected a plugin object, got number 42/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Writes `files` into a fresh temporary folder (no package.json unless given) and runs `body` in it. */
async function inFolder(files: Record<string, string>, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wsmod-load-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Asserts that `p` rejects with `code` and a message matching every pattern. */
async function rejectsWith(p: Promise<unknown>, code: ErrorCode, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isWsmodError(e, code), `expected ${code}, got ${String(e)}`);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

const REV_TS = `import { definePlugin, WsmodError, PLUGIN_API_VERSION } from 'wsmod';
export const sameApi = { WsmodError, PLUGIN_API_VERSION };
export default definePlugin({
  name: 'rev',
  apiVersion: PLUGIN_API_VERSION,
  onMessage(session, data) {
    session.send(data.toString().split('').reverse().join(''));
  },
});
`;

test("a plugin importing 'wsmod' from a folder with no package.json, a commonjs package, .mjs and .cjs gets this host's own API", async () => {
  const cjs = `const wsmod = require('wsmod');
module.exports = wsmod.definePlugin({ name: 'rev-cjs', apiVersion: 1, onMessage(s, d) { s.send(d.toString().split('').reverse().join('')); } });
module.exports.sameApi = { WsmodError: wsmod.WsmodError };
`;
  const mjs = `import { definePlugin, WsmodError } from 'wsmod';
export const sameApi = { WsmodError };
export default definePlugin({ name: 'rev-mjs', apiVersion: 1, onMessage(s, d) { s.send(d.toString().split('').reverse().join('')); } });
`;
  await inFolder({ 'rev.ts': REV_TS, 'rev.cjs': cjs, 'rev.mjs': mjs }, async (bare) => {
    await inFolder({ 'package.json': '{"type":"commonjs"}', 'rev.ts': REV_TS, 'rev.js': cjs }, async (commonjs) => {
      const plugins = [
        await loadPlugin('./rev.ts', { baseDir: bare }),
        await loadPlugin('./rev.cjs', { baseDir: bare }),
        await loadPlugin('./rev.mjs', { baseDir: bare }),
        await loadPlugin('./rev.ts', { baseDir: commonjs }),
        await loadPlugin('./rev.js', { baseDir: commonjs }),
      ];
      // The module objects themselves: the plugin's WsmodError is the host's class, not a copy.
      for (const [dir, file] of [[bare, 'rev.ts'], [bare, 'rev.cjs'], [bare, 'rev.mjs'], [commonjs, 'rev.ts'], [commonjs, 'rev.js']] as const) {
        const mod = (await importFresh(pathToFileURL(join(dir, file)).href, pathToFileURL(`${dir}/`).href)) as Record<string, unknown>;
        const inner = (mod['sameApi'] ?? (mod['default'] as Record<string, unknown>)['sameApi']) as { WsmodError: unknown };
        assert.equal(inner.WsmodError, WsmodError, `${file} in ${dir} got another copy of wsmod`);
      }
      const t = await startHost(plugins.map((plugin, i) => ({ path: `/p${i}`, plugin })));
      try {
        for (let i = 0; i < plugins.length; i++) {
          const c = await connect(`${t.base}/p${i}`);
          c.send('abc');
          assert.equal((await c.next()).text(), 'cba', plugins[i]!.name);
          await c.close();
        }
      } finally {
        await t.close();
      }
    });
  });
});

test('a file that fails to load gives WSMOD_ERR_PLUGIN_LOAD with the file, the cause and the fix', async () => {
  await inFolder(
    {
      'syntax.ts': "import { definePlugin } from 'wsmod';\nexport default definePlugin({\n  name: 'x',,\n});\n",
      'syntax.mjs': "const a = 1;\nexport default {\n  name: 'x',,\n};\n",
      'imports-missing.ts': "import helper from './helper.ts';\nexport default helper;\n",
      'imports-package.mjs': "import pad from 'wsmod-no-such-package';\nexport default pad;\n",
      'throws.ts': "throw new Error('no database configured');\n",
    },
    async (dir) => {
      await rejectsWith(loadPlugin('./nope.ts', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_LOAD', /nope\.ts: no such file/, /correct the path/);
      await rejectsWith(loadPlugin('./syntax.ts', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_LOAD', /syntax\.ts:3:\d+: syntax error: /, /fix the code at that line/);
      await rejectsWith(loadPlugin('./syntax.mjs', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_LOAD', /syntax\.mjs:3: syntax error: /);
      await rejectsWith(
        loadPlugin('./imports-missing.ts', { baseDir: dir }),
        'WSMOD_ERR_PLUGIN_LOAD',
        /imports-missing\.ts: a module it imports was not found: '\.\/helper\.ts'/,
        /correct the import path/,
      );
      await rejectsWith(
        loadPlugin('./imports-package.mjs', { baseDir: dir }),
        'WSMOD_ERR_PLUGIN_LOAD',
        /imports-package\.mjs: a module it imports was not found: 'wsmod-no-such-package'/,
        /npm install wsmod-no-such-package/,
      );
      await rejectsWith(loadPlugin('./throws.ts', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_LOAD', /throws\.ts: its top-level code threw while loading: no database configured/);
    },
  );
});

test('a module of the wrong shape gives WSMOD_ERR_PLUGIN_INVALID naming the file, what it found and what to write', async () => {
  await inFolder(
    {
      'package.json': '{"type":"module"}',
      'named.ts': "import { definePlugin } from 'wsmod';\nexport const plugin = definePlugin({ name: 'n', apiVersion: 1, onMessage() {} });\n",
      'class.ts': 'export default class Echo { name = "echo"; apiVersion = 1; onMessage() {} }\n',
      'factory.ts': "export default () => { throw new Error('options.room is required'); };\n",
      'shape.ts': "export default { name: 'shape', apiVersion: 1, onMessage: 'echo' };\n",
      'typo.ts': 'export default { onmessage() {}, helpers: {} };\n',
    },
    async (dir) => {
      await rejectsWith(loadPlugin('./named.ts', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_INVALID', /named\.ts: no default export; it exports `plugin`: write `export default …`/);
      await rejectsWith(
        loadPlugin('./class.ts', { baseDir: dir }),
        'WSMOD_ERR_PLUGIN_INVALID',
        /class\.ts: the default export is the class Echo, not a plugin/,
        /export an instance \(`export default new Echo\(\)`\) or a plain object made with definePlugin/,
      );
      await rejectsWith(loadPlugin('./factory.ts', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_INVALID', /factory\.ts: the plugin factory refused its options: options\.room is required/);
      await rejectsWith(loadPlugin('./shape.ts', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_INVALID', /shape\.ts: "onMessage" must be a function, got "echo"/);
      // A default export that is an object with a misspelt hook is a plugin with a problem, not a named export.
      await rejectsWith(loadPlugin('./typo.ts', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_INVALID', /typo\.ts: "name" must be a non-empty string, got undefined$/);
    },
  );
  // The same named export, compiled as CommonJS (no package.json), and a CommonJS `exports.plugin`.
  await inFolder(
    {
      'named.ts': "export const plugin = { name: 'n', apiVersion: 1, onMessage() {} };\n",
      'named.cjs': "exports.plugin = { name: 'n', apiVersion: 1, onMessage() {} };\n",
    },
    async (dir) => {
      await rejectsWith(loadPlugin('./named.ts', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_INVALID', /named\.ts: no default export; it exports `plugin`: write `export default …`/);
      await rejectsWith(loadPlugin('./named.cjs', { baseDir: dir }), 'WSMOD_ERR_PLUGIN_INVALID', /named\.cjs: no default export; it exports `plugin`: write `module\.exports = …`/);
    },
  );
});

test('each load evaluates the plugin and the files it imports afresh (reloads pick up edited helpers), ES modules and CommonJS alike', async () => {
  // "type": "module": ES module imports; no package.json: tsx compiles both .ts files to CommonJS; .cjs: require.
  for (const pkg of ['{"type":"module"}', undefined]) {
    const files: Record<string, string> = {
      'word.ts': "export const word = 'first';\n",
      'uses-dep.ts': "import { word } from './word.ts';\nexport default { name: word, apiVersion: 1, onMessage() {} };\n",
      'word.cjs': "exports.word = 'first';\n",
      'uses-dep.cjs': "const { word } = require('./word.cjs');\nmodule.exports = { name: word, apiVersion: 1, onMessage() {} };\n",
    };
    if (pkg !== undefined) files['package.json'] = pkg;
    await inFolder(files, async (dir) => {
      for (const ext of ['ts', 'cjs']) {
        assert.equal((await loadPlugin(`./uses-dep.${ext}`, { baseDir: dir })).name, 'first');
        writeFileSync(join(dir, `word.${ext}`), ext === 'ts' ? "export const word = 'second';\n" : "exports.word = 'second';\n");
        assert.equal((await loadPlugin(`./uses-dep.${ext}`, { baseDir: dir })).name, 'second', `${ext}, package.json ${pkg ?? 'none'}`);
      }
    });
  }
});

test('replaceRoutes: new sessions get the new plugin, the old one keeps its sessions and shuts down after the last', async () => {
  let oldShutdowns = 0;
  const v1 = definePlugin({ name: 'v1', apiVersion: 1, onMessage: (s, d) => void s.send(`v1 ${d.toString()}`), onShutdown: () => void oldShutdowns++ });
  const v2 = definePlugin({ name: 'v2', apiVersion: 1, onMessage: (s, d) => void s.send(`v2 ${d.toString()}`) });
  const t = await startHost([{ path: '/p', plugin: v1 }]);
  try {
    const old = await connect(`${t.base}/p`);
    t.host.replaceRoutes([{ path: '/p', plugin: v2 }]);
    const fresh = await connect(`${t.base}/p`);
    fresh.send('a');
    old.send('b');
    assert.equal((await fresh.next()).text(), 'v2 a');
    assert.equal((await old.next()).text(), 'v1 b');
    assert.equal(oldShutdowns, 0, 'v1 still serves a session');
    await old.close();
    await until(() => oldShutdowns === 1, 5000, 'v1 onShutdown');
    assert.throws(() => t.host.replaceRoutes([{ path: 'bad', plugin: v2 }]), (e: unknown) => isWsmodError(e, 'WSMOD_ERR_INVALID_OPTION'));
    fresh.send('c');
    assert.equal((await fresh.next()).text(), 'v2 c', 'a refused replacement changes nothing');
    await fresh.close();
  } finally {
    await t.close();
  }
});

test("import 'wsmod' does not load tsx; loading a plugin file does (built package, dist/)", () => {
  const dist = new URL('../dist/index.js', import.meta.url).href;
  // A resolve hook that fails any import of tsx, so the child reports whether tsx was reached.
  const tripwire = `export async function resolve(specifier, context, next) {
    const r = await next(specifier, context);
    if (r.url.includes('/node_modules/tsx/')) throw new Error('TSX LOADED ' + r.url);
    return r;
  }`;
  const preload = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(tripwire)}`)});`;
  const run = (script: string) =>
    spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(preload)}`, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
  const bare = run(`const w = await import(${JSON.stringify(dist)}); console.log(typeof w.createHost, typeof w.definePlugin);`);
  assert.equal(bare.status, 0, bare.stderr);
  assert.equal(bare.stdout.trim(), 'function function');
  assert.doesNotMatch(bare.stderr, /TSX LOADED/);
  // The tripwire works: loading a plugin file is what brings tsx in.
  const file = fileURLToPath(new URL('./fixtures/plain-echo.mjs', import.meta.url));
  const tools = new URL('../dist/plugin/index.js', import.meta.url).href;
  const loading = run(`const w = await import(${JSON.stringify(tools)}); await w.loadPlugin(${JSON.stringify(file)}).catch((e) => { console.error(e.message); process.exit(3); });`);
  assert.equal(loading.status, 3);
  assert.match(loading.stderr, /TSX LOADED/);
});

test('serve --check-config type-checks TypeScript plugins and reports file:line:col (exit 1)', async () => {
  const cli = fileURLToPath(new URL('../dist/cli/wsmod.js', import.meta.url));
  const bad = `import { definePlugin } from 'wsmod';
const count: number = 'many';
export default definePlugin({ name: 'bad', apiVersion: 1, onMessage(session, data) { session.send(data.toUpperCase()); } });
`;
  await inFolder(
    {
      'rev.ts': REV_TS,
      'bad.ts': bad,
      'good.yaml': 'routes:\n  - { path: /rev, plugin: ./rev.ts }\n',
      'bad.yaml': 'routes:\n  - { path: /rev, plugin: ./rev.ts }\n  - { path: /bad, plugin: ./bad.ts }\n',
    },
    async (dir) => {
      const check = (config: string) => spawnSync(process.execPath, [cli, 'serve', '--check-config', config], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
      const good = check('good.yaml');
      assert.equal(good.status, 0, good.stderr);
      assert.match(good.stdout, /configuration OK: .*good\.yaml \(1 route, 1 TypeScript plugin type-checked\)/);
      const failed = check('bad.yaml');
      assert.equal(failed.status, 1, failed.stdout);
      assert.match(failed.stderr, /type errors in the plugins of .*bad\.yaml/);
      assert.match(failed.stderr, new RegExp(`${join(dir, 'bad.ts').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:7: Type 'string' is not assignable to type 'number'`));
      assert.match(failed.stderr, /bad\.ts:3:\d+: Property 'toUpperCase' does not exist on type 'Buffer/);
      assert.doesNotMatch(failed.stderr, /rev\.ts:/, 'the correct plugin has no errors');
      assert.doesNotMatch(failed.stdout, /configuration OK/);
    },
  );
});
