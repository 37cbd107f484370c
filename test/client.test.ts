// wsmod's own client against wsmod's host, and against the ws package's server (an independent peer).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { connect } from '../src/client/client.ts';
import { isWsmodError } from '../src/errors.ts';
import { echoPlugin, startHost } from './helpers.ts';

test('the client echoes text and binary, and closes cleanly, against wsmod', async () => {
  const t = await startHost();
  try {
    const c = await connect(`${t.base}/echo`);
    c.send('héllo');
    assert.equal((await c.next()).text(), 'héllo');
    const bytes = Buffer.alloc(70_000, 7);
    c.send(bytes);
    const m = await c.next();
    assert.equal(m.isBinary, true);
    assert.ok(m.data.equals(bytes));
    const closed = await c.close(1000, 'bye');
    assert.equal(closed.code, 1000);
    assert.equal(closed.wasClean, true);
  } finally {
    await t.close();
  }
});

test('the client against the ws package server: masked frames accepted, server close seen', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      if (data.toString() === 'bye') ws.close(4002, 'server says bye');
      else ws.send(data, { binary: isBinary });
    });
  });
  try {
    const { port } = wss.address() as { port: number };
    const c = await connect(`ws://127.0.0.1:${port}/`);
    c.send('one');
    assert.equal((await c.next()).text(), 'one');
    c.send('bye');
    const closed = await c.closed;
    assert.equal(closed.code, 4002);
    assert.equal(closed.reason, 'server says bye');
  } finally {
    wss.close();
  }
});

test('the client negotiates permessage-deflate with a compression route and exchanges compressed messages', async () => {
  const t = await startHost([{ path: '/z', plugin: echoPlugin, compression: true }]);
  try {
    const c = await connect(`${t.base}/z`, { perMessageDeflate: true });
    assert.match(c.extensions, /^permessage-deflate/);
    const text = 'compress me '.repeat(1000);
    c.send(text);
    assert.equal((await c.next()).text(), text);
    const small = Buffer.from([1, 2, 3]);
    c.send(small);
    assert.ok((await c.next()).data.equals(small));
    await c.close();
    const plain = await connect(`${t.base}/z`);
    assert.equal(plain.extensions, '');
    await plain.close();
  } finally {
    await t.close();
  }
});

test('a refused handshake rejects with WSMOD_ERR_CLIENT_HANDSHAKE', async () => {
  const t = await startHost();
  try {
    await assert.rejects(connect(`${t.base}/nope`), (err: unknown) => isWsmodError(err, 'WSMOD_ERR_CLIENT_HANDSHAKE') && /404/.test(err.message));
  } finally {
    await t.close();
  }
});
