// `wsmod serve --workers N` as a user runs it: the built CLI with a real configuration, real worker
// processes and real ws clients. Connections spread over the workers, SIGTERM closes every client
// with 1001, SIGHUP replaces every worker without refusing a connection, a crashed worker comes back,
// and the cluster backplane carries topics between workers (a fixture with real cluster workers and
// no broker). Every wait is for an event (a log line, a message, an exit); none is a sleep.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load.ts';
import { isWsmodError } from '../src/errors.ts';
import { childEnv } from './command.ts';

const CLI = fileURLToPath(new URL('../dist/cli/wsmod.js', import.meta.url));
const PID_PLUGIN = fileURLToPath(new URL('./fixtures/cluster-pid.ts', import.meta.url));
const BACKPLANE_FIXTURE = fileURLToPath(new URL('./fixtures/cluster-backplane.ts', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'wsmod-cluster-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A configuration serving the pid plugin on /pid, on a free port. */
function writeConfig(name: string, extra = ''): string {
  const file = join(dir, name);
  writeFileSync(file, `listen: 0\n${extra}routes:\n  - path: /pid\n    plugin: ${JSON.stringify(PID_PLUGIN)}\n`);
  return file;
}

interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  /** Resolves with the first JSON log line (stderr) that `match` accepts, including lines already logged. */
  log(match: (line: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  readonly stderr: () => string;
}

/** Runs `wsmod serve` with `args` and resolves once it prints its URL. */
async function serve(args: readonly string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>();
  let stderr = '';
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const text of parts) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: text };
      }
      lines.push(line);
      for (const w of waiters) {
        if (w.match(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ws:\/\/\S+\/pid/.exec(out);
      if (m !== null) resolve(m[0]);
    });
    void exited.then((code) => reject(new Error(`wsmod serve exited early (${code}):\n${stderr}`)));
  });
  return {
    child,
    url,
    exited,
    stderr: () => stderr,
    log: (match, what) => {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { match, resolve };
        waiters.add(w);
        void exited.then(() => {
          if (waiters.delete(w)) reject(new Error(`wsmod serve exited before logging ${what}:\n${stderr}`));
        });
      });
    },
  };
}

function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** The pid of the worker serving `ws`. */
async function pidOf(ws: WebSocket): Promise<number> {
  ws.send('pid');
  const [data] = (await once(ws, 'message')) as [Buffer];
  return Number(data.toString());
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
}

/** Opens `n` clients and asks each for its worker's pid. */
async function clients(url: string, n: number): Promise<{ sockets: WebSocket[]; pids: number[] }> {
  const sockets = await Promise.all(Array.from({ length: n }, () => open(url)));
  const pids = await Promise.all(sockets.map(pidOf));
  return { sockets, pids };
}

const msg = (text: string) => (line: Record<string, unknown>) => line['msg'] === text;

describe('wsmod serve --workers', () => {
  test('connections land on both workers; the primary sums their counters; a topic crosses workers; SIGTERM closes every client with 1001 and exits 0', async () => {
    const s = await serve([writeConfig('spread.yaml'), '--workers', '2']);
    try {
      const { sockets, pids } = await clients(s.url, 20);
      const distinct = new Set(pids);
      assert.equal(distinct.size, 2, `20 connections over 2 workers, got pids ${[...distinct].join(", ")} ${s.stderr()}`);
      assert.ok(!distinct.has(s.child.pid!), 'the primary serves no connection');

      // SIGUSR2: the primary asks every worker for its counters and logs the sum.
      s.child.kill('SIGUSR2');
      const line = await s.log(msg('cluster stats'), 'the cluster stats');
      const stats = line['stats'] as { workers: Array<{ pid: number; connections: number; messagesIn: number }>; total: { connections: number; messagesIn: number; messagesOut: number; bytesIn: number } };
      assert.deepEqual(new Set(stats.workers.map((w) => w.pid)), distinct);
      assert.equal(stats.total.connections, 20);
      assert.equal(stats.total.messagesIn, 20, 'one "pid" message per client');
      assert.equal(stats.total.messagesOut, 20);
      assert.equal(stats.total.bytesIn, 20 * 'pid'.length);
      for (const w of stats.workers) assert.equal(w.connections, pids.filter((p) => p === w.pid).length);

      // A topic crosses workers: a session on one subscribes, a session on the other publishes.
      const a = sockets[0]!;
      const b = sockets[pids.findIndex((p) => p !== pids[0])]!;
      a.send('sub:room');
      assert.equal(String(((await once(a, 'message')) as [Buffer])[0]), 'subscribed');
      const heard = once(a, 'message') as Promise<[Buffer]>;
      let got = false;
      void heard.then(() => (got = true));
      // The subscription travels to the primary on another channel than the publish: publish until
      // one arrives (bounded), as a client would not know when the subscription has landed.
      for (let i = 0; i < 50 && !got; i++) {
        b.send('pub:room:hello from the other worker');
        assert.equal(String(((await once(b, 'message')) as [Buffer])[0]), 'published');
      }
      assert.equal(String((await heard)[0]), 'hello from the other worker');

      const codes = Promise.all(sockets.map(closed));
      s.child.kill('SIGTERM');
      assert.deepEqual(new Set(await codes), new Set([1001]));
      assert.equal(await s.exited, 0);
    } finally {
      s.child.kill('SIGKILL');
    }
  });

  test('SIGHUP replaces every worker, one at a time, and no connection is refused meanwhile', async () => {
    // `workers:` from the file this time (the previous test used the flag).
    const s = await serve([writeConfig('reload.yaml', 'workers: 2\n')]);
    try {
      const before = new Set((await clients(s.url, 6)).pids);
      let reloaded = false;
      const done = s.log(msg('configuration reloaded (every worker replaced)'), 'the end of the reload').then(() => (reloaded = true));
      s.child.kill('SIGHUP');
      let connected = 0;
      const failures: string[] = [];
      // Connect again and again until the reload is over (bounded: a stuck reload fails, not hangs).
      for (let i = 0; !reloaded && i < 5000; i++) {
        try {
          const ws = await open(s.url);
          connected++;
          const answer = closed(ws).then((code) => (code === 1001 ? 'going away' : `closed ${code}`));
          const result = await Promise.race([pidOf(ws).then(() => 'ok'), answer]);
          // A session on a retiring worker may be closed with 1001 (going away): not a refusal.
          if (result !== 'ok' && result !== 'going away') failures.push(result);
          ws.close();
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      await done;
      assert.deepEqual(failures, []);
      assert.ok(connected > 0);
      const afterPids = new Set((await clients(s.url, 6)).pids);
      for (const pid of afterPids) assert.ok(!before.has(pid), `worker ${pid} was replaced`);
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    } finally {
      s.child.kill('SIGKILL');
    }
  });

  test('a reload with a broken configuration is refused; the running workers keep serving', async () => {
    const file = writeConfig('broken.yaml');
    const s = await serve([file, '--workers', '2']);
    try {
      const before = await clients(s.url, 4);
      writeFileSync(file, 'listen: 0\nroutes: []\n');
      s.child.kill('SIGHUP');
      await s.log((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('reload refused'), 'the refusal');
      assert.match(s.stderr(), /WSMOD_ERR_CONFIG/);
      // The old sessions still answer, from the same workers.
      assert.deepEqual(await Promise.all(before.sockets.map(pidOf)), before.pids);
      const after = await clients(s.url, 4);
      for (const pid of after.pids) assert.ok(before.pids.includes(pid), `new connections are served by the old workers, not ${pid}`);
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    } finally {
      s.child.kill('SIGKILL');
    }
  });

  test('a crashed worker is restarted; its clients see the connection drop, others stay', async () => {
    const s = await serve([writeConfig('crash.yaml'), '--workers', '2']);
    try {
      const { sockets, pids } = await clients(s.url, 4);
      const victim = sockets[0]!;
      const crashed = pids[0]!;
      const survivors = sockets.filter((_, i) => pids[i] !== crashed);
      assert.ok(survivors.length > 0, 'connections on both workers');
      const dropped = closed(victim);
      victim.send('crash');
      assert.equal(await dropped, 1006, 'the process is gone: no closing handshake');
      const crash = await s.log(msg('worker exited unexpectedly'), 'the crash');
      assert.equal(crash['pid'], crashed);
      assert.equal(crash['code'], 3);
      const restarted = await s.log(msg('worker restarted'), 'the restart');
      assert.notEqual(restarted['pid'], crashed);
      // The other worker's sessions never noticed.
      for (const ws of survivors) assert.notEqual(await pidOf(ws), crashed);
      const now = new Set((await clients(s.url, 10)).pids);
      assert.ok(now.has(restarted['pid'] as number), 'the new worker serves connections');
      assert.ok(!now.has(crashed));
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    } finally {
      s.child.kill('SIGKILL');
    }
  });

  test('workers: 0 is refused by the schema; a worker that cannot start stops the cluster with status 1', async () => {
    const bad = join(dir, 'zero.yaml');
    writeFileSync(bad, `workers: 0\nroutes:\n  - path: /pid\n    plugin: ${JSON.stringify(PID_PLUGIN)}\n`);
    await assert.rejects(loadConfig(bad), (err) => isWsmodError(err, 'WSMOD_ERR_CONFIG') && /workers: expected a whole number from 1 to 1024, found 0/.test(err.message));
    const missing = join(dir, 'missing-plugin.yaml');
    writeFileSync(missing, `listen: 0\nworkers: 2\nroutes:\n  - path: /pid\n    plugin: ./no-such-plugin.ts\n`);
    const child = spawn(process.execPath, [CLI, 'serve', missing], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 1, stderr);
    assert.match(stderr, /no-such-plugin/);
    assert.match(stderr, /a worker failed to start/);
  });
});

test('cluster backplane: three real workers deliver to each other only, in order per (origin, topic), bounded with gaps reported', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', BACKPLANE_FIXTURE], { env: childEnv({ PER_TOPIC: '300' }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, err);
  interface Phase1 {
    slot: number;
    id: string;
    topics: string[];
    seen: Record<string, Record<string, number[]>>;
    badPayloads: string[];
    stats: { received: number; published: number; dropped: number };
  }
  const result = JSON.parse(out) as { phase1: Phase1[]; phase2: Array<Record<string, unknown>>; relay: { dropped: number } };
  const ids = result.phase1.map((r) => r.id);
  const sequence = Array.from({ length: 300 }, (_, n) => n);
  assert.equal(result.phase1.length, 3);
  for (const r of result.phase1) {
    const others = ids.filter((id) => id !== r.id);
    assert.deepEqual(Object.keys(r.seen).sort(), [...others].sort(), `worker ${r.slot} hears the two others and not itself`);
    for (const origin of others) {
      assert.deepEqual(Object.keys(r.seen[origin]!).sort(), [...r.topics].sort(), `worker ${r.slot}: only its subscribed topics (never z)`);
      for (const topic of r.topics) assert.deepEqual(r.seen[origin]![topic], sequence, `worker ${r.slot}: ${origin}/${topic} complete and in order`);
    }
    assert.deepEqual(r.badPayloads, [], 'binary 64 KiB payloads arrive intact');
    assert.equal(r.stats.published, 900);
    assert.equal(r.stats.received, 2 * 300 * r.topics.length);
    assert.equal(r.stats.dropped, 0);
  }
  const flood = result.phase2.find((r) => r['flood'] !== undefined) as { flood: number; accepted: number; stats: { published: number; dropped: number } };
  assert.ok(flood.accepted >= 1 && flood.accepted < flood.flood, 'a queue bound of 1 drops most of a synchronous flood');
  assert.equal(flood.stats.published, flood.accepted);
  assert.equal(flood.stats.published + flood.stats.dropped, flood.flood);
  const receivers = result.phase2.filter((r) => r['flood'] === undefined) as Array<{ gaps: string[][]; flooderReceived: number; stats: { gaps: number } }>;
  assert.equal(receivers.length, 2);
  for (const r of receivers) {
    assert.deepEqual(r.gaps, [['a']], 'the subscribers of "a" hear of the gap');
    assert.equal(r.flooderReceived, flood.accepted, 'every accepted publish arrived');
    assert.equal(r.stats.gaps, 1);
  }
});
