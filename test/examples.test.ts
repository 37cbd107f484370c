// The example plugins (examples/*.ts), loaded the way `wsmod serve` loads plugins (loadPlugin, with
// the route's options and a context), served by a real host, and driven by the `ws` package's client
// and wsmod's own client.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { type WebSocketClient, connect } from '../src/client/client.ts';
import { isWsmodError } from '../src/errors.ts';
import type { Plugin, PluginContext, Session } from '../src/plugin/api.ts';
import { loadPlugin } from '../src/plugin/loader.ts';
import { memoryLogger, startHost, until } from './helpers.ts';

const examples = resolve(fileURLToPath(import.meta.url), '..', '..', 'examples');
const ECHO = resolve(examples, 'echo.ts');
const DUMB_INCREMENT = resolve(examples, 'dumb-increment.ts');
const CHAT = resolve(examples, 'chat.ts');
const PROTOCOL = 'dumb-increment-protocol';

/** Loads an example as `wsmod serve` would: with the route's options and a context for `path`. */
function load(file: string, path: string, options?: unknown): Promise<Plugin<unknown>> {
  const context: PluginContext = { path, log: memoryLogger() };
  return loadPlugin(file, options === undefined ? { context } : { options, context });
}

/** A `ws` client whose messages queue up until taken, so none is lost between two awaits. */
interface WsPeer {
  readonly ws: WebSocket;
  next(): Promise<{ data: Buffer; isBinary: boolean }>;
  close(): Promise<number>;
}

async function wsPeer(url: string, protocols: string[] = []): Promise<WsPeer> {
  const ws = new WebSocket(url, protocols);
  const queue: Array<{ data: Buffer; isBinary: boolean }> = [];
  const waiters: Array<(m: { data: Buffer; isBinary: boolean }) => void> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const m = { data, isBinary };
    const w = waiters.shift();
    if (w !== undefined) w(m);
    else queue.push(m);
  });
  const closed = new Promise<number>((done) => ws.once('close', (code: number) => done(code)));
  await new Promise<void>((ok, fail) => {
    ws.once('open', () => ok());
    ws.once('error', fail);
  });
  return {
    ws,
    next: () => {
      const m = queue.shift();
      return m !== undefined ? Promise.resolve(m) : new Promise((ok) => waiters.push(ok));
    },
    close: () => {
      ws.close(1000);
      return closed;
    },
  };
}

/** The status of a refused handshake, as the `ws` client sees it. */
async function refusedStatus(url: string, protocols: string[] = []): Promise<number> {
  const ws = new WebSocket(url, protocols);
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
  res.resume();
  ws.terminate();
  return res.statusCode ?? 0;
}

/** Log entries at warn or error level: a clean run has none. */
function problems(log: ReturnType<typeof memoryLogger>): Array<{ level: string; msg?: string }> {
  return log.entries.filter((e) => e.level === 'warn' || e.level === 'error');
}

describe('examples/echo.ts', () => {
  test('echoes text as text and binary as binary, to the ws client and to wsmod’s client', async () => {
    const t = await startHost([{ path: '/echo', plugin: await load(ECHO, '/echo') }]);
    try {
      const a = await wsPeer(`${t.base}/echo`);
      a.ws.send('héllo');
      const text = await a.next();
      assert.deepEqual([text.isBinary, text.data.toString()], [false, 'héllo']);
      a.ws.send(Buffer.from([0, 1, 2, 255]));
      const bin = await a.next();
      assert.equal(bin.isBinary, true);
      assert.deepEqual([...bin.data], [0, 1, 2, 255]);
      assert.equal(await a.close(), 1000);

      const b = await connect(`${t.base}/echo`);
      b.send('plain');
      const m = await b.next();
      assert.deepEqual([m.isBinary, m.text()], [false, 'plain']);
      b.send(Buffer.alloc(70_000, 9));
      const big = await b.next();
      assert.equal(big.isBinary, true);
      assert.ok(big.data.equals(Buffer.alloc(70_000, 9)));
      assert.equal((await b.close(1000)).code, 1000);
      await until(() => t.host.connections === 0, 5000, 'sessions to end');
      assert.deepEqual(problems(t.log), []);
    } finally {
      await t.close();
    }
  });
});

describe('examples/dumb-increment.ts', () => {
  /**
   * Wraps the plugin so every session it sees is a proxy whose `send` is recorded: the plugin's timer
   * captures that proxy, so a send after onClose (a leaked timer) shows up in `sendsAfterClose`.
   */
  function spied(plugin: Plugin<unknown>) {
    const proxies = new WeakMap<Session<unknown>, Session<unknown>>();
    const closed = new Set<string>();
    const record = { sends: 0, sendsAfterClose: 0, closes: 0, timersLeftAfterClose: 0 };
    const proxy = (session: Session<unknown>): Session<unknown> => {
      let p = proxies.get(session);
      if (p === undefined) {
        const send: Session<unknown>['send'] = (data, options) => {
          record.sends++;
          if (closed.has(session.id)) record.sendsAfterClose++;
          return session.send(data, options);
        };
        p = new Proxy(session, {
          get(target, prop) {
            if (prop === 'send') return send;
            const value: unknown = Reflect.get(target, prop, target);
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
          set(target, prop, value) {
            return Reflect.set(target, prop, value, target);
          },
        });
        proxies.set(session, p);
      }
      return p;
    };
    const wrapper: Plugin<unknown> = {
      name: plugin.name,
      apiVersion: plugin.apiVersion,
      ...(plugin.protocols === undefined ? {} : { protocols: plugin.protocols }),
      onUpgrade: (req) => plugin.onUpgrade!(req),
      onOpen: (session) => plugin.onOpen!(proxy(session)),
      onMessage: (session, data, isBinary) => plugin.onMessage(proxy(session), data, isBinary),
      onClose: async (session, code, reason) => {
        await plugin.onClose!(proxy(session), code, reason);
        closed.add(session.id);
        record.closes++;
        if ((session.data as { timer?: unknown } | undefined)?.timer !== undefined) record.timersLeftAfterClose++;
      },
      onShutdown: () => plugin.onShutdown!(),
    };
    return { plugin: wrapper, record };
  }

  /** Counters arrive as "0", "1", ...: the next one as a number. */
  async function nextCount(c: WebSocketClient): Promise<number> {
    const m = await c.next();
    assert.equal(m.isBinary, false);
    assert.match(m.text(), /^\d+$/);
    return Number(m.text());
  }

  test('refuses a client that does not offer the subprotocol with 403', async () => {
    const t = await startHost([{ path: '/dumb', plugin: await load(DUMB_INCREMENT, '/dumb') }]);
    try {
      assert.equal(await refusedStatus(`${t.base}/dumb`), 403);
      assert.equal(await refusedStatus(`${t.base}/dumb`, ['other-protocol']), 403);
      await assert.rejects(connect(`${t.base}/dumb`), (err: unknown) => isWsmodError(err, 'WSMOD_ERR_CLIENT_HANDSHAKE') && /403/.test(err.message));
      assert.equal(t.host.connections, 0);
    } finally {
      await t.close();
    }
  });

  test('sends increasing counters; reset\\n restarts them from 0 (wsmod’s client)', async () => {
    const t = await startHost([{ path: '/dumb', plugin: await load(DUMB_INCREMENT, '/dumb') }]);
    try {
      const c = await connect(`${t.base}/dumb`, { protocols: ['other-protocol', PROTOCOL] });
      assert.equal(c.protocol, PROTOCOL);
      assert.deepEqual([await nextCount(c), await nextCount(c), await nextCount(c)], [0, 1, 2]);
      c.send('reset\n');
      // Counters already on their way keep increasing by one; then the sequence drops back to 0.
      let previous = 2;
      let restarted = false;
      for (let i = 0; i < 1000 && !restarted; i++) {
        const n = await nextCount(c);
        if (n === previous + 1) previous = n;
        else {
          assert.equal(n, 0, `after ${previous} came ${n}: expected ${previous + 1} or a restart at 0`);
          restarted = true;
        }
      }
      assert.ok(restarted, 'the counter never restarted after reset');
      assert.deepEqual([await nextCount(c), await nextCount(c)], [1, 2]);
      // Anything else (including "reset" without the newline, or binary) changes nothing.
      c.send('reset');
      c.send(Buffer.from('reset\n'));
      const after = await nextCount(c);
      assert.ok(after >= 3, `unexpected reset to ${after}`);
      assert.equal((await c.close(1000)).code, 1000);
    } finally {
      await t.close();
    }
  });

  test('reset\\n with the ws client, and no send after the client closes', async (tc) => {
    const { plugin, record } = spied(await load(DUMB_INCREMENT, '/dumb'));
    const t = await startHost([{ path: '/dumb', plugin }]);
    // The plugin's interval runs on fake time: each counter is sent when the test moves time on.
    tc.mock.timers.enable({ apis: ['setInterval'] });
    try {
      const a = await wsPeer(`${t.base}/dumb`, [PROTOCOL]);
      const next = () => {
        tc.mock.timers.tick(50);
        return a.next();
      };
      assert.equal(a.ws.protocol, PROTOCOL);
      const first = await next();
      assert.deepEqual([first.isBinary, first.data.toString()], [false, '0']);
      assert.equal((await next()).data.toString(), '1');
      a.ws.send('reset\n');
      let n = 1;
      for (let i = 0; i < 1000; i++) {
        const v = Number((await next()).data.toString());
        if (v !== n + 1) {
          assert.equal(v, 0);
          break;
        }
        n = v;
      }
      assert.equal(Number((await next()).data.toString()), 1);
      assert.equal(await a.close(), 1000);
      await until(() => record.closes === 1, 5000, 'onClose');
      assert.equal(record.timersLeftAfterClose, 0, 'onClose left the timer in session.data');
      assert.equal(t.host.connections, 0);
      // Many periods of the interval: a timer that was not cleared would send (and be counted).
      const sendsAtClose = record.sends;
      tc.mock.timers.tick(60_000);
      assert.equal(record.sendsAfterClose, 0, 'the timer kept sending after onClose');
      assert.equal(record.sends, sendsAtClose);
      assert.deepEqual(problems(t.log), []);
    } finally {
      await t.close();
    }
  });

  test('host shutdown: sessions get 1001, their timers stop, onShutdown runs cleanly', async (tc) => {
    const { plugin, record } = spied(await load(DUMB_INCREMENT, '/dumb'));
    const t = await startHost([{ path: '/dumb', plugin }]);
    // The plugin's interval runs on fake time (see above).
    tc.mock.timers.enable({ apis: ['setInterval'] });
    const c = await connect(`${t.base}/dumb`, { protocols: [PROTOCOL] });
    tc.mock.timers.tick(50);
    assert.equal(await nextCount(c), 0);
    await t.close();
    assert.equal((await c.closed).code, 1001);
    assert.equal(record.closes, 1);
    assert.equal(record.timersLeftAfterClose, 0);
    tc.mock.timers.tick(60_000);
    assert.equal(record.sendsAfterClose, 0);
    assert.deepEqual(problems(t.log), []);
  });

  test('onShutdown clears timers that are still running', async (t) => {
    const plugin = await load(DUMB_INCREMENT, '/dumb');
    let sends = 0;
    // A session the host never closes (no onClose): only onShutdown can stop its timer. The plugin's
    // interval runs on fake time, so "no send after onShutdown" is checked over many periods at once.
    t.mock.timers.enable({ apis: ['setInterval'] });
    const session = { id: 'fake', data: { n: 0 }, send: () => (sends++, 'sent' as const) } as unknown as Session<unknown>;
    await plugin.onOpen!(session);
    try {
      t.mock.timers.tick(1000);
      assert.ok(sends > 0, 'the counter runs');
      await plugin.onShutdown!();
      const atShutdown = sends;
      t.mock.timers.tick(60_000);
      assert.equal(sends, atShutdown, 'a timer kept running after onShutdown');
    } finally {
      // Should the plugin leak it, stop the timer here so this test fails instead of hanging.
      clearInterval((session.data as { timer?: NodeJS.Timeout }).timer);
    }
  });
});

describe('examples/chat.ts', () => {
  test('a message from one client reaches all three, sender included; text stays text, binary binary', async () => {
    const t = await startHost([{ path: '/chat', plugin: await load(CHAT, '/chat') }]);
    try {
      const a = await connect(`${t.base}/chat`);
      const b = await connect(`${t.base}/chat`);
      const c = await wsPeer(`${t.base}/chat`);
      a.send('hello from a');
      for (const m of [await a.next(), await b.next(), await c.next()]) {
        assert.equal(m.isBinary, false);
        assert.equal(m.data.toString(), 'hello from a');
      }
      const bytes = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]);
      c.ws.send(bytes);
      for (const m of [await a.next(), await b.next(), await c.next()]) {
        assert.equal(m.isBinary, true);
        assert.ok(m.data.equals(bytes));
      }
      // Text that looks like bytes stays text; a client that left no longer receives.
      await b.close(1000);
      await until(() => t.host.connections === 2, 5000, 'b to leave');
      a.send('ünïcode');
      for (const m of [await a.next(), await c.next()]) {
        assert.equal(m.isBinary, false);
        assert.equal(m.data.toString(), 'ünïcode');
      }
      await a.close(1000);
      await c.close();
      await until(() => t.host.connections === 0, 5000, 'sessions to end');
      assert.deepEqual(problems(t.log), []);
    } finally {
      await t.close();
    }
  });

  test('history: a late joiner first receives the last N messages, in order and of the same type', async () => {
    const t = await startHost([{ path: '/chat', plugin: await load(CHAT, '/chat', { history: 2 }) }]);
    try {
      const a = await connect(`${t.base}/chat`);
      a.send('one');
      a.send(Buffer.from([2]));
      a.send('three');
      // a receives its own messages: once it has all three, the room has seen them.
      assert.deepEqual([(await a.next()).text(), [...(await a.next()).data], (await a.next()).text()], ['one', [2], 'three']);
      const late = await wsPeer(`${t.base}/chat`);
      const r1 = await late.next();
      const r2 = await late.next();
      assert.deepEqual([r1.isBinary, [...r1.data]], [true, [2]]);
      assert.deepEqual([r2.isBinary, r2.data.toString()], [false, 'three']);
      a.send('four');
      const live = await late.next();
      assert.deepEqual([live.isBinary, live.data.toString()], [false, 'four']);
      assert.equal((await a.next()).text(), 'four');
      await late.close();
      await a.close(1000);
    } finally {
      await t.close();
    }
  });

  test('without history, a late joiner receives nothing old', async () => {
    const t = await startHost([{ path: '/chat', plugin: await load(CHAT, '/chat') }]);
    try {
      const a = await connect(`${t.base}/chat`);
      a.send('old');
      assert.equal((await a.next()).text(), 'old');
      const late = await connect(`${t.base}/chat`);
      a.send('new');
      assert.equal((await late.next()).text(), 'new');
      await late.close(1000);
      await a.close(1000);
    } finally {
      await t.close();
    }
  });

  test('two routes using the module have two rooms', async () => {
    // Once through loadPlugin for each route, and once from one imported factory called twice.
    const factory = (await import('../examples/chat.ts')).default;
    const context: PluginContext = { path: '/x', log: memoryLogger() };
    const t = await startHost([
      { path: '/a', plugin: await load(CHAT, '/a', { history: 5 }) },
      { path: '/b', plugin: await load(CHAT, '/b', { history: 5 }) },
      { path: '/c', plugin: await factory({ history: 5 }, context) },
      { path: '/d', plugin: await factory({ history: 5 }, context) },
    ]);
    try {
      for (const [one, other] of [
        ['/a', '/b'],
        ['/c', '/d'],
      ] as const) {
        const x = await connect(`${t.base}${one}`);
        const y = await connect(`${t.base}${other}`);
        x.send(`in ${one}`);
        assert.equal((await x.next()).text(), `in ${one}`);
        y.send(`in ${other}`);
        // y's first message is its own: nothing from the other room came first (live or as history).
        assert.equal((await y.next()).text(), `in ${other}`);
        const late = await connect(`${t.base}${other}`);
        assert.equal((await late.next()).text(), `in ${other}`, 'history is per room');
        await Promise.all([x.close(1000), y.close(1000), late.close(1000)]);
      }
    } finally {
      await t.close();
    }
  });

  test('a bad history option makes loadPlugin reject with WSMOD_ERR_PLUGIN_INVALID naming the file', async () => {
    for (const options of [{ history: -1 }, { history: 1.5 }, { history: '10' }, { history: 1e9 }, { histroy: 3 }, 'history', [3]]) {
      await assert.rejects(
        load(CHAT, '/chat', options),
        (err: unknown) =>
          isWsmodError(err, 'WSMOD_ERR_PLUGIN_INVALID') && err.message.includes(CHAT) && /history/.test(err.message),
        `options ${JSON.stringify(options)}`,
      );
    }
    // Good ones load.
    for (const options of [{}, { history: 0 }, { history: 50 }, null]) await load(CHAT, '/chat', options);
  });
});
