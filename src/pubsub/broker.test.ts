// The broker without sockets: subscribers that record what they are handed, and the in-memory
// backplane of test/memory-backplane.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PreparedMessage } from '../connection/prepared.ts';
import { isWsmodError } from '../errors.ts';
import { MemoryBackplane, MemoryBus } from '../../test/memory-backplane.ts';
import { Broker, type DeliveryResult, type Subscriber } from './broker.ts';

class Recorder implements Subscriber {
  readonly got: PreparedMessage[] = [];
  constructor(public result: DeliveryResult = 'sent') {}
  deliver(message: PreparedMessage): DeliveryResult {
    this.got.push(message);
    return this.result;
  }
  texts(): string[] {
    return this.got.map((m) => m.payload.toString());
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Broker', () => {
  test('one publish is framed once: every subscriber is handed the same bytes (an unmasked RFC 6455 frame)', () => {
    const broker = new Broker();
    const subs = [new Recorder(), new Recorder(), new Recorder()];
    for (const s of subs) assert.equal(broker.subscribe('news', s), true);
    assert.equal(broker.subscribe('news', subs[0]!), false, 'a second subscribe is a no-op');
    assert.equal(broker.publish('news', 'hello', false), 3);
    const [first] = subs[0]!.got;
    for (const s of subs) assert.equal(s.got[0], first, 'the same PreparedMessage');
    assert.deepEqual([...first!.frame], [0x81, 5, ...Buffer.from('hello')], 'FIN + text opcode, unmasked, length 5');
    broker.publish('news', Buffer.from([1, 2, 3]), true);
    assert.deepEqual([...subs[1]!.got[1]!.frame], [0x82, 3, 1, 2, 3], 'binary opcode');
    assert.deepEqual(broker.stats, { topics: 1, subscriptions: 3, published: 2, received: 0, delivered: 6, dropped: 0, slowClosed: 0, backplaneDropped: 0, gaps: 0 });
  });

  test('the payload is copied: the publisher may reuse its buffer', () => {
    const broker = new Broker();
    const s = new Recorder();
    broker.subscribe('t', s);
    const data = Buffer.from('abc');
    broker.publish('t', data, true);
    data.fill(0);
    assert.equal(s.got[0]!.payload.toString(), 'abc');
  });

  test('except leaves one subscriber out; unsubscribe stops delivery; empty topics disappear', () => {
    const broker = new Broker();
    const a = new Recorder();
    const b = new Recorder();
    broker.subscribe('t', a);
    broker.subscribe('t', b);
    assert.equal(broker.publish('t', '1', false, a), 1);
    assert.deepEqual(a.texts(), []);
    assert.deepEqual(b.texts(), ['1']);
    assert.equal(broker.unsubscribe('t', b), true);
    assert.equal(broker.unsubscribe('t', b), false);
    assert.equal(broker.publish('t', '2', false, a), 0, 'only the excepted subscriber is left');
    assert.equal(broker.publish('t', '3', false), 1);
    assert.deepEqual(a.texts(), ['3']);
    broker.unsubscribe('t', a);
    assert.equal(broker.stats.topics, 0);
    assert.equal(broker.subscribers('t'), 0);
  });

  test('drops and slow closes are counted, not delivered; closing subscribers are not counted', () => {
    const broker = new Broker();
    const ok = new Recorder();
    const slow = new Recorder('dropped');
    const closing = new Recorder('closed');
    const gone = new Recorder('gone');
    for (const s of [ok, slow, closing, gone]) broker.subscribe('t', s);
    assert.equal(broker.publish('t', 'm', false), 1);
    const stats = broker.stats;
    assert.equal(stats.delivered, 1);
    assert.equal(stats.dropped, 2);
    assert.equal(stats.slowClosed, 1);
  });

  test('topic names are validated: WSMOD_ERR_TOPIC_INVALID', () => {
    const broker = new Broker();
    const s = new Recorder();
    for (const bad of ['', 'a'.repeat(257), 'é'.repeat(129), 'new\nline', 'tab\there', '\u0085', 'x\ud800', 42 as unknown as string]) {
      assert.throws(() => broker.subscribe(bad, s), (e) => isWsmodError(e, 'WSMOD_ERR_TOPIC_INVALID'), JSON.stringify(bad));
      assert.throws(() => broker.publish(bad, 'm', false), (e) => isWsmodError(e, 'WSMOD_ERR_TOPIC_INVALID'));
    }
    for (const good of ['a', 'a'.repeat(256), 'é'.repeat(128), 'room:42/ünï 😀', 'with space']) assert.equal(broker.subscribe(good, s), true);
  });

  test('per-publisher FIFO: publishes reach each subscriber in publish order', () => {
    const broker = new Broker();
    const s = new Recorder();
    broker.subscribe('a', s);
    broker.subscribe('b', s);
    for (let i = 0; i < 100; i++) broker.publish(i % 2 === 0 ? 'a' : 'b', String(i), false);
    assert.deepEqual(s.texts(), Array.from({ length: 100 }, (_, i) => String(i)));
  });
});

describe('Broker with a backplane (in memory)', () => {
  test('subscribes the backplane on the first local subscriber, unsubscribes on the last, hands it every publish', () => {
    const bus = new MemoryBus();
    const backplane = new MemoryBackplane(bus, 'h1');
    const broker = new Broker({ backplane });
    const a = new Recorder();
    const b = new Recorder();
    broker.subscribe('t', a);
    broker.subscribe('t', b);
    broker.publish('t', 'x', false);
    broker.publish('other', 'y', false);
    broker.unsubscribe('t', a);
    broker.unsubscribe('t', b);
    assert.deepEqual(backplane.calls, ['sub:t', 'pub:t', 'pub:other', 'unsub:t']);
  });

  test('delivers other hosts’ publishes to local subscribers only, in order, never back to the backplane; ignores its own', async () => {
    const bus = new MemoryBus();
    const p1 = new MemoryBackplane(bus, 'h1');
    const p2 = new MemoryBackplane(bus, 'h2');
    const b1 = new Broker({ backplane: p1 });
    const b2 = new Broker({ backplane: p2 });
    const s1 = new Recorder();
    const s2 = new Recorder();
    b1.subscribe('t', s1);
    b2.subscribe('t', s2);
    for (let i = 0; i < 20; i++) b1.publish('t', String(i), false);
    b2.publish('t', Buffer.from([7]), true);
    await tick();
    assert.deepEqual(s2.texts(), ['\x07', ...Array.from({ length: 20 }, (_, i) => String(i))], 'its own publish at once, then the remote ones in order');
    assert.deepEqual(s1.texts().slice(0, 20), Array.from({ length: 20 }, (_, i) => String(i)), 'local, once each (its own echo ignored)');
    assert.equal(s1.got.length, 21);
    assert.equal(s1.got[20]!.binary, true, 'binary stays binary across the backplane');
    assert.deepEqual(p2.calls.filter((c) => c.startsWith('pub:')), ['pub:t'], 'remote messages are not published again');
    assert.equal(b2.stats.received, 20);
  });

  test('a refused publish is counted; a gap names only topics with local subscribers', () => {
    const bus = new MemoryBus();
    const backplane = new MemoryBackplane(bus, 'h1');
    const gaps: string[] = [];
    const broker = new Broker({ backplane, onGap: (t) => gaps.push(t) });
    const s = new Recorder();
    broker.subscribe('a', s);
    broker.subscribe('b', s);
    broker.unsubscribe('b', s);
    backplane.subscribed.add('stale');
    backplane.gap();
    assert.deepEqual(gaps, ['a']);
    assert.equal(broker.stats.gaps, 1);
    void backplane.close();
    assert.equal(broker.publish('a', 'm', false), 1, 'local delivery continues without the backplane');
    assert.equal(broker.stats.backplaneDropped, 1);
  });
});
