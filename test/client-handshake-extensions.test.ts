// clientHandshake and Sec-WebSocket-Extensions (RFC 6455 §4.1, §9.1): the offer goes out only when
// given; a response may name only offered extensions (and must be well-formed), and is returned for
// the caller to validate; without an offer any extension in the response fails the handshake.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { clientHandshake } from '../src/client/handshake.ts';
import { acceptKey } from '../src/protocol/handshake.ts';

/** A server that answers every upgrade with 101 and the given extensions header (none when undefined). */
async function answering(extensions: string | undefined): Promise<{ url: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server = createServer();
  server.on('upgrade', (req, socket) => {
    requests.push(req);
    const key = String(req.headers['sec-websocket-key']);
    const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptKey(key)}`];
    if (extensions !== undefined) lines.push(`Sec-WebSocket-Extensions: ${extensions}`);
    socket.end(`${lines.join('\r\n')}\r\n\r\n`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const OFFER = 'permessage-deflate; client_no_context_takeover; client_max_window_bits';

test('without an offer: no header sent, and any extension in the response fails the handshake', async () => {
  const s = await answering('permessage-deflate');
  try {
    await assert.rejects(clientHandshake(s.url), { code: 'WSMOD_ERR_CLIENT_HANDSHAKE', message: /not offered: permessage-deflate/ });
    assert.equal(s.requests[0]?.headers['sec-websocket-extensions'], undefined);
  } finally {
    await s.close();
  }
});

test('with an offer: the header is sent and an answer naming the offered extension is returned as is', async () => {
  const s = await answering('permessage-deflate; server_no_context_takeover');
  try {
    const hs = await clientHandshake(s.url, { extensions: OFFER });
    hs.socket.destroy();
    assert.equal(hs.extensions, 'permessage-deflate; server_no_context_takeover');
    assert.equal(s.requests[0]?.headers['sec-websocket-extensions'], OFFER);
    assert.match(hs.request, /\r\nSec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_max_window_bits\r\n/);
  } finally {
    await s.close();
  }
});

test('with an offer and no extension in the response: extensions is empty', async () => {
  const s = await answering(undefined);
  try {
    const hs = await clientHandshake(s.url, { extensions: OFFER });
    hs.socket.destroy();
    assert.equal(hs.extensions, '');
  } finally {
    await s.close();
  }
});

test('with an offer: an extension not offered, or a malformed header, fails the handshake', async () => {
  for (const [answer, why] of [
    ['x-webkit-deflate-frame', /not offered: x-webkit-deflate-frame/],
    ['permessage-deflate, x-custom', /not offered: x-custom/],
    ['permessage-deflate; =15', /malformed Sec-WebSocket-Extensions/],
  ] as const) {
    const s = await answering(answer);
    try {
      await assert.rejects(clientHandshake(s.url, { extensions: OFFER }), { code: 'WSMOD_ERR_CLIENT_HANDSHAKE', message: why }, answer);
    } finally {
      await s.close();
    }
  }
});

test('a malformed offer is refused before connecting', async () => {
  await assert.rejects(clientHandshake('ws://127.0.0.1:1/', { extensions: 'permessage-deflate;;' }), {
    code: 'WSMOD_ERR_CLIENT_HANDSHAKE',
    message: /malformed extensions offer/,
  });
});
