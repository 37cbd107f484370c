import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { createHost } from '../src/host/host.ts';
import { echoPlugin, memoryLogger } from './helpers.ts';

/** A plain TCP connection to the server that sends `bytes`; resolves when the server closes it. */
async function probe(port: number, bytes: string): Promise<{ closed: Promise<string>; socket: Socket }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let reply = '';
  socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(reply)));
  if (bytes !== '') socket.write(bytes);
  return { closed, socket };
}

// mod_reqtimeout killed mod_websocket's idle connections. Here every HTTP timeout of the server is 1 s.
// Instead of sleeping, the test opens plain HTTP connections after the WebSocket and waits until the
// server's own timeouts have closed each of them: the WebSocket, idle for longer than all of them, must
// still be open and still echo.
test('an idle WebSocket outlives every HTTP server timeout', async () => {
  const server = createServer({ requestTimeout: 1000, headersTimeout: 1000, keepAliveTimeout: 1000, connectionsCheckingInterval: 200 });
  server.setTimeout(1000);
  server.keepAliveTimeout = 1000;
  // Plain requests are answered, so a keep-alive connection exists for keepAliveTimeout to end.
  server.on('request', (_req, res) => res.end('plain\n'));
  const host = createHost({ routes: [{ path: '/echo', plugin: echoPlugin }], logger: memoryLogger() }).attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
  const probes: Socket[] = [];
  try {
    await once(ws, 'open');
    let closed = false;
    ws.on('close', () => (closed = true));
    const silent = await probe(port, ''); // no request at all: headersTimeout
    const slowHead = await probe(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`); // an unfinished head: headersTimeout
    const slowBody = await probe(port, `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 10\r\n\r\nab`); // requestTimeout / socket timeout
    const keepAlive = await probe(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`); // answered, then keepAliveTimeout
    probes.push(silent.socket, slowHead.socket, slowBody.socket, keepAlive.socket);
    const replies = await Promise.all([silent.closed, slowHead.closed, slowBody.closed, keepAlive.closed]);
    assert.match(replies[3]!, /^HTTP\/1\.1 200 /, 'the keep-alive probe got its answer before the server closed it');
    assert.equal(closed, false, 'the idle WebSocket was closed');
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.send('still here');
    const [data] = (await once(ws, 'message')) as [Buffer];
    assert.equal(data.toString(), 'still here');
    ws.close(1000);
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1000);
  } finally {
    ws.terminate();
    for (const s of probes) s.destroy();
    await host.close({ deadline: 1000 });
    server.closeAllConnections();
    server.close();
  }
});
