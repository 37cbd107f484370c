// The Redis backplane against real redis-server processes (test/peers/redis.ts), never a mock: hosts
// in separate processes (test/peers/redis-host.ts) or in this one with distinct ids, and the failures
// the backplane must survive made for real (CLIENT KILL, SHUTDOWN NOSAVE and a restart, the server's
// output buffer limit, CLIENT PAUSE). Every wait is for an event or a state, bounded; no time is asserted.
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { after, afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import type { BackplaneStats, TopicMessage } from '../src/pubsub/backplane.ts';
import { type RedisBackplane, type RedisBackplaneStats, createRedisBackplane, decodeTopicMessage, encodeTopicMessage } from '../src/pubsub/redis.ts';
import { childEnv } from './command.ts';
import { memoryLogger } from './helpers.ts';
import type { HostEvent, HostRequest } from './peers/redis-host.ts';
import { type RedisServer, freePort, startRedis } from './peers/redis.ts';

const HOST_SCRIPT = fileURLToPath(new URL('./peers/redis-host.ts', import.meta.url));

/**
 * Waits until `predicate` resolves true, polling every 20 ms; fails after `ms` naming `what`. The bound
 * is generous on purpose: it only catches a hang, on a shared machine that may be very busy.
 */
async function until(predicate: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A plain client to inspect and break the server with. */
function adminClient(url: string) {
  // No reconnect: a test that shuts the server down wants this client gone with it.
  return createClient({ url, socket: { reconnectStrategy: false } });
}
type Admin = ReturnType<typeof adminClient>;

async function admin(server: RedisServer): Promise<Admin> {
  const client = adminClient(server.url);
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function channels(client: Admin): Promise<string[]> {
  return ((await client.sendCommand(['PUBSUB', 'CHANNELS', 'wsmod:*'])) as string[]).sort();
}

async function numsub(client: Admin, topic: string): Promise<number> {
  const reply = (await client.sendCommand(['PUBSUB', 'NUMSUB', `wsmod:${topic}`])) as [string, number];
  return Number(reply[1]);
}

/** A request without its `req` (each member of the union on its own). */
type HostRequestBody = HostRequest extends infer R ? (R extends unknown ? Omit<R, 'req'> : never) : never;

/** A host process with a backplane, and everything it reported. */
class HostProcess {
  readonly messages: Array<Extract<HostEvent, { ev: 'message' }>> = [];
  readonly gaps: Array<Extract<HostEvent, { ev: 'gap' }>> = [];
  id = '';
  readonly #child: ChildProcess;
  readonly #replies = new Map<number, (result: unknown) => void>();
  #nextReq = 0;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (event: HostEvent) => {
      if (event.ev === 'message') this.messages.push(event);
      else if (event.ev === 'gap') this.gaps.push(event);
      else if (event.ev === 'reply') {
        this.#replies.get(event.req)?.(event.result);
        this.#replies.delete(event.req);
      }
    });
  }

  /** Starts a host process; it is stopped after the test (even when it never became ready). */
  static async start(url: string): Promise<HostProcess> {
    const child = fork(HOST_SCRIPT, [url], { execArgv: ['--import', 'tsx'], env: childEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const host = new HostProcess(child);
    cleanups.push(() => host.close());
    // Generous: on a loaded machine, starting Node with the TypeScript loader can take many seconds.
    host.id = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('host process not ready after 60 s')), 60_000);
      child.on('message', (event: HostEvent) => {
        if (event.ev === 'ready') {
          clearTimeout(timer);
          resolve(event.id);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`host process exited (${code}) before it was ready`));
      });
    });
    return host;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  request(body: HostRequestBody): Promise<unknown> {
    const req = this.#nextReq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`host ${this.id}: no reply to ${body.op} after 60 s`)), 60_000);
      this.#replies.set(req, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      this.#child.send({ ...body, req });
    });
  }

  subscribe(topic: string): Promise<unknown> {
    return this.request({ op: 'subscribe', topic });
  }

  async publish(topic: string, data: Buffer, binary: boolean): Promise<boolean> {
    return (await this.request({ op: 'publish', topic, data: data.toString('base64'), binary })) as boolean;
  }

  async stats(): Promise<RedisBackplaneStats> {
    return (await this.request({ op: 'stats' })) as RedisBackplaneStats;
  }

  /** Closes its backplane and waits for the exit; a host that does not answer (or never started) is killed. */
  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGCONT');
      if (this.id === '') this.#child.kill('SIGKILL');
      else await this.request({ op: 'close' }).catch(() => this.#child.kill('SIGKILL'));
    }
    await this.#exited;
  }
}

// Everything a test starts, stopped after it whatever happened.
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function redis(port?: number): Promise<RedisServer> {
  const server = await startRedis(port);
  cleanups.push(() => server.stop());
  return server;
}

async function adminOf(server: RedisServer): Promise<Admin> {
  const client = await admin(server);
  cleanups.push(async () => {
    if (client.isOpen) client.destroy();
  });
  return client;
}

function hostProcess(server: RedisServer): Promise<HostProcess> {
  return HostProcess.start(server.url);
}

async function backplane(server: RedisServer, options: { maxQueue?: number; maxQueueBytes?: number } = {}): Promise<RedisBackplane> {
  const b = await createRedisBackplane({ url: server.url, reconnectDelay: { min: 20, max: 200 }, ...options });
  cleanups.push(() => b.close());
  await b.ready();
  return b;
}

/** Collects what `b` receives and the gaps it reports. */
function record(b: RedisBackplane): { messages: TopicMessage[]; gaps: Array<{ topics: readonly string[]; reason: string }> } {
  const out = { messages: [] as TopicMessage[], gaps: [] as Array<{ topics: readonly string[]; reason: string }> };
  b.onMessage = (m) => out.messages.push(m);
  b.onGap = (topics, reason) => out.gaps.push({ topics, reason });
  return out;
}

describe('the wire format', () => {
  test('carries origin, the binary flag and any bytes; anything else decodes to undefined', () => {
    const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (const binary of [true, false]) {
      const decoded = decodeTopicMessage('t', encodeTopicMessage({ topic: 't', data, binary, origin: 'host-é' }));
      assert.deepEqual(decoded, { topic: 't', data, binary, origin: 'host-é' });
    }
    const empty = decodeTopicMessage('t', encodeTopicMessage({ topic: 't', data: Buffer.alloc(0), binary: false, origin: '' }));
    assert.deepEqual(empty, { topic: 't', data: Buffer.alloc(0), binary: false, origin: '' });
    assert.equal(decodeTopicMessage('t', Buffer.from('hello')), undefined, 'not our version byte');
    assert.equal(decodeTopicMessage('t', Buffer.from([1, 0])), undefined, 'header cut short');
    assert.equal(decodeTopicMessage('t', Buffer.from([1, 0, 9, 0x61])), undefined, 'origin cut short');
  });
});

describe('Redis backplane', () => {
  after(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  test('two host processes deliver to each other, binary-safe; a host ignores its own publishes', { timeout: 180_000 }, async () => {
    const server = await redis();
    const client = await adminOf(server);
    const [a, b] = await Promise.all([hostProcess(server), hostProcess(server)]);
    await Promise.all([a.subscribe('room'), b.subscribe('room')]);
    await until(async () => (await numsub(client, 'room')) === 2, 'both hosts subscribed');

    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    assert.equal(await a.publish('room', bytes, true), true);
    assert.equal(await a.publish('room', Buffer.from('héllo'), false), true);
    await until(() => b.messages.length === 2, 'b received both');
    assert.deepEqual(
      b.messages.map((m) => [m.origin, m.binary, Buffer.from(m.data!, 'base64')]),
      [
        [a.id, true, bytes],
        [a.id, false, Buffer.from('héllo')],
      ],
    );
    // Redis sends a channel's messages to a subscriber in the order it ran the PUBLISHes: once a
    // saw b's reply, it had already been handed its own two publishes, and must have ignored them.
    assert.equal(await b.publish('room', Buffer.from('reply'), false), true);
    await until(() => a.messages.length > 0, 'a received b');
    assert.deepEqual(a.messages.map((m) => [m.origin, Buffer.from(m.data!, 'base64').toString()]), [[b.id, 'reply']]);
    assert.equal(b.messages.length, 2, 'b ignored its own reply');
    const stats = await a.stats();
    assert.equal(stats.connected, true);
    assert.equal(stats.published, 2);
    assert.equal(stats.received, 1);
    assert.equal(stats.dropped, 0);
  });

  test('subscribes one channel per topic in use, and no pattern', { timeout: 180_000 }, async () => {
    const server = await redis();
    const client = await adminOf(server);
    const a = await backplane(server);
    const b = await backplane(server);
    const got = record(b);
    a.subscribe('a');
    a.subscribe('b');
    a.subscribe('a'); // a second call for a topic in use changes nothing
    await until(async () => (await channels(client)).join() === 'wsmod:a,wsmod:b', 'wsmod:a and wsmod:b');
    assert.equal(a.stats.topics, 2);
    a.unsubscribe('a');
    await until(async () => (await channels(client)).join() === 'wsmod:b', 'only wsmod:b');
    assert.equal(Number(await client.sendCommand(['PUBSUB', 'NUMPAT'])), 0);
    // b subscribed to nothing, so it receives nothing: its marker topic proves the messages went by.
    b.subscribe('marker');
    await until(async () => (await numsub(client, 'marker')) === 1, 'b subscribed to marker');
    a.publish({ topic: 'b', data: Buffer.from('x'), binary: false, origin: a.id });
    a.publish({ topic: 'marker', data: Buffer.from('m'), binary: false, origin: a.id });
    await until(() => got.messages.length > 0, 'the marker');
    assert.deepEqual(got.messages.map((m) => m.topic), ['marker']);

    // The last subscriber leaves and a new one comes in the same tick: subscribed once, not twice.
    const mine = record(a);
    a.unsubscribe('b');
    a.subscribe('b');
    let probe = 0;
    await until(() => {
      b.publish({ topic: 'b', data: Buffer.from(`probe ${probe++}`), binary: false, origin: b.id });
      return mine.messages.length > 0;
    }, 'a subscribed to b again');
    b.publish({ topic: 'b', data: Buffer.from('end'), binary: false, origin: b.id });
    await until(() => mine.messages.some((m) => m.data.toString() === 'end'), 'the end marker');
    const texts = mine.messages.map((m) => m.data.toString());
    assert.equal(new Set(texts).size, texts.length, `each message once: ${texts.join(', ')}`);
    assert.deepEqual(await channels(client), ['wsmod:b', 'wsmod:marker']);
  });

  test('starts while Redis is unreachable: publishes dropped and counted, connects once Redis is up', { timeout: 180_000 }, async () => {
    const port = await freePort();
    const logger = memoryLogger();
    const b = await createRedisBackplane({ url: `redis://127.0.0.1:${port}`, reconnectDelay: { min: 20, max: 200 }, logger });
    cleanups.push(() => b.close());
    b.subscribe('early');
    assert.equal(b.publish({ topic: 'early', data: Buffer.from('x'), binary: false, origin: b.id }), false);
    assert.deepEqual({ connected: b.stats.connected, dropped: b.stats.dropped }, { connected: false, dropped: 1 });
    // Every failed attempt is an 'error' from node-redis; the log gets one warning per connection.
    await until(() => logger.entries.filter((e) => e.level === 'debug').length >= 2, 'a few failed attempts');
    assert.equal(logger.entries.filter((e) => e.level === 'warn').length, 2, 'one warning for each connection');

    const server = await redis(port);
    const client = await adminOf(server);
    await b.ready();
    // The subscribe issued while down reached Redis once it was up.
    await until(async () => (await numsub(client, 'early')) === 1, 'subscribed after connecting');
    const got = record(b);
    await client.publish('wsmod:early', encodeTopicMessage({ topic: 'early', data: Buffer.from('hi'), binary: false, origin: 'other' }));
    await client.publish('wsmod:early', Buffer.from('not ours'));
    await client.publish('wsmod:early', encodeTopicMessage({ topic: 'early', data: Buffer.from('end'), binary: false, origin: 'other' }));
    await until(() => got.messages.length === 2, 'two messages');
    assert.deepEqual(got.messages.map((m) => m.data.toString()), ['hi', 'end']);
    assert.equal(b.stats.invalid, 1, 'the foreign message was counted and ignored');
    assert.equal(b.stats.gaps, 0, 'a first connection is no gap');
  });

  test('a broker callback that throws is logged; delivery goes on', { timeout: 180_000 }, async () => {
    const server = await redis();
    const client = await adminOf(server);
    const logger = memoryLogger();
    const b = await createRedisBackplane({ url: server.url, logger });
    cleanups.push(() => b.close());
    await b.ready();
    const seen: string[] = [];
    b.onMessage = (m) => {
      seen.push(m.data.toString());
      if (seen.length === 1) throw new Error('broker fault');
    };
    b.subscribe('t');
    await until(async () => (await numsub(client, 't')) === 1, 'subscribed');
    for (const text of ['one', 'two']) {
      await client.publish('wsmod:t', encodeTopicMessage({ topic: 't', data: Buffer.from(text), binary: false, origin: 'other' }));
    }
    await until(() => seen.length === 2, 'both messages');
    assert.deepEqual(seen, ['one', 'two']);
    assert.equal(logger.entries.filter((e) => e.level === 'error').length, 1);
    assert.equal(b.stats.connected, true);
    assert.equal(b.stats.reconnects, 0, 'the fault did not break the connection');
  });

  test('CLIENT KILL TYPE pubsub: resubscribed automatically, the gap counted and reported', { timeout: 180_000 }, async () => {
    const server = await redis();
    const client = await adminOf(server);
    const sub = await backplane(server);
    const pub = await backplane(server);
    const got = record(sub);
    sub.subscribe('t1');
    sub.subscribe('t2');
    await until(async () => (await channels(client)).join() === 'wsmod:t1,wsmod:t2', 'subscribed');

    const killed = Number(await client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']));
    assert.ok(killed >= 1, 'the subscriber connection was killed');
    await until(() => got.gaps.length > 0, 'onGap');
    assert.deepEqual([...got.gaps[0]!.topics].sort(), ['t1', 't2']);
    assert.equal(sub.stats.gaps, 1);
    assert.equal(sub.stats.reconnects, 1);
    assert.equal(sub.stats.connected, true);
    // 'ready' comes after node-redis's resubscribe: both channels are back.
    assert.deepEqual(await channels(client), ['wsmod:t1', 'wsmod:t2']);
    pub.publish({ topic: 't2', data: Buffer.from('after'), binary: false, origin: pub.id });
    await until(() => got.messages.length > 0, 'delivery after the kill');
    assert.equal(got.messages[0]!.data.toString(), 'after');
    assert.equal(pub.stats.gaps, 0, 'the publisher lost nothing');
  });

  test('SHUTDOWN NOSAVE and a restart on the same port: reconnect, resubscribe, gap reported, delivery resumes', { timeout: 180_000 }, async () => {
    const server = await redis();
    const client = await adminOf(server);
    const [a, b] = await Promise.all([hostProcess(server), hostProcess(server)]);
    await Promise.all([a.subscribe('news'), b.subscribe('news')]);
    await until(async () => (await numsub(client, 'news')) === 2, 'both subscribed');

    await client.sendCommand(['SHUTDOWN', 'NOSAVE']).catch(() => undefined);
    await server.exited;
    await until(async () => !(await a.stats()).connected, 'a sees Redis gone');
    // Redis is down: the publish is dropped and counted at once, never held.
    assert.equal(await a.publish('news', Buffer.from('lost'), false), false);
    assert.equal((await a.stats()).dropped, 1);

    const restarted = await redis(server.port);
    const client2 = await adminOf(restarted);
    await until(() => a.gaps.length > 0 && b.gaps.length > 0, 'both hosts report the gap');
    assert.deepEqual(a.gaps[0]!.topics, ['news']);
    assert.deepEqual(b.gaps[0]!.topics, ['news']);
    assert.equal(await numsub(client2, 'news'), 2, 'both resubscribed on the new server');
    await until(async () => (await a.stats()).connected, 'a publisher back');
    assert.equal(await a.publish('news', Buffer.from('back'), false), true);
    await until(() => b.messages.length > 0, 'delivery resumes');
    assert.deepEqual(b.messages.map((m) => Buffer.from(m.data!, 'base64').toString()), ['back']);
    await until(async () => (await b.stats()).connected, 'b publisher back');
    const stats = await b.stats();
    assert.equal(stats.gaps, 1);
    assert.ok(stats.reconnects >= 2, 'both connections of b came back');
  });

  test("a flood past client-output-buffer-limit pubsub: Redis drops the subscriber; detected and counted", { timeout: 180_000 }, async () => {
    const server = await redis();
    const client = await adminOf(server);
    const host = await hostProcess(server);
    await host.subscribe('flood');
    await until(async () => (await numsub(client, 'flood')) === 1, 'subscribed');
    await client.sendCommand(['CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 64kb 32kb 1']);

    // A stopped host reads nothing, as a host whose event loop is stuck: its output buffer in Redis
    // grows past the limit once the kernel's socket buffers are full.
    process.kill(host.pid, 'SIGSTOP');
    const big = encodeTopicMessage({ topic: 'flood', data: Buffer.alloc(16 * 1024, 0x61), binary: false, origin: 'flooder' });
    let receivers = 1;
    let sent = 0;
    while (receivers > 0) {
      assert.ok(sent < 20_000, 'Redis never dropped the subscriber');
      receivers = await client.publish('wsmod:flood', big);
      sent++;
    }
    process.kill(host.pid, 'SIGCONT');
    await until(() => host.gaps.length > 0, 'the gap after the drop');
    assert.deepEqual(host.gaps[0]!.topics, ['flood']);
    const stats = await host.stats();
    assert.equal(stats.gaps, 1);
    assert.ok(stats.received < sent, 'some of the flood was lost');
    // Resubscribed: small messages flow again (under the limit).
    const before = host.messages.length;
    await until(async () => (await numsub(client, 'flood')) === 1, 'resubscribed');
    await client.publish('wsmod:flood', encodeTopicMessage({ topic: 'flood', data: Buffer.from('small'), binary: false, origin: 'flooder' }));
    await until(() => host.messages.slice(before).some((m) => m.data !== null && Buffer.from(m.data, 'base64').toString() === 'small'), 'delivery after the drop');
  });

  test('CLIENT PAUSE WRITE: publish never waits, the queue stays within its bounds, drops are counted', { timeout: 180_000 }, async () => {
    const server = await redis();
    const client = await adminOf(server);
    const pub = await backplane(server, { maxQueue: 100, maxQueueBytes: 64 * 1024 });
    const sub = await backplane(server);
    const got = record(sub);
    sub.subscribe('p');
    await until(async () => (await numsub(client, 'p')) === 1, 'subscribed');

    await client.sendCommand(['CLIENT', 'PAUSE', '2000', 'WRITE']);
    let accepted = 0;
    let refused = 0;
    let most: RedisBackplaneStats = pub.stats;
    // Batches with the event loop turning between them, as a host's connections would publish.
    for (let batch = 0; batch < 20; batch++) {
      for (let i = 0; i < 50; i++) {
        const seq = batch * 50 + i;
        const data = Buffer.alloc(1000);
        data.writeUInt16BE(seq, 0);
        if (pub.publish({ topic: 'p', data, binary: true, origin: pub.id })) accepted++;
        else refused++;
        const s = pub.stats;
        if (s.queuedBytes > most.queuedBytes || s.queued > most.queued) most = s;
      }
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(most.queued <= 100 && most.queuedBytes <= 64 * 1024, `queue within bounds: ${most.queued} messages, ${most.queuedBytes} bytes`);
    assert.ok(refused > 0, 'over the bound, publishes were refused');
    assert.equal(pub.stats.dropped, refused);

    // When the pause ends, everything accepted goes out, in order.
    await until(() => pub.stats.queued === 0, 'the queue drained');
    assert.equal(pub.stats.published, accepted);
    await until(() => got.messages.length === accepted, 'every accepted publish delivered');
    const firsts = got.messages.map((m) => m.data.readUInt16BE(0));
    assert.deepEqual(firsts, [...firsts].sort((x, y) => x - y), 'in publish order');
  });

  test('N publishers × M topics across three host processes: per (publisher, topic) order on every subscriber', { timeout: 180_000 }, async () => {
    const server = await redis();
    const client = await adminOf(server);
    const hosts = await Promise.all([hostProcess(server), hostProcess(server), hostProcess(server)]);
    const topics = ['t0', 't1', 't2', 't3'];
    const count = 300;
    await Promise.all(hosts.flatMap((h) => topics.map((t) => h.subscribe(t))));
    for (const t of topics) await until(async () => (await numsub(client, t)) === 3, `three subscribers on ${t}`);

    const accepted = await Promise.all(hosts.map((h) => h.request({ op: 'sequence', topics, count })));
    assert.deepEqual(accepted, [count * topics.length, count * topics.length, count * topics.length], 'nothing dropped');
    const expected = (hosts.length - 1) * topics.length * count;
    for (const h of hosts) await until(() => h.messages.length >= expected, `${expected} messages on host ${h.id}`, 60_000);

    for (const h of hosts) {
      assert.equal(h.messages.length, expected);
      const seqs = new Map<string, number[]>();
      for (const m of h.messages) {
        assert.notEqual(m.origin, h.id, 'no echo of its own');
        const key = `${m.origin} ${m.topic}`;
        const list = seqs.get(key) ?? [];
        list.push(Number(Buffer.from(m.data!, 'base64').toString()));
        seqs.set(key, list);
      }
      assert.equal(seqs.size, (hosts.length - 1) * topics.length);
      for (const [key, list] of seqs) assert.deepEqual(list, Array.from({ length: count }, (_, i) => i), `order of ${key} on ${h.id}`);
    }
    const totals: BackplaneStats[] = await Promise.all(hosts.map((h) => h.stats()));
    for (const s of totals) {
      assert.equal(s.dropped, 0);
      assert.equal(s.published, count * topics.length);
      assert.equal(s.received, expected);
    }
  });
});
