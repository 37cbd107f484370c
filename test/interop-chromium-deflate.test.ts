// Interoperability of permessage-deflate with a real browser: Debian's Chromium, headless, on a page
// served from 127.0.0.1 by this test (same origin as the WebSocket routes). The page connects to
// routes with `compression` on (defaults: no context takeover; and context takeover both ways),
// checks that `ws.extensions` names permessage-deflate, round-trips a 70 KB text and a 70 KB binary
// message, and POSTs what it saw back. The server counts the bytes on each upgraded socket, so the
// test also sees that the messages crossed the wire compressed both ways. Launching and cleanup are
// those of test/interop-chromium.test.ts. Requires /usr/bin/chromium (`npm test` installs it).
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { createHost } from '../src/host/host.ts';
import { definePlugin } from '../src/plugin/api.ts';
import { memoryLogger, until } from './helpers.ts';

import { REPORTING, page, startPageServer, withChromium } from './peers/chromium.ts';

// ---- the test ----

/** The deterministic binary payload, the same on both sides: byte i is (i * 31 + 7) mod 256. */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

/** An echo plugin that records what the server saw: extensions at open, messages, onClose. */
function recorder() {
  const extensions: string[] = [];
  const messages: Array<{ path: string; isBinary: boolean; data: Buffer }> = [];
  const closes: Array<{ path: string; code: number }> = [];
  const plugin = definePlugin({
    name: 'chromium-deflate-recorder',
    apiVersion: 1,
    onOpen(session) {
      extensions.push(session.extensions);
    },
    onMessage(session, data, isBinary) {
      messages.push({ path: session.path, isBinary, data: Buffer.from(data) });
      session.send(data, { binary: isBinary });
    },
    onClose(session, code) {
      closes.push({ path: session.path, code });
    },
  });
  return { plugin, extensions, messages, closes };
}

const DEFLATE_SCRIPT = `${REPORTING}
function pattern(n) {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 31 + 7) & 0xff;
  return a;
}
async function run(path) {
  const out = { path };
  const ws = new WebSocket('ws://' + location.host + path);
  ws.binaryType = 'arraybuffer';
  const inbox = [];
  let wake = null;
  const poke = () => { if (wake !== null) { const w = wake; wake = null; w(); } };
  ws.onmessage = (e) => { inbox.push(e.data); poke(); };
  ws.onerror = () => { result.errors.push(path + ': error event'); };
  const closed = new Promise((resolve) => {
    ws.onclose = (e) => { out.closeCode = e.code; out.wasClean = e.wasClean; resolve(); poke(); };
  });
  const next = async () => {
    while (inbox.length === 0) {
      if (out.closeCode !== undefined) throw new Error(path + ': closed (' + out.closeCode + ') while waiting for an echo');
      await new Promise((r) => { wake = r; });
    }
    return inbox.shift();
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    closed.then(() => reject(new Error(path + ': closed (' + out.closeCode + ') before open')));
  });
  out.extensions = ws.extensions;

  ws.send(CONFIG.text);
  const t = await next();
  out.textType = typeof t;
  out.textLength = typeof t === 'string' ? t.length : -1;
  out.textOk = t === CONFIG.text;

  const sent = pattern(CONFIG.binarySize);
  ws.send(sent);
  const b = await next();
  out.binaryType = Object.prototype.toString.call(b);
  if (b instanceof ArrayBuffer) {
    const got = new Uint8Array(b);
    out.binaryLength = got.length;
    let same = got.length === sent.length;
    for (let i = 0; same && i < got.length; i++) same = got[i] === sent[i];
    out.binaryOk = same;
  } else {
    out.binaryOk = false;
  }
  ws.close(1000, 'done');
  await closed;
  return out;
}
(async () => {
  result.runs = [];
  for (const path of CONFIG.paths) {
    try {
      result.runs.push(await run(path));
    } catch (e) {
      result.errors.push(String((e && e.message) || e));
    }
  }
  report();
})();
`;

interface Run {
  readonly path: string;
  readonly extensions?: string;
  readonly textType?: string;
  readonly textLength?: number;
  readonly textOk?: boolean;
  readonly binaryType?: string;
  readonly binaryLength?: number;
  readonly binaryOk?: boolean;
  readonly closeCode?: number;
  readonly wasClean?: boolean;
}

test('Chromium, same origin: permessage-deflate negotiated; 70 KB text and 70 KB binary round-trip byte for byte, compressed on the wire', { timeout: 90_000 }, async () => {
  // Compressible text with 1- to 4-byte UTF-8 characters, 70,000 bytes or a little more.
  const unit = 'héllo wörld € — 𝄞 ✓ ';
  const text = unit.repeat(Math.ceil(70_000 / Buffer.byteLength(unit)));
  const binarySize = 70_000;
  const paths = ['/z', '/zt'];
  const rec = recorder();
  const host = createHost({
    routes: [
      { path: '/z', plugin: rec.plugin, compression: true },
      { path: '/zt', plugin: rec.plugin, compression: { serverNoContextTakeover: false, clientNoContextTakeover: false } },
    ],
    logger: memoryLogger(),
  });
  const web = await startPageServer(
    () => page({ paths, text, binarySize }, DEFLATE_SCRIPT),
    (req, res) => {
      if (host.handleRequest(req, res)) return;
      res.writeHead(404, { 'Content-Length': 0 });
      res.end();
    },
  );
  // The upgraded sockets, to count what crossed the wire (this listener runs before the host's).
  const sockets: Array<{ path: string; offer: string | undefined; socket: Socket }> = [];
  web.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    sockets.push({ path: req.url ?? '', offer: req.headers['sec-websocket-extensions'], socket: socket as Socket });
  });
  host.attach(web.server);
  try {
    const out = (await withChromium(`http://127.0.0.1:${web.port}/`, web.result)) as { errors: string[]; runs?: Run[] };
    assert.deepEqual(out.errors, [], 'the page hit errors');
    assert.equal(out.runs?.length, 2);
    const expected: Record<string, string> = {
      '/z': 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
      '/zt': 'permessage-deflate',
    };
    for (const run of out.runs ?? []) {
      assert.match(run.extensions ?? '', /permessage-deflate/, `${run.path}: ws.extensions`);
      assert.equal(run.extensions, expected[run.path], `${run.path}: ws.extensions is the 101's header`);
      assert.equal(run.textType, 'string');
      assert.equal(run.textLength, text.length);
      assert.equal(run.textOk, true, `${run.path}: the text echo differs`);
      assert.equal(run.binaryType, '[object ArrayBuffer]');
      assert.equal(run.binaryLength, binarySize);
      assert.equal(run.binaryOk, true, `${run.path}: the binary echo differs`);
      assert.equal(run.closeCode, 1000);
      assert.equal(run.wasClean, true);
    }

    // The server side: what Chromium offered, what the plugin saw, and the bytes on the wire.
    assert.deepEqual(rec.extensions, paths.map((p) => expected[p]));
    assert.equal(rec.messages.length, 4);
    for (const [i, m] of rec.messages.entries()) {
      assert.equal(m.path, paths[Math.floor(i / 2)]);
      if (i % 2 === 0) {
        assert.equal(m.isBinary, false);
        assert.equal(m.data.toString('utf8'), text);
      } else {
        assert.equal(m.isBinary, true);
        assert.ok(m.data.equals(pattern(binarySize)), 'the binary message at the server differs');
      }
    }
    await until(() => rec.closes.length === 2, 10_000, 'onClose');
    assert.equal(sockets.length, 2);
    const plain = Buffer.byteLength(text) + binarySize;
    for (const s of sockets) {
      assert.match(s.offer ?? '', /permessage-deflate/, `${s.path}: Chromium offered permessage-deflate`);
      // Handshake and close frames included: far less than the messages' plain size.
      assert.ok(s.socket.bytesRead < plain / 4, `${s.path}: ${s.socket.bytesRead} bytes from Chromium for ${plain} bytes of messages`);
      assert.ok(s.socket.bytesWritten < plain / 4, `${s.path}: ${s.socket.bytesWritten} bytes to Chromium for ${plain} bytes of messages`);
    }
    assert.equal(host.connections, 0);
  } finally {
    await host.close({ deadline: 2000 });
    await web.close();
  }
});
