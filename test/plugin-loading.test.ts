// Loading plugins (JavaScript and TypeScript files, factories with options) and replacing them on a
// reload: open sessions finish on the old plugin, whose onShutdown runs after its last session.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/client/client.ts';
import { isWsmodError } from '../src/errors.ts';
import { definePlugin } from '../src/plugin/api.ts';
import { loadPlugin } from '../src/plugin/loader.ts';
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
    await refused(loadPlugin('./nope.ts', { baseDir: dir }), /nope\.ts: no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('each load evaluates the plugin and the files it imports afresh (reloads pick up edited helpers)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsmod-fresh-'));
  try {
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'word.ts'), "export const word = 'first';\n");
    writeFileSync(join(dir, 'uses-dep.ts'), "import { word } from './word.ts';\nexport default { name: word, apiVersion: 1, onMessage() {} };\n");
    assert.equal((await loadPlugin('./uses-dep.ts', { baseDir: dir })).name, 'first');
    writeFileSync(join(dir, 'word.ts'), "export const word = 'second';\n");
    assert.equal((await loadPlugin('./uses-dep.ts', { baseDir: dir })).name, 'second');
  } finally {
    rmSync(dir, { recursive: true, force: true });
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
