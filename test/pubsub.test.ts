// Topics in one host, end to end: real `ws` clients (with and without permessage-deflate) against a
// host serving test/fixtures/pubsub-plugin.ts inline and in a worker, raw TCP clients that do not
// read (slow subscribers), and two hosts joined by the in-memory backplane. No timing is asserted:
// "keeps receiving" means every message arrives, in order.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import type { RouteOptions } from '../src/host/options.ts';
import { createWorkerPlugin } from '../src/plugin/isolation/worker.ts';
import pubsubPlugin from './fixtures/pubsub-plugin.ts';
import { closeCodeOf, memoryLogger, parseServerFrames, rawClient, startHost, until } from './helpers.ts';
import { MemoryBackplane, MemoryBus } from './memory-backplane.ts';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const TIMEOUT = { timeout: 60_000 };

interface Received {
  readonly text: string;
  readonly isBinary: boolean;
}

/** A `ws` client whose messages queue up until taken, with the fixture's commands. */
class Peer {
  readonly ws: WebSocket;
  readonly #queue: Received[] = [];
  readonly #waiting: Array<(m: Received) => void> = [];
  readonly closed: Promise<number>;
  /** The Sec-WebSocket-Extensions the server answered with ('' when none). */
  extensions = '';

  private constructor(url: string, options: WebSocket.ClientOptions) {
    this.ws = new WebSocket(url, options);
    this.ws.once('upgrade', (res) => (this.extensions = String(res.headers['sec-websocket-extensions'] ?? '')));
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      const m = { text: data.toString(), isBinary };
      const w = this.#waiting.shift();
      if (w !== undefined) w(m);
      else this.#queue.push(m);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code: number) => resolve(code)));
  }

  static async open(url: string, options: WebSocket.ClientOptions = {}): Promise<Peer> {
    const peer = new Peer(url, options);
    await new Promise<void>((resolve, reject) => {
      peer.ws.once('open', () => resolve());
      peer.ws.once('error', reject);
    });
    return peer;
  }

  next(): Promise<Received> {
    const m = this.#queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  command(cmd: object): void {
    this.ws.send(JSON.stringify(cmd));
  }

  /** Sends a command and returns the next message, parsed ({reply} or {error}). */
  async ask(cmd: object): Promise<{ reply?: unknown; error?: string }> {
    this.command(cmd);
    return JSON.parse((await this.next()).text) as { reply?: unknown; error?: string };
  }

  async sub(...topics: string[]): Promise<void> {
    for (const topic of topics) assert.deepEqual(await this.ask({ op: 'sub', topic }), { reply: true });
  }

  close(): Promise<number> {
    this.ws.close(1000);
    return this.closed;
  }
}

function route(path: string, extra: Partial<RouteOptions> = {}): RouteOptions {
  return { path, plugin: pubsubPlugin, ...extra };
}

describe('topics in one host', TIMEOUT, () => {
  test('fan-out: one publish reaches every subscriber, text as text and binary as binary; the publisher is left out by default', async () => {
    const h = await startHost([route('/ps')]);
    try {
      const subscribers = await Promise.all(Array.from({ length: 40 }, () => Peer.open(`${h.base}/ps`)));
      for (const s of subscribers) await s.sub('news');
      const publisher = await Peer.open(`${h.base}/ps`);
      await publisher.sub('news');
      assert.deepEqual(await publisher.ask({ op: 'pub', topic: 'news', data: 'hello', ack: true }), { reply: 40 }, 'reached 40, not itself');
      publisher.command({ op: 'pub', topic: 'news', data: 'bytes', binary: true });
      for (const s of subscribers) {
        assert.deepEqual(await s.next(), { text: 'hello', isBinary: false });
        assert.deepEqual(await s.next(), { text: 'bytes', isBinary: true });
      }
      // Its own publishes would have come before this reply.
      assert.deepEqual(await publisher.ask({ op: 'topics' }), { reply: ['news'] });
      assert.equal(h.host.broker.stats.delivered, 80);
      await Promise.all([...subscribers, publisher].map((p) => p.close()));
      await until(() => h.host.broker.stats.subscriptions === 0, 5000, 'closed sessions release their topics');
      assert.equal(h.host.broker.stats.topics, 0);
    } finally {
      await h.close();
    }
  });

  test('exceptSelf: false includes the publisher; unsubscribe stops delivery', async () => {
    const h = await startHost([route('/ps')]);
    try {
      const a = await Peer.open(`${h.base}/ps`);
      const b = await Peer.open(`${h.base}/ps`);
      await a.sub('t', 'marker');
      await b.sub('t', 'marker');
      a.command({ op: 'pub', topic: 't', data: 'mine too', exceptSelf: false });
      assert.deepEqual(await a.next(), { text: 'mine too', isBinary: false });
      assert.deepEqual(await b.next(), { text: 'mine too', isBinary: false });
      assert.deepEqual(await b.ask({ op: 'unsub', topic: 't' }), { reply: true });
      assert.deepEqual(await b.ask({ op: 'unsub', topic: 't' }), { reply: false });
      a.command({ op: 'pub', topic: 't', data: 'not for b' });
      a.command({ op: 'pub', topic: 'marker', data: 'marker' });
      assert.deepEqual(await b.next(), { text: 'marker', isBinary: false }, 't was not delivered after unsubscribe');
      assert.deepEqual(await b.ask({ op: 'topics' }), { reply: ['marker'] });
    } finally {
      await h.close();
    }
  });

  test('a publish without a session: the host handle given to onStart', async () => {
    const h = await startHost([route('/ps')]);
    try {
      const a = await Peer.open(`${h.base}/ps`);
      const b = await Peer.open(`${h.base}/ps`);
      await b.sub('feed');
      assert.deepEqual(await a.ask({ op: 'hostpub', topic: 'feed', data: 'from the host' }), { reply: 1 });
      assert.deepEqual(await b.next(), { text: 'from the host', isBinary: false });
      assert.equal(h.host.broker.publish('feed', 'from the embedder', false), 1);
      assert.deepEqual(await b.next(), { text: 'from the embedder', isBinary: false });
    } finally {
      await h.close();
    }
  });

  test('topic validation and the maxTopics cap: coded errors, the session stays open', async () => {
    const h = await startHost([route('/ps', { maxTopics: 2 }), route('/none', { maxTopics: 0 })]);
    try {
      const a = await Peer.open(`${h.base}/ps`);
      for (const topic of ['', 'x'.repeat(257), 'a\u0000b', 'line\nbreak', 5]) {
        assert.deepEqual(await a.ask({ op: 'sub', topic }), { error: 'WSMOD_ERR_TOPIC_INVALID' }, JSON.stringify(topic));
      }
      assert.deepEqual(await a.ask({ op: 'pub', topic: '', data: 'x' }), { error: 'WSMOD_ERR_TOPIC_INVALID' });
      await a.sub('one', 'two');
      assert.deepEqual(await a.ask({ op: 'sub', topic: 'three' }), { error: 'WSMOD_ERR_TOO_MANY_TOPICS' });
      assert.deepEqual(await a.ask({ op: 'sub', topic: 'two' }), { reply: false }, 'an existing topic is no new one');
      await a.ask({ op: 'unsub', topic: 'one' });
      await a.sub('three');
      const none = await Peer.open(`${h.base}/none`);
      assert.deepEqual(await none.ask({ op: 'sub', topic: 'x' }), { error: 'WSMOD_ERR_TOO_MANY_TOPICS' });
      assert.equal(a.ws.readyState, WebSocket.OPEN);
    } finally {
      await h.close();
    }
  });

  test('per-(publisher, topic) order, and a session’s direct sends and publishes stay in order', async () => {
    const h = await startHost([route('/ps')]);
    try {
      const sub = await Peer.open(`${h.base}/ps`);
      await sub.sub('a', 'b');
      const pubs = await Promise.all([Peer.open(`${h.base}/ps`), Peer.open(`${h.base}/ps`)]);
      for (let i = 0; i < 200; i++) pubs[i % 2]!.command({ op: 'pub', topic: i % 4 < 2 ? 'a' : 'b', data: `${i % 2}:${i}` });
      const last = new Map<string, number>();
      for (let n = 0; n < 200; n++) {
        const { text } = await sub.next();
        const [who, seq] = text.split(':');
        assert.ok(Number(seq) > (last.get(who!) ?? -1), `publisher ${who}: ${seq} after ${last.get(who!)}`);
        last.set(who!, Number(seq));
      }
      const self = await Peer.open(`${h.base}/ps`);
      await self.sub('mix');
      self.command({ op: 'mixed', topic: 'mix', count: 60, big: 3000 });
      for (let i = 0; i < 60; i++) assert.equal((await self.next()).text.split(':')[0], String(i));
    } finally {
      await h.close();
    }
  });
});

describe('slow subscribers', TIMEOUT, () => {
  /**
   * Publishes numbered 16 KiB messages from the host, letting the event loop run between them, until
   * the broker has counted a slow subscriber's first drop (or close), then `extra` more.
   */
  async function flood(h: Awaited<ReturnType<typeof startHost>>, done: () => boolean, extra = 20): Promise<number> {
    const filler = 'x'.repeat(16 * 1024);
    let n = 0;
    let after = -1;
    while (after < extra) {
      h.host.broker.publish('flood', `${n++}:${filler}`, false);
      if (after >= 0 || done()) after++;
      await new Promise((resolve) => setImmediate(resolve));
      if (n > 100_000) throw new Error('the slow subscriber was never over maxBackpressure');
    }
    return n;
  }

  for (const policy of ['drop', 'close'] as const) {
    test(`slowSubscriber: ${policy} — the reader that stopped is ${policy === 'drop' ? 'dropped' : 'closed with 1013'} and counted; the others receive everything in order`, async () => {
      const h = await startHost([route('/ps', { maxBackpressure: 64 * 1024, slowSubscriber: policy })]);
      try {
        const fast = await Promise.all(Array.from({ length: 3 }, () => Peer.open(`${h.base}/ps`)));
        for (const f of fast) await f.sub('flood');
        const slow = await rawClient(h.port, '/ps');
        slow.frame(0x1, JSON.stringify({ op: 'sub', topic: 'flood' }));
        await until(() => h.host.broker.subscribers('flood') === 4, 5000, 'the raw client subscribed');
        slow.socket.pause(); // stops reading: the kernel buffers fill, then the host's queue for it
        const stats = h.host.broker.stats;
        const n = await flood(h, () => (policy === 'drop' ? h.host.broker.stats.dropped > 0 : h.host.broker.stats.slowClosed > 0));
        for (const f of fast) {
          for (let i = 0; i < n; i++) assert.equal((await f.next()).text.split(':')[0], String(i));
        }
        const after = h.host.broker.stats;
        if (policy === 'drop') {
          assert.ok(after.dropped > stats.dropped);
          assert.equal(after.slowClosed, 0);
        } else {
          assert.equal(after.slowClosed, 1);
        }
        // The slow reader reads again: everything it was sent is well-formed, and with `close` the last frame is a 1013 close.
        slow.socket.resume();
        if (policy === 'close') {
          const frames = parseServerFrames(await slow.closed());
          const last = frames.at(-1)!;
          assert.equal(last.opcode, 0x8);
          assert.equal(closeCodeOf(last.payload), 1013);
          const seqs = frames.filter((f) => f.opcode === 0x1 && f.payload[0] !== 0x7b).map((f) => Number(f.payload.toString().split(':')[0]));
          assert.deepEqual(seqs, seqs.map((_, i) => i), 'what it got before the close is the start of the sequence, no gaps');
          await until(() => h.host.broker.subscribers('flood') === 3, 5000, 'the closed subscriber left the topic');
        } else {
          slow.socket.destroy();
        }
      } finally {
        await h.close();
      }
    });
  }
});

describe('compressed subscribers (permessage-deflate, verified by ws)', TIMEOUT, () => {
  const big = 'compress me '.repeat(400);

  test('without context takeover: one compression per publish, shared by every subscriber', async () => {
    const h = await startHost([route('/z', { compression: { threshold: 100, serverNoContextTakeover: true } })]);
    try {
      const peers = await Promise.all(Array.from({ length: 8 }, () => Peer.open(`${h.base}/z`, { perMessageDeflate: true })));
      for (const p of peers) assert.match(p.extensions, /server_no_context_takeover/);
      for (const p of peers) await p.sub('z');
      const before = h.host.zlibPool.completed;
      assert.equal(h.host.broker.publish('z', big, false), 8);
      assert.equal(h.host.broker.publish('z', Buffer.from(big), true), 8);
      for (const p of peers) {
        assert.deepEqual(await p.next(), { text: big, isBinary: false });
        assert.deepEqual(await p.next(), { text: big, isBinary: true });
      }
      assert.equal(h.host.zlibPool.completed - before, 2, 'two publishes, two compressions for eight subscribers');
    } finally {
      await h.close();
    }
  });

  test('with context takeover: each subscriber compresses its own, and small messages go uncompressed', async () => {
    const h = await startHost([route('/z', { compression: { threshold: 100, serverNoContextTakeover: false } })]);
    try {
      const peers = await Promise.all(Array.from({ length: 4 }, () => Peer.open(`${h.base}/z`, { perMessageDeflate: true })));
      for (const p of peers) assert.doesNotMatch(p.extensions, /server_no_context_takeover/);
      for (const p of peers) await p.sub('z');
      const before = h.host.zlibPool.completed;
      for (let i = 0; i < 3; i++) h.host.broker.publish('z', `${i}${big}`, false);
      h.host.broker.publish('z', 'small', false);
      for (const p of peers) {
        for (let i = 0; i < 3; i++) assert.equal((await p.next()).text, `${i}${big}`);
        assert.equal((await p.next()).text, 'small');
      }
      assert.equal(h.host.zlibPool.completed - before, 12, 'three large publishes × four subscribers');
    } finally {
      await h.close();
    }
  });

  test('compressed and uncompressed subscribers of one topic, and the order across compression queues', async () => {
    const h = await startHost([route('/z', { compression: { threshold: 100 } }), route('/plain')]);
    try {
      const z = await Peer.open(`${h.base}/z`, { perMessageDeflate: true });
      const plain = await Peer.open(`${h.base}/plain`, { perMessageDeflate: true });
      assert.equal(plain.extensions, '', 'the plain route does not compress');
      await z.sub('mix');
      await plain.sub('mix');
      z.command({ op: 'mixed', topic: 'mix', count: 60, big: 3000 });
      for (let i = 0; i < 60; i++) assert.equal((await z.next()).text.split(':')[0], String(i));
      for (let i = 0; i < 60; i += 2) assert.equal((await plain.next()).text.split(':')[0], String(i));
    } finally {
      await h.close();
    }
  });
});

describe('worker-isolated plugins', TIMEOUT, () => {
  test('a worker plugin subscribes, publishes (session and host handle) and hears inline publishes: one host-wide broker', async () => {
    const log = memoryLogger();
    const worker = await createWorkerPlugin({ specifier: './pubsub-plugin.ts', baseDir: fixtures, path: '/w', log });
    const h = await startHost([route('/ps', { maxTopics: 3 }), { path: '/w', plugin: worker, maxTopics: 2 }]);
    try {
      const w = await Peer.open(`${h.base}/w`);
      const w2 = await Peer.open(`${h.base}/w`);
      const inline = await Peer.open(`${h.base}/ps`);
      assert.deepEqual(await w.ask({ op: 'where' }), { reply: 'worker' });
      await w.sub('room');
      await w2.sub('room');
      await inline.sub('room');
      assert.deepEqual(await w.ask({ op: 'topics' }), { reply: ['room'] });
      // The worker's runtime applies the route's cap and the name rules itself.
      await w.sub('second');
      assert.deepEqual(await w.ask({ op: 'sub', topic: 'third' }), { error: 'WSMOD_ERR_TOO_MANY_TOPICS' });
      assert.deepEqual(await w.ask({ op: 'sub', topic: '' }), { error: 'WSMOD_ERR_TOPIC_INVALID' });
      // From the worker: its publish result is unknown in the worker (null here); exceptSelf by default.
      assert.deepEqual(await w.ask({ op: 'pub', topic: 'room', data: 'from worker', ack: true }), { reply: null });
      assert.deepEqual(await w2.next(), { text: 'from worker', isBinary: false });
      assert.deepEqual(await inline.next(), { text: 'from worker', isBinary: false });
      inline.command({ op: 'pub', topic: 'room', data: 'bin', binary: true });
      assert.deepEqual(await w.next(), { text: 'bin', isBinary: true });
      assert.deepEqual(await w2.next(), { text: 'bin', isBinary: true });
      w.command({ op: 'hostpub', topic: 'room', data: 'host handle' });
      // The publish went to the host before the reply did: w hears it first (the host handle has no self to leave out).
      assert.deepEqual(await w.next(), { text: 'host handle', isBinary: false });
      assert.deepEqual(JSON.parse((await w.next()).text), { reply: null });
      assert.deepEqual(await w2.next(), { text: 'host handle', isBinary: false });
      assert.deepEqual(await inline.next(), { text: 'host handle', isBinary: false });
      // Order of a worker session's sends and publishes.
      assert.deepEqual(await w.ask({ op: 'unsub', topic: 'second' }), { reply: true });
      await w.sub('mix');
      w.command({ op: 'mixed', topic: 'mix', count: 40, big: 10 });
      for (let i = 0; i < 40; i++) assert.equal((await w.next()).text.split(':')[0], String(i));
      await w.close();
      await until(() => h.host.broker.subscribers('room') === 2, 5000, 'the worker session released its topics');
      assert.deepEqual(log.entries.filter((e) => e.level === 'error'), []);
    } finally {
      await h.close();
    }
  });
});

describe('two hosts joined by a backplane (in memory)', TIMEOUT, () => {
  test('publishes cross hosts; a gap calls onBackplaneGap; close() closes the backplane', async () => {
    const bus = new MemoryBus();
    const p1 = new MemoryBackplane(bus, 'host-1');
    const p2 = new MemoryBackplane(bus, 'host-2');
    const h1 = await startHost([route('/ps')], { backplane: p1 });
    const h2 = await startHost([route('/ps')], { backplane: p2 });
    try {
      const a = await Peer.open(`${h1.base}/ps`);
      const b = await Peer.open(`${h2.base}/ps`);
      await a.sub('x');
      await b.sub('x');
      a.command({ op: 'pub', topic: 'x', data: 'over there', exceptSelf: false });
      assert.deepEqual(await a.next(), { text: 'over there', isBinary: false });
      assert.deepEqual(await b.next(), { text: 'over there', isBinary: false });
      p2.gap('test');
      assert.deepEqual(await b.next(), { text: 'gap:x', isBinary: false }, 'onBackplaneGap ran and published');
      assert.deepEqual(await a.next(), { text: 'gap:x', isBinary: false }, 'its publish crossed to the other host');
      assert.equal(h2.host.broker.stats.gaps, 1);
    } finally {
      await h1.close();
      await h2.close();
    }
    assert.equal(p1.closed && p2.closed, true);
  });

  test('createHost refuses something that is not a backplane', async () => {
    const { createHost } = await import('../src/host/host.ts');
    assert.throws(() => createHost({ routes: [route('/ps')], backplane: {} as never, logger: memoryLogger() }), (e: unknown) => (e as { code?: string }).code === 'WSMOD_ERR_INVALID_OPTION');
  });
});

