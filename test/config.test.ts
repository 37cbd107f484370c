// wsmod serve's configuration: every error path (with its message), units, --check-config, formats,
// and graceful reload on SIGHUP.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/client/client.ts';
import { findConfig, loadConfig } from '../src/config/load.ts';
import { parseDuration, parseSize } from '../src/config/units.ts';
import { isWsmodError } from '../src/errors.ts';

const CLI = fileURLToPath(new URL('../dist/cli/wsmod.js', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'wsmod-config-'));
}

describe('units', () => {
  test('sizes and durations', () => {
    assert.equal(parseSize('1MiB'), 1024 * 1024);
    assert.equal(parseSize('64 KiB'), 65536);
    assert.equal(parseSize('1MB'), 1_000_000);
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize(100), 100);
    assert.equal(parseSize('100'), 100);
    assert.equal(parseSize('1MiBB'), undefined);
    assert.equal(parseSize('-1'), undefined);
    assert.equal(parseSize(-1), undefined);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration(5), 5);
    assert.equal(parseDuration('5 parsecs'), undefined);
  });
});

describe('configuration errors name the file, the key path, what was expected and what was found', () => {
  const cases: Array<{ name: string; yaml: string; messages: RegExp[] }> = [
    { name: 'no routes', yaml: 'listen: 8080\n', messages: [/routes: .*found nothing/i] },
    { name: 'empty routes', yaml: 'routes: []\n', messages: [/routes: /] },
    { name: 'unknown top-level key', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts }\nlistne: 1\n', messages: [/\(top level\): unknown key "listne"/] },
    { name: 'unknown route key (a typo)', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, idleTimout: 30s }\n', messages: [/routes\[0\]: unknown key "idleTimout"/] },
    { name: 'bad size', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, maxMessageSize: 1MiBB }\n', messages: [/routes\[0\]\.maxMessageSize: expected a size .*found "1MiBB"/] },
    { name: 'bad duration', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, idleTimeout: soon }\n', messages: [/routes\[0\]\.idleTimeout: expected a duration .*found "soon"/] },
    { name: 'path without slash', yaml: 'routes:\n  - { path: echo, plugin: ./echo.ts }\n', messages: [/routes\[0\]\.path: expected a path starting with "\/".*found "echo"/] },
    { name: 'neither plugin nor command', yaml: 'routes:\n  - { path: /e }\n', messages: [/routes\[0\]: a route needs exactly one of "plugin".*"command"/] },
    { name: 'both plugin and command', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, command: cat }\n', messages: [/routes\[0\]: a route needs exactly one/] },
    { name: 'command with worker isolation', yaml: 'routes:\n  - { path: /e, command: cat, isolation: worker }\n', messages: [/routes\[0\]\.isolation: "command" routes run as processes.*found "worker"/] },
    { name: 'plugin with process isolation', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, isolation: process }\n', messages: [/routes\[0\]\.isolation: isolation "process" needs "command"/] },
    { name: 'process-only key on a plugin route', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, binary: true }\n', messages: [/routes\[0\]\.binary: "binary" applies to "command" routes only/] },
    { name: 'unknown isolation', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, isolation: thread }\n', messages: [/routes\[0\]\.isolation: .*found "thread"/] },
    { name: 'bad origin', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, origin: sometimes }\n', messages: [/routes\[0\]\.origin: .*found "sometimes"/] },
    { name: 'bad protocol token', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, protocols: ["chat v1"] }\n', messages: [/routes\[0\]\.protocols\[0\]: expected a token.*found "chat v1"/] },
    { name: 'duplicate paths', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts }\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/routes\[1\]\.path: two routes share the path \/e/] },
    { name: 'bad port', yaml: 'listen: 70000\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen: .*found 70000/] },
    { name: 'bad listen string', yaml: 'listen: "localhost"\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen: .*found "localhost"/] },
    { name: 'tls without key', yaml: 'listen: [{ port: 8443, tls: { cert: c.pem } }]\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen\[0\]\.tls\.key: .*found nothing/] },
    { name: 'bad log level', yaml: 'logging: { level: loud }\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/logging\.level: .*found "loud"/] },
    { name: 'bad limit', yaml: 'limits: { maxConnections: -5 }\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/limits\.maxConnections: .*found -5/] },
    { name: 'several problems at once', yaml: 'routes:\n  - { path: e, plugin: ./echo.ts, maxMessageSize: big }\n', messages: [/routes\[0\]\.path/, /routes\[0\]\.maxMessageSize/] },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const dir = tempDir();
      try {
        const file = join(dir, 'wsmod.config.yaml');
        writeFileSync(file, c.yaml);
        await assert.rejects(loadConfig(file), (err: unknown) => {
          assert.ok(isWsmodError(err, 'WSMOD_ERR_CONFIG'), String(err));
          assert.ok(err.message.includes(file), `names the file: ${err.message}`);
          for (const m of c.messages) assert.match(err.message, m);
          return true;
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('unparsable YAML and JSON, and a missing file', async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'a.yaml'), 'routes: [\n');
      writeFileSync(join(dir, 'b.json'), '{ "routes": ');
      await assert.rejects(loadConfig(join(dir, 'a.yaml')), (e: unknown) => isWsmodError(e, 'WSMOD_ERR_CONFIG') && /a\.yaml: cannot be read/.test(e.message));
      await assert.rejects(loadConfig(join(dir, 'b.json')), (e: unknown) => isWsmodError(e, 'WSMOD_ERR_CONFIG') && /b\.json: cannot be read/.test(e.message));
      await assert.rejects(loadConfig(join(dir, 'none.yaml')), (e: unknown) => isWsmodError(e, 'WSMOD_ERR_CONFIG') && /no such file/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('formats and discovery', () => {
  test('YAML, JSON, TS and JS configurations load to the same thing; wsmod.config.* is found', async () => {
    const dir = tempDir();
    try {
      const route = { path: '/e', plugin: './echo.ts', maxMessageSize: '2MiB', idleTimeout: '10s' };
      writeFileSync(join(dir, 'c.json'), JSON.stringify({ listen: '127.0.0.1:9000', routes: [route] }));
      writeFileSync(join(dir, 'c.ts'), `export default ${JSON.stringify({ listen: '127.0.0.1:9000', routes: [route] })};`);
      writeFileSync(join(dir, 'c.mjs'), `export default () => (${JSON.stringify({ listen: '127.0.0.1:9000', routes: [route] })});`);
      writeFileSync(join(dir, 'wsmod.config.yaml'), 'listen: "127.0.0.1:9000"\nroutes:\n  - { path: /e, plugin: ./echo.ts, maxMessageSize: 2MiB, idleTimeout: 10s }\n');
      const expected = { listen: [{ host: '127.0.0.1', port: 9000 }], routes: [{ path: '/e', plugin: './echo.ts', maxMessageSize: 2 * 1024 * 1024, idleTimeout: 10_000 }] };
      for (const f of ['c.json', 'c.ts', 'c.mjs', 'wsmod.config.yaml']) {
        const { config } = await loadConfig(join(dir, f));
        assert.deepEqual({ listen: config.listen, routes: config.routes }, expected, f);
      }
      assert.equal(findConfig(dir), join(dir, 'wsmod.config.yaml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('wsmod serve', () => {
  test('--check-config: 0 for a good configuration, non-zero with the messages for a bad one or a broken plugin', () => {
    const good = spawnSync(process.execPath, [CLI, 'serve', join(EXAMPLES, 'wsmod.config.yaml'), '--check-config'], { encoding: 'utf8' });
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /configuration OK/);
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'wsmod.config.yaml'), 'routes:\n  - { path: /e, plugin: ./echo.ts, idleTimout: 1s }\n');
      const bad = spawnSync(process.execPath, [CLI, 'serve', '--check-config'], { encoding: 'utf8', cwd: dir });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /WSMOD_ERR_CONFIG/);
      assert.match(bad.stderr, /routes\[0\]: unknown key "idleTimout"/);
      writeFileSync(join(dir, 'wsmod.config.yaml'), 'routes:\n  - { path: /e, plugin: ./missing.ts }\n');
      const missing = spawnSync(process.execPath, [CLI, 'serve', '--check-config'], { encoding: 'utf8', cwd: dir });
      assert.notEqual(missing.status, 0);
      assert.match(missing.stderr, /WSMOD_ERR_PLUGIN_LOAD: .*missing\.ts: no such file/);
      // What only the host can check is checked too.
      writeFileSync(join(dir, 'wsmod.config.yaml'), `routes:\n  - { path: /e, plugin: ${JSON.stringify(join(EXAMPLES, 'echo.ts'))}, idleTimeout: 10s, pongTimeout: 0 }\n`);
      const pong = spawnSync(process.execPath, [CLI, 'serve', '--check-config'], { encoding: 'utf8', cwd: dir });
      assert.notEqual(pong.status, 0);
      assert.match(pong.stderr, /WSMOD_ERR_INVALID_OPTION: .*pongTimeout must be above 0/);
      writeFileSync(join(dir, 'v2.ts'), 'export default { name: "v2", apiVersion: 2, onMessage() {} };\n');
      writeFileSync(join(dir, 'wsmod.config.yaml'), 'routes:\n  - { path: /e, plugin: ./v2.ts }\n');
      const version = spawnSync(process.execPath, [CLI, 'serve', '--check-config'], { encoding: 'utf8', cwd: dir });
      assert.notEqual(version.status, 0);
      assert.match(version.stderr, /WSMOD_ERR_PLUGIN_API_VERSION: .*v2\.ts: plugin "v2" wants API version 2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('SIGHUP reloads gracefully: old sessions keep the old plugin, new ones get the new; a broken reload is refused', async () => {
    const dir = tempDir();
    const plugin = (tag: string) => `export default { name: 'tagged', apiVersion: 1, onMessage(s, d) { s.send('${tag}:' + d.toString()); } };\n`;
    writeFileSync(join(dir, 'tagged.ts'), plugin('v1'));
    writeFileSync(join(dir, 'wsmod.config.yaml'), 'listen: 0\nroutes:\n  - { path: /t, plugin: ./tagged.ts }\n');
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [CLI, 'serve'], { cwd: dir });
    const logs: string[] = [];
    child.stderr.on('data', (d: Buffer) => logs.push(d.toString()));
    const waitLog = async (re: RegExp) => {
      for (let i = 0; i < 500 && !re.test(logs.join('')); i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(logs.join(''), re);
    };
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /ws:\/\/\S+\/t/.exec(out);
          if (m !== null) resolve(m[0]);
        });
        child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${logs.join('')}`)));
      });
      const old = await connect(url);
      old.send('a');
      assert.equal((await old.next()).text(), 'v1:a');
      writeFileSync(join(dir, 'tagged.ts'), plugin('v2'));
      child.kill('SIGHUP');
      await waitLog(/configuration reloaded/);
      const fresh = await connect(url);
      fresh.send('b');
      assert.equal((await fresh.next()).text(), 'v2:b');
      old.send('c');
      assert.equal((await old.next()).text(), 'v1:c', 'the open session finishes on the old plugin');
      // A broken configuration is refused and the running one keeps serving.
      writeFileSync(join(dir, 'wsmod.config.yaml'), 'listen: 0\nroutes:\n  - { path: /t, plugin: ./tagged.ts, maxMessageSize: lots }\n');
      child.kill('SIGHUP');
      await waitLog(/reload refused/);
      // A broken plugin too.
      writeFileSync(join(dir, 'wsmod.config.yaml'), 'listen: 0\nroutes:\n  - { path: /t, plugin: ./tagged.ts }\n');
      writeFileSync(join(dir, 'tagged.ts'), 'export default { name: "broken", apiVersion: 1 };\n');
      child.kill('SIGHUP');
      await waitLog(/reload refused[\s\S]*onMessage/);
      const after = await connect(url);
      after.send('d');
      assert.equal((await after.next()).text(), 'v2:d');
      await Promise.all([old.close(), fresh.close(), after.close()]);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
