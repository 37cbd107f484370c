// The chat example across two `wsmod serve` processes that share a real redis-server (the
// configuration's `backplane: { redis }`): a message sent on one host reaches the room's members on
// both, the sender included, text as text and binary as binary, in order; a python3-websockets
// client (Debian's) takes part as well. Each host serves its own clients; Redis carries the rest.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { type RedisServer, startRedis } from './peers/redis.ts';

const CLI = fileURLToPath(new URL('../dist/cli/wsmod.js', import.meta.url));
const CHAT = fileURLToPath(new URL('../examples/chat.ts', import.meta.url));
const PYTHON = '/usr/bin/python3';

let redis: RedisServer;
let dir: string;
const hosts: ChildProcess[] = [];

/** Starts `wsmod serve` on a free port; resolves with the chat route's URL once it listens. */
function serve(config: string): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'serve', config, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  hosts.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not listen: ${out}`)), 30_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const m = /wsmod listening on (ws:\/\/\S+\/chat)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${String(code)}): ${out}`));
    });
  });
}

interface Member {
  readonly ws: WebSocket;
  readonly got: Array<{ text: string; isBinary: boolean }>;
}

async function member(url: string): Promise<Member> {
  const ws = new WebSocket(url);
  const got: Member['got'] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => got.push({ text: data.toString(), isBinary }));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, got };
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'wsmod-chat-redis-'));
  const config = join(dir, 'wsmod.config.yaml');
  writeFileSync(config, `backplane:\n  redis:\n    url: ${redis.url}\nroutes:\n  - path: /chat\n    plugin: ${JSON.stringify(CHAT)}\n    origin: any\n`);
});

after(async () => {
  for (const h of hosts) if (h.exitCode === null) h.kill('SIGTERM');
  await Promise.all(hosts.map((h) => (h.exitCode !== null ? undefined : new Promise((r) => h.once('exit', r)))));
  await redis?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test('chat rooms span two hosts on one Redis: every member gets every message, in order, text and binary kept', { timeout: 120_000 }, async () => {
  const config = join(dir, 'wsmod.config.yaml');
  const [urlA, urlB] = await Promise.all([serve(config), serve(config)]);
  assert.notEqual(urlA, urlB);
  const a = await member(urlA!);
  const b = await member(urlB!);
  const b2 = await member(urlB!);
  // The subscription of host B reaches Redis asynchronously: wait until a probe crosses.
  let probes = 0;
  await until(() => {
    if (b.got.some((m) => m.text.startsWith('probe'))) return true;
    a.ws.send(`probe ${probes++}`);
    return false;
  }, 'the first message from host A on host B');
  for (const m of [a, b, b2]) m.got.length = 0;

  const n = 50;
  for (let i = 0; i < n; i++) {
    if (i % 5 === 0) a.ws.send(Buffer.from(`bin ${i}`));
    else a.ws.send(`text ${i}`);
  }
  b.ws.send('from b');
  const expectedFromA = Array.from({ length: n }, (_, i) => ({ text: i % 5 === 0 ? `bin ${i}` : `text ${i}`, isBinary: i % 5 === 0 }));
  for (const m of [a, b, b2]) {
    await until(() => m.got.length === n + 1, `all ${n + 1} messages at one member`);
    const fromA = m.got.filter((g) => g.text !== 'from b');
    assert.deepEqual(fromA, expectedFromA, 'per-publisher order kept, and each message keeps its type');
    assert.ok(m.got.some((g) => g.text === 'from b' && !g.isBinary));
  }
  for (const m of [a, b, b2]) m.ws.close();
});

test('a python3-websockets client on one host chats with a ws client on the other', { timeout: 120_000 }, async () => {
  const config = join(dir, 'wsmod.config.yaml');
  const [urlA, urlB] = await Promise.all([serve(config), serve(config)]);
  const a = await member(urlA!);
  // The Python member sends a probe until it hears it back through the room, then says hello and
  // prints every message it receives until it hears "bye".
  // The Python member says "python here" every 100 ms (the hosts' Redis subscriptions complete in
  // their own time) until host A's member answers, then prints what it receives until "bye".
  const script = `
import asyncio, sys
from websockets.client import connect
async def main():
    async with connect(sys.argv[1]) as ws:
        async def announce():
            while True:
                await ws.send("python here")
                await asyncio.sleep(0.1)
        announcer = asyncio.ensure_future(announce())
        while True:
            m = await ws.recv()
            if m == "python here":
                continue
            announcer.cancel()
            print(m, flush=True)
            if m == "bye":
                return
asyncio.run(main())
`;
  const py = spawn(PYTHON, ['-c', script, urlB!], { stdio: ['ignore', 'pipe', 'pipe'] });
  hosts.push(py);
  let printed = '';
  let errors = '';
  py.stdout!.on('data', (c: Buffer) => (printed += c.toString()));
  py.stderr!.on('data', (c: Buffer) => (errors += c.toString()));
  py.once('error', (err) => (errors += String(err)));
  // Host A's member hears the Python member once host B's subscription and publish crossed Redis.
  await until(() => a.got.some((m) => m.text === 'python here') || py.exitCode !== null, 'the Python member on host A');
  assert.ok(a.got.some((m) => m.text === 'python here'), `python3-websockets failed: ${errors}`);
  a.ws.send('hello python');
  a.ws.send('bye');
  await new Promise((r) => (py.exitCode !== null ? r(undefined) : py.once('exit', r)));
  assert.equal(py.exitCode, 0, errors);
  const lines = printed.trim().split('\n');
  assert.deepEqual(lines.slice(-2), ['hello python', 'bye']);
  a.ws.close();
});
