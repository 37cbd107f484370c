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
    { name: 'unknown top-level key', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts }\nlistne: 1\n', messages: [/\(top level\): unknown key "listne" \(did you mean "listen"\?\)/] },
    { name: 'unknown route key (a typo)', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, idleTimout: 30s }\n', messages: [/routes\[0\]: unknown key "idleTimout" \(did you mean "idleTimeout"\?\)/] },
    { name: 'bad size', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, maxMessageSize: 1MiBB }\n', messages: [/routes\[0\]\.maxMessageSize: expected a size .*found "1MiBB"/] },
    { name: 'bad duration', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, idleTimeout: soon }\n', messages: [/routes\[0\]\.idleTimeout: expected a duration .*found "soon"/] },
    { name: 'path without slash', yaml: 'routes:\n  - { path: echo, plugin: ./echo.ts }\n', messages: [/routes\[0\]\.path: expected a path starting with "\/".*found "echo"/] },
    { name: 'neither plugin nor command', yaml: 'routes:\n  - { path: /e }\n', messages: [/routes\[0\]: expected exactly one of "plugin" \(a module\) or "command" \(a process\), found neither/] },
    { name: 'both plugin and command', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, command: cat }\n', messages: [/routes\[0\]: expected exactly one of .*, found both/] },
    { name: 'command with worker isolation', yaml: 'routes:\n  - { path: /e, command: cat, isolation: worker }\n', messages: [/routes\[0\]\.isolation: expected "process" or no isolation on a "command" route, found "worker"/] },
    { name: 'plugin with process isolation', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, isolation: process }\n', messages: [/routes\[0\]\.isolation: expected "inline" or "worker" on a "plugin" route, found "process"/] },
    { name: 'process-only key on a plugin route', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, binary: true }\n', messages: [/routes\[0\]\.binary: expected no "binary" on a "plugin" route, found true; "binary" applies to "command" routes only/] },
    { name: 'unknown isolation', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, isolation: thread }\n', messages: [/routes\[0\]\.isolation: expected "inline", "worker" or "process", found "thread"/] },
    { name: 'bad origin', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, origin: sometimes }\n', messages: [/routes\[0\]\.origin: expected "same", "any" or a list of origins, found "sometimes"/] },
    { name: 'bad protocol token', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, protocols: ["chat v1"] }\n', messages: [/routes\[0\]\.protocols\[0\]: expected a subprotocol token.*found "chat v1"/] },
    { name: 'duplicate paths', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts }\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/routes\[1\]\.path: expected a path no other route has, found "\/e"/] },
    { name: 'bad port', yaml: 'listen: 70000\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen: expected a port number from 0 to 65535, found 70000/] },
    { name: 'bad listen string', yaml: 'listen: "localhost"\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen: expected "host:port" with a port from 0 to 65535, found "localhost"; write for example "127\.0\.0\.1:8080"/] },
    { name: 'tls without key', yaml: 'listen: [{ port: 8443, tls: { cert: c.pem } }]\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen\[0\]\.tls\.key: expected a private key file \(PEM\), found nothing/] },
    { name: 'bad log level', yaml: 'logging: { level: loud }\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/logging\.level: expected "debug", "info", "warn", "error" or "silent", found "loud"/] },
    { name: 'bad limit', yaml: 'limits: { maxConnections: -5 }\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/limits\.maxConnections: expected a whole number ≥ 1, found -5/] },
    { name: 'listen 99999: out of range', yaml: 'listen: 99999\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen: expected a port number from 0 to 65535, found 99999; 0 picks a free port/] },
    { name: 'listen "17070": a port in quotes', yaml: 'listen: "17070"\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen: expected a port number, not a string, found "17070"; write 17070 without quotes/] },
    { name: 'a port in quotes in a list', yaml: 'listen: [8080, "9090"]\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen\[1\]: expected a port number, not a string, found "9090"; write 9090 without quotes/] },
    { name: 'listen of another type', yaml: 'listen: true\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/listen: expected a port number, "host:port", an object \{ host, port, tls \}, or a list of these, found true/] },
    { name: 'maxConnections 0 (no "unlimited")', yaml: 'limits: { maxConnections: 0 }\nroutes:\n  - { path: /e, plugin: ./echo.ts }\n', messages: [/limits\.maxConnections: expected a whole number ≥ 1, found 0; 0 would refuse every connection/] },
    { name: 'compression neither boolean nor settings', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, compression: yes please }\n', messages: [/routes\[0\]\.compression: expected true, false or an object of compression settings, found "yes please"/] },
    { name: 'a compression setting out of range', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, compression: { level: 12 } }\n', messages: [/routes\[0\]\.compression\.level: expected a whole number from -1 to 9, found 12/] },
    { name: 'an empty command list', yaml: 'routes:\n  - { path: /e, command: [] }\n', messages: [/routes\[0\]\.command: expected a shell command line, or a list \[program, \.\.\.args\] of non-empty strings, found \[\]/] },
    { name: 'pongTimeout 0 with keepalive on', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, idleTimeout: 10s, pongTimeout: 0 }\n', messages: [/routes\[0\]\.pongTimeout: expected a duration above 0 ms while keepalive is on \(idleTimeout 10000\), found 0/] },
    { name: 'an origin list entry that is no origin', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, origin: [example.com] }\n', messages: [/routes\[0\]\.origin\[0\]: expected an origin: scheme:\/\/host\[:port\], found "example\.com"/] },
    { name: 'maxMessageSize over 4 GiB', yaml: 'routes:\n  - { path: /e, plugin: ./echo.ts, maxMessageSize: 5GiB }\n', messages: [/routes\[0\]\.maxMessageSize: expected a size ≥ 1 byte and ≤ 4 GiB, found "5GiB"/] },
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
  test('--check-config: a plugin whose onShutdown throws is reported with the code, the plugin, its file and route (exit 1)', () => {
    const dir = tempDir();
    try {
      writeFileSync(
        join(dir, 'boom.mjs'),
        "export default { name: 'boomer', apiVersion: 1, onMessage() {}, onShutdown() { throw new Error('boom'); } };\n",
      );
      writeFileSync(join(dir, 'wsmod.config.yaml'), 'routes:\n  - { path: /b, plugin: ./boom.mjs }\n');
      const r = spawnSync(process.execPath, [CLI, 'serve', '--check-config'], { encoding: 'utf8', cwd: dir });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /WSMOD_ERR_PLUGIN_THREW: .*plugin "boomer" \(\.\/boom\.mjs, route \/b\) threw in onShutdown: boom/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

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
      // Rules across keys are the schema's too, so the file reports them (with its name).
      writeFileSync(join(dir, 'wsmod.config.yaml'), `routes:\n  - { path: /e, plugin: ${JSON.stringify(join(EXAMPLES, 'echo.ts'))}, idleTimeout: 10s, pongTimeout: 0 }\n`);
      const pong = spawnSync(process.execPath, [CLI, 'serve', '--check-config'], { encoding: 'utf8', cwd: dir });
      assert.notEqual(pong.status, 0);
      assert.match(pong.stderr, /WSMOD_ERR_CONFIG: [\s\S]*routes\[0\]\.pongTimeout: expected a duration above 0 ms while keepalive is on/);
      writeFileSync(join(dir, 'v2.ts'), 'export default { name: "v2", apiVersion: 2, onMessage() {} };\n');
      writeFileSync(join(dir, 'wsmod.config.yaml'), 'routes:\n  - { path: /e, plugin: ./v2.ts }\n');
      const version = spawnSync(process.execPath, [CLI, 'serve', '--check-config'], { encoding: 'utf8', cwd: dir });
      assert.notEqual(version.status, 0);
      assert.match(version.stderr, /WSMOD_ERR_PLUGIN_API_VERSION: .*v2\.ts: plugin "v2" wants API version 2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a command whose program is missing or not executable is refused by --check-config and at start, naming the key and where it looked', () => {
    const dir = tempDir();
    try {
      const check = (route: string, args: string[] = ['--check-config']) => {
        writeFileSync(join(dir, 'wsmod.config.yaml'), `listen: 0\nroutes:\n  - { path: /p, ${route} }\n`);
        return spawnSync(process.execPath, [CLI, 'serve', ...args], { encoding: 'utf8', cwd: dir, timeout: 20_000 });
      };
      const relative = check('command: [./nope.sh]');
      assert.equal(relative.status, 1);
      assert.match(relative.stderr, /WSMOD_ERR_CONFIG: invalid configuration: .*wsmod\.config\.yaml:/);
      assert.ok(relative.stderr.includes(`routes[0].command: expected a program that exists and is executable, found "./nope.sh": no such file (looked at ${join(dir, 'nope.sh')})`), relative.stderr);
      const atStart = check('command: [./nope.sh]', []);
      assert.equal(atStart.status, 1, 'serve refuses to start');
      assert.match(atStart.stderr, /routes\[0\]\.command: .*"\.\/nope\.sh": no such file/);
      writeFileSync(join(dir, 'plain.sh'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
      const notExecutable = check('command: [./plain.sh]');
      assert.equal(notExecutable.status, 1);
      assert.match(notExecutable.stderr, /routes\[0\]\.command: .*"\.\/plain\.sh": not executable \(chmod \+x it\)/);
      const bare = check('command: [wsmod-no-such-program, --flag]');
      assert.equal(bare.status, 1);
      assert.match(bare.stderr, /routes\[0\]\.command: expected a program that exists and is executable, found "wsmod-no-such-program": not found on PATH \(searched [^)]*\/bin/);
      const shellLine = check('command: "wsmod-no-such-program | cat"');
      assert.equal(shellLine.status, 1);
      assert.match(shellLine.stderr, /"wsmod-no-such-program": not found on PATH/);
      // What a shell resolves itself (builtins, PATH programs, an executable file) passes.
      writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
      for (const ok of ['command: "echo hi; exit 0"', 'command: [cat]', 'command: [./run.sh]', 'command: "exec ./run.sh"']) {
        const r = check(ok);
        assert.equal(r.status, 0, `${ok}: ${r.stderr}`);
      }
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
