// Interoperability with a real browser: Debian's Chromium, headless, driven by a page with inline
// JavaScript that this test serves from 127.0.0.1. The page talks to wsmod with the browser's own
// WebSocket and POSTs what it saw back to the test server. Requires /usr/bin/chromium (`npm test`
// installs the Debian package `chromium`): without it these tests fail, they are never skipped.
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { createHost } from '../src/host/host.ts';
import { definePlugin } from '../src/plugin/api.ts';
import { memoryLogger, until } from './helpers.ts';

import { REPORTING, page, startPageServer, withChromium } from './peers/chromium.ts';

// ---- server-side recording ----

/** An echo plugin that records what the server saw: origins at open, messages, onClose. */
function recorder() {
  const origins: Array<string | undefined> = [];
  const messages: Array<{ isBinary: boolean; data: Buffer }> = [];
  const closes: Array<{ code: number; reason: string }> = [];
  const plugin = definePlugin({
    name: 'chromium-recorder',
    apiVersion: 1,
    onOpen(session) {
      const origin = session.headers['origin'];
      origins.push(typeof origin === 'string' ? origin : undefined);
    },
    onMessage(session, data, isBinary) {
      messages.push({ isBinary, data: Buffer.from(data) });
      session.send(data, { binary: isBinary });
    },
    onClose(_session, code, reason) {
      closes.push({ code, reason });
    },
  });
  return { plugin, origins, messages, closes };
}

/** The deterministic binary payload, the same on both sides: byte i is (i * 31 + 7) mod 256. */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

// ---- tests ----

const ECHO_SCRIPT = `${REPORTING}
function pattern(n) {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 31 + 7) & 0xff;
  return a;
}
(async () => {
  try {
    const ws = new WebSocket('ws://' + location.host + CONFIG.path);
    ws.binaryType = 'arraybuffer';
    const inbox = [];
    let wake = null;
    const poke = () => { if (wake !== null) { const w = wake; wake = null; w(); } };
    ws.onmessage = (e) => { inbox.push(e.data); poke(); };
    ws.onerror = () => { result.errors.push('error event'); };
    const closed = new Promise((resolve) => {
      ws.onclose = (e) => {
        result.closeCode = e.code;
        result.closeReason = e.reason;
        result.wasClean = e.wasClean;
        resolve();
        poke();
      };
    });
    const next = async () => {
      while (inbox.length === 0) {
        if (result.closeCode !== undefined) throw new Error('closed (' + result.closeCode + ') while waiting for an echo');
        await new Promise((r) => { wake = r; });
      }
      return inbox.shift();
    };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      closed.then(() => reject(new Error('closed (' + result.closeCode + ') before open')));
    });
    result.protocol = ws.protocol;
    result.extensions = ws.extensions;

    ws.send(CONFIG.text);
    const t = await next();
    result.textType = typeof t;
    result.textOk = t === CONFIG.text;

    const sent = pattern(CONFIG.binarySize);
    ws.send(sent);
    const b = await next();
    result.binaryType = Object.prototype.toString.call(b);
    if (b instanceof ArrayBuffer) {
      const got = new Uint8Array(b);
      result.binaryLength = got.length;
      let same = got.length === sent.length;
      for (let i = 0; same && i < got.length; i++) same = got[i] === sent[i];
      result.binaryOk = same;
    } else {
      result.binaryOk = false;
    }

    ws.close(1000, CONFIG.reason);
    await closed;
  } catch (e) {
    result.errors.push(String((e && e.message) || e));
  }
  report();
})();
`;

interface EchoReport {
  readonly errors: string[];
  readonly protocol?: string;
  readonly extensions?: string;
  readonly textType?: string;
  readonly textOk?: boolean;
  readonly binaryType?: string;
  readonly binaryLength?: number;
  readonly binaryOk?: boolean;
  readonly closeCode?: number;
  readonly closeReason?: string;
  readonly wasClean?: boolean;
}

test('Chromium, same origin: text (non-ASCII) and a 70,000-byte binary echo byte for byte, then a clean 1000 close', { timeout: 90_000 }, async () => {
  const text = 'héllo wörld € — 𝄞 ✓';
  const binarySize = 70_000;
  const reason = 'chromium done ✓';
  const rec = recorder();
  const host = createHost({ routes: [{ path: '/echo', plugin: rec.plugin }], logger: memoryLogger() });
  const web = await startPageServer(
    () => page({ path: '/echo', text, binarySize, reason }, ECHO_SCRIPT),
    (req, res) => {
      // Plain requests on the WebSocket route get wsmod's 426; the rest is not found.
      if (host.handleRequest(req, res)) return;
      res.writeHead(404, { 'Content-Length': 0 });
      res.end();
    },
  );
  host.attach(web.server);
  try {
    const out = (await withChromium(`http://127.0.0.1:${web.port}/`, web.result)) as EchoReport;
    assert.deepEqual(out.errors, [], 'the page hit errors');
    assert.equal(out.protocol, '');
    assert.equal(out.extensions, '', 'permessage-deflate offered by Chromium is not negotiated');
    assert.equal(out.textType, 'string');
    assert.equal(out.textOk, true, 'the text echo differs');
    assert.equal(out.binaryType, '[object ArrayBuffer]');
    assert.equal(out.binaryLength, binarySize);
    assert.equal(out.binaryOk, true, 'the binary echo differs');
    assert.equal(out.closeCode, 1000, 'the server answers the 1000 close');
    assert.equal(out.wasClean, true);

    // The server side: a browser Origin equal to its own origin, the two messages, the close.
    assert.deepEqual(rec.origins, [`http://127.0.0.1:${web.port}`]);
    assert.equal(rec.messages.length, 2);
    const [m1, m2] = rec.messages;
    assert.equal(m1?.isBinary, false);
    assert.equal(m1?.data.toString('utf8'), text);
    assert.equal(m2?.isBinary, true);
    assert.equal(m2?.data.length, binarySize);
    assert.ok(m2?.data.equals(pattern(binarySize)), 'the binary message at the server differs');
    await until(() => rec.closes.length === 1, 10_000, 'onClose');
    assert.deepEqual(rec.closes, [{ code: 1000, reason }]);
    assert.equal(host.connections, 0);
  } finally {
    await host.close({ deadline: 2000 });
    await web.close();
  }
});

const CROSS_ORIGIN_SCRIPT = `${REPORTING}
result.opened = false;
result.errorEvent = false;
try {
  const ws = new WebSocket(CONFIG.url);
  ws.onopen = () => { result.opened = true; };
  ws.onerror = () => { result.errorEvent = true; };
  ws.onclose = (e) => {
    result.closeCode = e.code;
    result.wasClean = e.wasClean;
    report();
  };
} catch (e) {
  result.errors.push(String((e && e.message) || e));
  report();
}
`;

interface CrossOriginReport {
  readonly errors: string[];
  readonly opened: boolean;
  readonly errorEvent: boolean;
  readonly closeCode?: number;
  readonly wasClean?: boolean;
}

test('Chromium, cross origin: a page from another port is refused with 403 by the default "same" policy', { timeout: 90_000 }, async () => {
  const rec = recorder();
  const host = createHost({ routes: [{ path: '/echo', plugin: rec.plugin }], logger: memoryLogger() });
  // The WebSocket server: a second HTTP server, on another port, so another origin.
  const wsServer = createServer((req, res) => {
    if (host.handleRequest(req, res)) return;
    res.writeHead(404, { 'Content-Length': 0 });
    res.end();
  });
  // What the browser asked and what the host answered, tapped off the upgrade socket (this
  // listener runs before the host's, which attach() adds afterwards).
  const handshakes: Array<{ origin: string | undefined; host: string | undefined; response: string }> = [];
  wsServer.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const seen = { origin: req.headers.origin, host: req.headers.host, response: '' };
    handshakes.push(seen);
    const tap = (chunk: unknown): void => {
      if (seen.response === '' && (typeof chunk === 'string' || Buffer.isBuffer(chunk))) seen.response = chunk.toString();
    };
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    const end = socket.end.bind(socket) as (...args: unknown[]) => Duplex;
    socket.write = ((...args: unknown[]) => {
      tap(args[0]);
      return write(...args);
    }) as typeof socket.write;
    socket.end = ((...args: unknown[]) => {
      tap(args[0]);
      return end(...args);
    }) as typeof socket.end;
  });
  host.attach(wsServer);
  await new Promise<void>((resolve, reject) => {
    wsServer.once('error', reject);
    wsServer.listen(0, '127.0.0.1', () => resolve());
  });
  const wsPort = (wsServer.address() as AddressInfo).port;
  const web = await startPageServer(() => page({ url: `ws://127.0.0.1:${wsPort}/echo` }, CROSS_ORIGIN_SCRIPT));
  try {
    assert.notEqual(web.port, wsPort);
    const out = (await withChromium(`http://127.0.0.1:${web.port}/`, web.result)) as CrossOriginReport;
    assert.deepEqual(out.errors, []);
    assert.equal(out.opened, false, 'the browser must not get an open WebSocket');
    assert.equal(out.errorEvent, true, 'an error event fires');
    assert.equal(out.closeCode, 1006);
    assert.equal(out.wasClean, false);

    assert.equal(handshakes.length, 1, 'one handshake reached the WebSocket server');
    const [h] = handshakes;
    assert.equal(h?.origin, `http://127.0.0.1:${web.port}`, 'Chromium sent the page origin');
    assert.equal(h?.host, `127.0.0.1:${wsPort}`);
    assert.match(h?.response ?? '', /^HTTP\/1\.1 403 /, `the host refused with 403, answered: ${JSON.stringify(h?.response)}`);
    assert.deepEqual(rec.origins, [], 'no session opened');
    assert.deepEqual(rec.closes, []);
    assert.equal(host.connections, 0);
  } finally {
    await host.close({ deadline: 2000 });
    await web.close();
    await new Promise<void>((resolve) => {
      wsServer.close(() => resolve());
      wsServer.closeAllConnections();
    });
  }
});
