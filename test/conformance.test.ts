// The gate: every case of the conformance suite against wsmod's own echo route. Groups 1-7, 9 and 10
// (301 cases, no extension offered) on a route without compression and again on one with compression
// on; groups 12 and 13 (216 permessage-deflate cases) on the route with compression. Every case must
// be OK, or INFORMATIONAL where the suite itself says so.
//
// Groups 12 and 13 send 1000 messages of up to 128 KiB per case, as Autobahn does; that full run takes
// about a quarter of an hour. CI (CI=true) and WSMOD_CONFORMANCE_FULL=1 run the 216 cases exactly as
// catalogued; a developer's local `npm test` runs the same 216 cases (ids, sizes, fragmentation, offers,
// data) with DEFLATE_GATE_MESSAGES messages each. Both also run them with context takeover on the
// server and every echo compressed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { group12Cases } from '../src/check/cases/group12.ts';
import { group13Cases } from '../src/check/cases/group13.ts';
import { ALL_CASES, BASE_CASES, DEFLATE_CASES } from '../src/check/catalog.ts';
import { summaryTable } from '../src/check/report.ts';
import { runCases, selectCases } from '../src/check/runner.ts';
import type { CaseResult } from '../src/check/types.ts';
import { definePlugin } from '../src/plugin/api.ts';
import { createWorkerPlugin } from '../src/plugin/isolation/worker.ts';
import { acceptKey } from '../src/protocol/handshake.ts';
import { DeflateCodec } from '../src/protocol/permessage-deflate.ts';
import { echoPlugin, startHost } from './helpers.ts';

/** Cases the Autobahn TestSuite reports as INFORMATIONAL by design. */
const INFORMATIONAL = new Set(['7.1.6', '7.13.1', '7.13.2']);

/** Messages per 12.x / 13.x case in the gate (Autobahn: 1000). */
const DEFLATE_GATE_MESSAGES = 20;
/** Messages per case in the run with context takeover. */
const DEFLATE_TAKEOVER_MESSAGES = 10;
const FULL = process.env['WSMOD_CONFORMANCE_FULL'] === '1' || process.env['CI'] === 'true';

const MAX_MESSAGE = 17 * 1024 * 1024;

function notAsExpected(results: readonly CaseResult[]): string[] {
  return results
    .filter((r) => (INFORMATIONAL.has(r.id) ? r.verdict !== 'INFORMATIONAL' : r.verdict !== 'OK'))
    .map((r) => `${r.id} ${r.verdict} (${r.result} / ${r.behaviorClose}: ${r.resultClose}) ${r.notes.join('; ')}`);
}

test('wsmod passes the 301 cases of groups 1-10: every one OK, or INFORMATIONAL where the suite says so', { timeout: 600_000 }, async () => {
  assert.equal(ALL_CASES.length, 517);
  assert.equal(BASE_CASES.length, 301);
  const t = await startHost([{ path: '/echo', plugin: echoPlugin, maxMessageSize: MAX_MESSAGE }]);
  try {
    const results = await runCases(`${t.base}/echo`, BASE_CASES);
    console.log(summaryTable(results));
    assert.deepEqual(notAsExpected(results), []);
  } finally {
    await t.close();
  }
});

test('on a worker-isolated echo route (the example plugin in a worker thread), the 301 cases of groups 1-10: every one OK, none NON-STRICT', { timeout: 600_000 }, async () => {
  // Replies still owed by the worker for messages before a protocol error leave before the close
  // frame (Autobahn's strict outcome in 3.2-3.4, 4.1.3-4.2.5, 5.15...).
  const plugin = await createWorkerPlugin({
    specifier: './echo.ts',
    baseDir: fileURLToPath(new URL('../examples/', import.meta.url)),
    path: '/echo-worker',
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const t = await startHost([{ path: '/echo-worker', plugin, maxMessageSize: MAX_MESSAGE }]);
  try {
    const results = await runCases(`${t.base}/echo-worker`, BASE_CASES);
    console.log(summaryTable(results));
    assert.deepEqual(notAsExpected(results), []);
  } finally {
    await t.close();
  }
});

test(`with compression on, wsmod passes the 216 permessage-deflate cases of groups 12 and 13 (${FULL ? 'as catalogued' : `${DEFLATE_GATE_MESSAGES} messages each`}): every one OK`, { timeout: FULL ? 7_200_000 : 900_000 }, async () => {
  const cases = FULL ? DEFLATE_CASES : [...group12Cases({ messages: DEFLATE_GATE_MESSAGES }), ...group13Cases({ messages: DEFLATE_GATE_MESSAGES })];
  assert.deepEqual(
    cases.map((c) => c.id),
    DEFLATE_CASES.map((c) => c.id),
  );
  const t = await startHost([{ path: '/echo', plugin: echoPlugin, maxMessageSize: MAX_MESSAGE, compression: true }]);
  try {
    const t0 = performance.now();
    const results = await runCases(`${t.base}/echo`, cases);
    console.log(summaryTable(results));
    console.log(`groups 12 and 13: ${results.length} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    assert.deepEqual(notAsExpected(results), []);
  } finally {
    await t.close();
  }
});

test(`with compression on, context takeover and every echo compressed, wsmod passes the 216 cases of groups 12 and 13 (${DEFLATE_TAKEOVER_MESSAGES} messages each): every one OK`, { timeout: 900_000 }, async () => {
  // The defaults above compress without context takeover; here the server keeps its compression
  // context across messages where the offer allows it (12.x, 13.1, 13.3, 13.4) and compresses even
  // 16-octet echoes, so the client inflates with context takeover (RFC 7692 §7.1.1, example §7.2.3.2).
  const cases = [...group12Cases({ messages: DEFLATE_TAKEOVER_MESSAGES }), ...group13Cases({ messages: DEFLATE_TAKEOVER_MESSAGES })];
  const compression = { serverNoContextTakeover: false, clientNoContextTakeover: false, threshold: 0 };
  const t = await startHost([{ path: '/echo', plugin: echoPlugin, maxMessageSize: MAX_MESSAGE, compression }]);
  try {
    const results = await runCases(`${t.base}/echo`, cases);
    console.log(summaryTable(results));
    assert.deepEqual(notAsExpected(results), []);
  } finally {
    await t.close();
  }
});

test('with compression on, the 301 cases of groups 1-10 (which offer no extension) stay OK', { timeout: 600_000 }, async () => {
  const t = await startHost([{ path: '/echo', plugin: echoPlugin, maxMessageSize: MAX_MESSAGE, compression: true }]);
  try {
    const results = await runCases(`${t.base}/echo`, BASE_CASES);
    console.log(summaryTable(results));
    assert.deepEqual(notAsExpected(results), []);
  } finally {
    await t.close();
  }
});

test('permessage-deflate cases judge honestly: UNIMPLEMENTED without the extension, FAILED on a bad response or a wrong echo', async (t) => {
  const ids = ['12.1.1', '12.2.11', '13.3.1', '13.7.1'];
  const some = selectCases(group12Cases({ messages: 5 }).concat(group13Cases({ messages: 5 })), ids);
  assert.equal(some.length, ids.length);

  await t.test('a route without compression: UNIMPLEMENTED, the client closing at once with 1000, cleanly', async () => {
    const host = await startHost([{ path: '/echo', plugin: echoPlugin }]);
    try {
      const results = await runCases(`${host.base}/echo`, some);
      for (const r of results) {
        assert.equal(r.verdict, 'UNIMPLEMENTED', `${r.id}: ${r.result}`);
        assert.equal(r.behaviorClose, 'OK', `${r.id}: ${r.resultClose}`);
        assert.equal(r.remoteCloseCode, 1000);
      }
    } finally {
      await host.close();
    }
  });

  await t.test('a server whose echo differs from what was sent: FAILED', async () => {
    const reversing = definePlugin({
      name: 'reversing-echo',
      apiVersion: 1,
      onMessage(session, data, isBinary) {
        const copy = Buffer.from(data);
        session.send(copy.length > 1 ? copy.reverse() : copy, { binary: isBinary });
      },
    });
    const host = await startHost([{ path: '/echo', plugin: reversing, compression: true }]);
    try {
      const results = await runCases(`${host.base}/echo`, some);
      for (const r of results) assert.equal(r.verdict, 'FAILED', `${r.id}: ${r.result}`);
    } finally {
      await host.close();
    }
  });

  await t.test('a server whose compressed echo does not inflate, or inflates to invalid UTF-8 in a text message: the client fails the connection with 1007, FAILED', async () => {
    const codec = new DeflateCodec({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, 'server');
    const badUtf8 = await codec.compress(Buffer.from([0x48, 0x69, 0xc3, 0x28]));
    codec.close();
    for (const [payload, error] of [
      [Buffer.from([0xff, 0xff, 0xff]), /WSMOD_ERR_INFLATE/],
      [badUtf8, /WSMOD_ERR_INVALID_UTF8/],
    ] as const) {
      const server = createServer();
      const sockets = new Set<Duplex>();
      server.on('upgrade', (req, socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
        const key = String(req.headers['sec-websocket-key']);
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
            'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n',
        );
        // Whatever the client sends first is answered with one compressed text frame (RSV1).
        socket.once('data', () => socket.write(Buffer.concat([Buffer.from([0xc1, payload.length]), payload])));
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const [r] = await runCases(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, selectCases(some, ['12.1.1']));
        assert.equal(r?.verdict, 'FAILED');
        assert.match(r?.notes.join('\n') ?? '', error);
        // The client's close frame: 88 82, mask key, 2 masked octets of code.
        const closeFrame = Buffer.from(r?.wire.find((w) => w.dir === 'tx' && w.text.startsWith('8882'))?.text ?? '', 'hex');
        assert.equal(closeFrame.length, 8, 'the client sent a close frame with a code');
        assert.equal(((closeFrame[6]! ^ closeFrame[2]!) << 8) | (closeFrame[7]! ^ closeFrame[3]!), 1007);
      } finally {
        for (const socket of sockets) socket.destroy();
        server.close();
      }
    }
  });

  await t.test('a server answering permessage-deflate without the server_max_window_bits the client asked for: FAILED, no connection', async () => {
    // RFC 7692 §7.1.2.1: the server must answer server_max_window_bits when the client offered it.
    const server = createServer();
    server.on('upgrade', (req, socket) => {
      const key = String(req.headers['sec-websocket-key']);
      socket.end(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
          'Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
      );
    });
    server.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const [r] = await runCases(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, selectCases(some, ['13.3.1']));
      assert.equal(r?.verdict, 'FAILED');
      assert.match(r?.result ?? '', /opening handshake failed: .*server_max_window_bits/);
    } finally {
      server.close();
    }
  });
});

test('wsmod check (the CLI) prints the summary, writes JSON and HTML reports, exits 0 when nothing failed and 1 otherwise', async () => {
  const cli = fileURLToPath(new URL('../dist/cli/wsmod.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'wsmod-check-'));
  const t = await startHost();
  try {
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(process.execPath, [cli, 'check', ...args], { encoding: 'utf8' }, (err, stdout) =>
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout }),
        ),
      );
    const ok = await run([`${t.base}/echo`, '--cases', '1.*,2.1', '--exclude', '1.2.*', '--report', dir]);
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /9 cases/);
    assert.match(ok.stdout, /total\s+9\s+9\s+0\s+0\s+0\s+0/);
    const report = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { summary: { total: number; OK: number }; results: Array<{ id: string; wire: unknown[] }> };
    assert.equal(report.summary.total, 9);
    assert.equal(report.summary.OK, 9);
    assert.ok(report.results.every((r) => r.wire.length > 0), 'each case carries its wire log');
    assert.match(readFileSync(join(dir, 'index.html'), 'utf8'), /case-1\.1\.1\.html/);
    assert.ok(existsSync(join(dir, 'case-1.1.1.html')));
    // Group 9 sends up to 16 MiB: against the default 1 MiB limit those cases fail, and so does the run.
    const failing = await run([`${t.base}/echo`, '--cases', '9.1.6', '--report', dir, '--json']);
    assert.equal(failing.code, 1);
    const json = JSON.parse(failing.stdout) as { summary: { FAILED: number } };
    assert.equal(json.summary.FAILED, 1);
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
