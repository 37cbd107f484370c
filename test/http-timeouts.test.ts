import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { createHost } from '../src/host/host.ts';
import { echoPlugin, memoryLogger } from './helpers.ts';

// mod_reqtimeout killed mod_websocket's idle connections. Here every HTTP timeout of the server is 1 s,
// and a WebSocket idle for 5 s must still be open and still echo.
test('an idle WebSocket outlives every HTTP server timeout', async () => {
  const server = createServer({ requestTimeout: 1000, headersTimeout: 1000, keepAliveTimeout: 1000, connectionsCheckingInterval: 200 });
  server.setTimeout(1000);
  server.keepAliveTimeout = 1000;
  const host = createHost({ routes: [{ path: '/echo', plugin: echoPlugin }], logger: memoryLogger() }).attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
  try {
    await once(ws, 'open');
    let closed = false;
    ws.on('close', () => (closed = true));
    await sleep(5000);
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
    await host.close({ deadline: 1000 });
    server.closeAllConnections();
    server.close();
  }
});
