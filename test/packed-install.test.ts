// wsmod as a user gets it: the packed tarball installed globally (into a temporary prefix, never the
// machine's), and into a project run with npx. In each, a TypeScript plugin that imports 'wsmod' from
// a folder with no package.json, and a CommonJS plugin that requires it, must load and serve.
// Needs the npm registry (or npm's cache) for wsmod's dependencies.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STEP = 300_000; // bound for one npm or tsc step on a busy machine
const TIMEOUT = { timeout: 900_000 };

/** The environment of a user's shell: none of the npm_* variables that `npm test` sets for its scripts. */
const USER_ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_'))),
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

/** Runs a command to completion (bounded), failing the test with its output when it fails. */
function run(cmd: string, args: readonly string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, env: USER_ENV, encoding: 'utf8', timeout: STEP });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} (in ${cwd}) failed: ${r.error?.message ?? ''}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const REV_TS = `import { definePlugin } from 'wsmod';

export default definePlugin({
  name: 'rev',
  apiVersion: 1,
  onMessage(session, data) {
    session.send(data.toString().split('').reverse().join(''));
  },
});
`;

const REV_CJS = `const { definePlugin } = require('wsmod');

module.exports = definePlugin({
  name: 'rev-cjs',
  apiVersion: 1,
  onMessage(session, data) {
    session.send('cjs ' + data.toString().split('').reverse().join(''));
  },
});
`;

/** A running `wsmod serve`, stopped by {@link stop}. */
interface Server {
  readonly child: ChildProcess;
  readonly urls: string[];
  output(): string;
}

/**
 * Starts `command serve --port 0` in `cwd` in a process group of its own (npx starts the real
 * server as its child; the group lets {@link stop} reach both) and waits, bounded, for the URLs it
 * prints: `wsmod listening on ws://127.0.0.1:<port><path>`, one line per route.
 */
async function startServe(command: string, args: readonly string[], cwd: string, routes: number): Promise<Server> {
  const child = spawn(command, [...args, 'serve', '--port', '0', '--host', '127.0.0.1'], { cwd, env: USER_ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const server: Server = { child, urls: [], output: () => out };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop(server);
      reject(new Error(`wsmod serve printed no ${routes} URLs within 120 s:\n${out}`));
    }, 120_000);
    const look = (): void => {
      const urls = [...out.matchAll(/wsmod listening on (ws:\/\/\S+)/g)].map((m) => m[1]!);
      if (urls.length >= routes) {
        clearTimeout(timer);
        server.urls.push(...urls);
        resolve();
      }
    };
    child.stdout!.on('data', look);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`wsmod serve exited with ${code} before listening:\n${out}`));
    });
  });
  return server;
}

/** Stops the server's whole process group (SIGTERM, then SIGKILL after 10 s) and waits for it. */
async function stop(server: Server): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (s: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, s);
    } catch {
      // the group is already gone
    }
  };
  signal('SIGTERM');
  const kill = setTimeout(() => signal('SIGKILL'), 10_000);
  await exited;
  clearTimeout(kill);
}

/** Sends `text` on a fresh `ws` connection to `url` and resolves with the first reply (bounded). */
async function ask(url: string, text: string): Promise<string> {
  const ws = new WebSocket(url);
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply from ${url} within 20 s`)), 20_000);
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.once('open', () => ws.send(text));
      ws.once('message', (data) => {
        clearTimeout(timer);
        resolve(data.toString());
      });
    });
  } finally {
    ws.terminate();
  }
}

describe('the packed package, installed as a user would', TIMEOUT, () => {
  let tmp = '';
  let tarball = '';
  const servers: Server[] = [];

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'wsmod-packed-'));
    // Pack a fresh build of the working tree: stage the published files with a build of its own, so
    // the test neither depends on nor rewrites the dist/ other tests are reading.
    const stage = join(tmp, 'stage');
    mkdirSync(stage);
    for (const entry of ['package.json', 'README.md', 'examples', 'docs', 'templates']) cpSync(join(ROOT, entry), join(stage, entry), { recursive: true });
    run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')], ROOT);
    run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], stage);
    const packed = readdirSync(tmp).filter((f) => f.endsWith('.tgz'));
    assert.equal(packed.length, 1, `npm pack made ${packed.join(', ')}`);
    tarball = join(tmp, packed[0]!);
  });

  after(async () => {
    await Promise.all(servers.map(stop));
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  });

  test('npm install -g: wsmod serve runs a .ts plugin from a folder with no package.json, and a .cjs plugin from a "type": "commonjs" folder', TIMEOUT, async () => {
    const prefix = join(tmp, 'prefix');
    run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', tarball], tmp);
    const wsmod = join(prefix, 'bin', 'wsmod');

    const bare = join(tmp, 'bare');
    mkdirSync(bare);
    writeFileSync(join(bare, 'rev.ts'), REV_TS);
    writeFileSync(join(bare, 'wsmod.config.yaml'), 'routes:\n  - path: /rev\n    plugin: ./rev.ts\n');
    // No TypeScript anywhere here (wsmod does not depend on it): the check loads the plugin and says it skipped type-checking.
    const checked = spawnSync(wsmod, ['serve', '--check-config'], { cwd: bare, env: USER_ENV, encoding: 'utf8', timeout: STEP });
    assert.equal(checked.status, 0, checked.stderr);
    assert.match(checked.stdout, /configuration OK: .*wsmod\.config\.yaml \(1 route\)/);
    assert.match(checked.stderr, /TypeScript is not installed here \(npm install -D typescript\)/);
    const first = await startServe(wsmod, [], bare, 1);
    servers.push(first);
    assert.match(first.urls[0]!, /^ws:\/\/127\.0\.0\.1:\d+\/rev$/);
    assert.equal(await ask(first.urls[0]!, 'hello'), 'olleh');
    await stop(first);

    const commonjs = join(tmp, 'commonjs');
    mkdirSync(commonjs);
    writeFileSync(join(commonjs, 'package.json'), '{ "name": "cjs-plugins", "type": "commonjs" }\n');
    writeFileSync(join(commonjs, 'rev.cjs'), REV_CJS);
    writeFileSync(join(commonjs, 'rev.ts'), REV_TS);
    writeFileSync(join(commonjs, 'wsmod.config.yaml'), 'routes:\n  - { path: /cjs, plugin: ./rev.cjs }\n  - { path: /ts, plugin: ./rev.ts, isolation: worker }\n');
    const second = await startServe(wsmod, [], commonjs, 2);
    servers.push(second);
    const byPath = (p: string) => second.urls.find((u) => u.endsWith(p))!;
    assert.equal(await ask(byPath('/cjs'), 'abc'), 'cjs cba');
    assert.equal(await ask(byPath('/ts'), 'abc'), 'cba');
    await stop(second);
  });

  test('a project that depends on the tarball: npx wsmod serve runs the plugin', TIMEOUT, async () => {
    const project = join(tmp, 'project');
    mkdirSync(project);
    run('npm', ['init', '-y'], project);
    run('npm', ['install', '--prefer-offline', tarball], project);
    writeFileSync(join(project, 'rev.ts'), REV_TS);
    writeFileSync(join(project, 'wsmod.config.yaml'), 'routes:\n  - path: /rev\n    plugin: ./rev.ts\n');
    const server = await startServe('npx', ['--no', 'wsmod'], project, 1);
    servers.push(server);
    assert.equal(await ask(server.urls[0]!, 'stressed'), 'desserts');
    await stop(server);
  });
});
