// Interoperability with undici's WebSocket (the WHATWG WebSocket API as undici implements it, not
// Node's global): echo of every length class up to 1 MiB, subprotocol negotiation, both closing
// handshakes, and the origin policy refusing a foreign Origin (undici lets a client set Origin).
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { type CloseEvent, type MessageEvent, WebSocket } from 'undici';
import { definePlugin } from '../src/plugin/api.ts';
import { echoPlugin, recordingPlugin, startHost, until } from './helpers.ts';

/** A WebSocket whose messages are queued as they arrive, so none is missed between awaits. */
interface Client {
  readonly ws: WebSocket;
  /** The next message: a string for text, a Buffer for binary. */
  next(): Promise<string | Buffer>;
  /** Resolves with the close event (whenever it fires, even before this is called). */
  readonly closed: Promise<{ code: number; reason: string; wasClean: boolean }>;
  /** True once an error event fired. */
  readonly errored: () => boolean;
}

function connect(url: string, init: { protocols?: string[]; headers?: Record<string, string> } = {}): Client {
  const ws = new WebSocket(url, init);
  ws.binaryType = 'arraybuffer';
  const queue: Array<string | Buffer> = [];
  const waiters: Array<(m: string | Buffer) => void> = [];
  let errored = false;
  ws.addEventListener('message', (e: MessageEvent) => {
    const data: unknown = e.data;
    const m = typeof data === 'string' ? data : Buffer.from(data as ArrayBuffer);
    const w = waiters.shift();
    if (w !== undefined) w(m);
    else queue.push(m);
  });
  ws.addEventListener('error', () => {
    errored = true;
  });
  const closed = new Promise<{ code: number; reason: string; wasClean: boolean }>((resolve) => {
    ws.addEventListener('close', (e: CloseEvent) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean }));
  });
  return {
    ws,
    closed,
    errored: () => errored,
    next: () => {
      const m = queue.shift();
      if (m !== undefined) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        waiters.push(resolve);
        // A close before the message arrives fails the wait instead of hanging.
        void closed.then((c) => reject(new Error(`connection closed (${c.code}) while waiting for a message`)));
      });
    },
  };
}

/** Waits for the open event; rejects when the connection closes first. */
function opened(c: Client): Promise<void> {
  if (c.ws.readyState === WebSocket.OPEN) return Promise.resolve();
  return new Promise((resolve, reject) => {
    c.ws.addEventListener('open', () => resolve(), { once: true });
    void c.closed.then((e) => reject(new Error(`closed (${e.code}) before the open event`)));
  });
}

test('undici echo: text and binary of 0, 125, 126, 65535, 65536 bytes and 1 MiB come back intact', { timeout: 60_000 }, async () => {
  const t = await startHost([{ path: '/echo', plugin: echoPlugin, maxMessageSize: 2 * 1024 * 1024 }]);
  try {
    const c = connect(`${t.base}/echo`);
    await opened(c);
    assert.equal(c.ws.protocol, '');
    assert.equal(c.ws.extensions, '', 'permessage-deflate offered by undici is not negotiated');
    for (const size of [0, 125, 126, 65535, 65536, 1024 * 1024]) {
      const binary = randomBytes(size);
      c.ws.send(binary);
      const b = await c.next();
      assert.ok(Buffer.isBuffer(b), `binary ${size}: echoed as binary`);
      assert.ok(b.equals(binary), `binary ${size}: echoed bytes differ`);
      // Multi-byte text whose UTF-8 length is exactly `size`.
      const text = 'é'.repeat(Math.floor(size / 2)) + 'a'.repeat(size % 2);
      assert.equal(Buffer.byteLength(text), size);
      c.ws.send(text);
      const s = await c.next();
      assert.equal(typeof s, 'string', `text ${size}: echoed as text`);
      assert.equal(s, text, `text ${size}: echoed text differs`);
    }
    c.ws.close(1000);
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assert.equal(closed.wasClean, true);
  } finally {
    await t.close();
  }
});

test('undici subprotocol: offering [a.v1, b.v1] to a plugin preferring [b.v1, a.v1] gets b.v1', { timeout: 30_000 }, async () => {
  const seen: Array<string | undefined> = [];
  const plugin = definePlugin({
    name: 'proto',
    apiVersion: 1,
    protocols: ['b.v1', 'a.v1'],
    onOpen(session) {
      seen.push(session.protocol);
    },
    onMessage(session, data, isBinary) {
      session.send(data, { binary: isBinary });
    },
  });
  const t = await startHost([{ path: '/proto', plugin }]);
  try {
    const c = connect(`${t.base}/proto`, { protocols: ['a.v1', 'b.v1'] });
    await opened(c);
    assert.equal(c.ws.protocol, 'b.v1');
    c.ws.send('ping');
    assert.equal(await c.next(), 'ping');
    assert.deepEqual(seen, ['b.v1'], 'session.protocol on the server');
    c.ws.close(1000);
    assert.equal((await c.closed).code, 1000);

    // An offer the plugin does not speak: the server accepts without a subprotocol (RFC 6455 §4.2.2
    // allows it), and undici, like browsers, then fails the connection (WHATWG WebSocket: a non-empty
    // offer needs a Sec-WebSocket-Protocol in the response).
    const none = connect(`${t.base}/proto`, { protocols: ['c.v1'] });
    const failed = await none.closed;
    assert.equal(failed.code, 1006);
    assert.equal(failed.wasClean, false);
    assert.equal(none.errored(), true);
    await until(() => seen.length === 2, 5000, 'onOpen');
    assert.deepEqual(seen, ['b.v1', undefined], 'the server opened the session without a subprotocol');
  } finally {
    // undici does not close the TCP connection it failed: the host destroys it at the deadline.
    await t.host.close({ deadline: 100 });
  }
});

test('undici client close with 1000 and a reason reaches the plugin; the server answers 1000', { timeout: 30_000 }, async () => {
  const rec = recordingPlugin();
  const t = await startHost([{ path: '/echo', plugin: rec.plugin }]);
  try {
    const c = connect(`${t.base}/echo`);
    await opened(c);
    c.ws.send('hi');
    assert.equal(await c.next(), 'hi');
    c.ws.close(1000, 'undici says bye ✓');
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assert.equal(closed.wasClean, true);
    await until(() => rec.closes.length === 1, 5000, 'onClose');
    assert.equal(rec.opened.length, 1);
    assert.deepEqual(rec.closes[0], { id: rec.opened[0], code: 1000, reason: 'undici says bye ✓' });
    assert.equal(c.errored(), false);
  } finally {
    await t.close();
  }
});

test('undici sees a server-initiated close with 4001 and its reason, cleanly', { timeout: 30_000 }, async () => {
  const closes: Array<{ code: number; reason: string }> = [];
  const plugin = definePlugin({
    name: 'closer',
    apiVersion: 1,
    onMessage(session, data) {
      if (data.toString() === 'close me') session.close(4001, 'go away');
      else session.send(data);
    },
    onClose(_session, code, reason) {
      closes.push({ code, reason });
    },
  });
  const t = await startHost([{ path: '/closer', plugin }]);
  try {
    const c = connect(`${t.base}/closer`);
    await opened(c);
    c.ws.send('close me');
    const closed = await c.closed;
    assert.deepEqual(closed, { code: 4001, reason: 'go away', wasClean: true });
    assert.equal(c.errored(), false);
    await until(() => closes.length === 1, 5000, 'onClose');
    assert.equal(closes[0]?.code, 4001, 'the server initiated with 4001; undici echoed it');
  } finally {
    await t.close();
  }
});

test('undici with a foreign Origin is refused with 403 by the default "same" policy; no session opens', { timeout: 30_000 }, async () => {
  const rec = recordingPlugin();
  const t = await startHost([{ path: '/echo', plugin: rec.plugin }]);
  // What undici itself received as the handshake response status, per request path.
  const statuses: Array<{ path: string; status: number }> = [];
  const onHeaders = (message: unknown): void => {
    const m = message as { request: { origin: string; path: string }; response: { statusCode: number } };
    if (m.request.origin === `http://127.0.0.1:${t.port}`) statuses.push({ path: m.request.path, status: m.response.statusCode });
  };
  diagnostics.subscribe('undici:request:headers', onHeaders);
  try {
    const foreign = connect(`${t.base}/echo?who=foreign`, { headers: { Origin: 'http://evil.example' } });
    const refused = await foreign.closed;
    assert.equal(refused.code, 1006);
    assert.equal(refused.wasClean, false);
    assert.equal(foreign.errored(), true, 'an error event precedes the close');
    assert.deepEqual(statuses, [{ path: '/echo?who=foreign', status: 403 }]);

    // Same host, other port: a different origin too.
    const otherPort = connect(`${t.base}/echo?who=port`, { headers: { Origin: `http://127.0.0.1:${t.port + 1}` } });
    assert.equal((await otherPort.closed).code, 1006);
    assert.deepEqual(statuses.at(-1), { path: '/echo?who=port', status: 403 });

    // The control: the request's own origin passes.
    const same = connect(`${t.base}/echo?who=same`, { headers: { Origin: `http://127.0.0.1:${t.port}` } });
    await opened(same);
    same.ws.send('same origin');
    assert.equal(await same.next(), 'same origin');
    same.ws.close(1000);
    assert.equal((await same.closed).code, 1000);
    assert.deepEqual(statuses.at(-1), { path: '/echo?who=same', status: 101 });

    await until(() => rec.closes.length === 1, 5000, 'onClose');
    assert.equal(rec.opened.length, 1, 'only the same-origin connection opened a session');
  } finally {
    diagnostics.unsubscribe('undici:request:headers', onHeaders);
    await t.close();
  }
});
