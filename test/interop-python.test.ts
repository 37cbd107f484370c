// Interoperability with an independent client: Debian's python3-websockets (10.x), driven through
// test/peers/python_client.py. The Python side echoes messages of every length class, injects raw
// frames that break RFC 6455 and reports the close code the server answered with, and pings.
// Requires /usr/bin/python3 with python3-websockets (`npm test` installs it): without it these
// tests fail, they are never skipped.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { definePlugin } from '../src/plugin/api.ts';
import { startHost } from './helpers.ts';

/** Debian's own Python, where Debian's python3-* packages are importable (as in scripts/peers.mjs). */
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./peers/python_client.py', import.meta.url));

// ---- the Python peer ----

/** Runs one command of the Python peer and returns its `result`; fails the test with a clear message otherwise. */
function runPython<T>(command: object): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    execFile(
      PYTHON,
      [SCRIPT, JSON.stringify(command)],
      { timeout: 120_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null && (error as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new Error(`${PYTHON} not found: the Python interop tests need Debian's python3 with python3-websockets`));
          return;
        }
        const line = stdout.trim().split('\n').at(-1) ?? '';
        let parsed: { ok: boolean; error?: string; detail?: string; traceback?: string; result?: T };
        try {
          parsed = JSON.parse(line) as typeof parsed;
        } catch {
          reject(new Error(`python peer printed no JSON result (${error?.message ?? 'exit 0'})\nstdout: ${stdout}\nstderr: ${stderr}`));
          return;
        }
        if (parsed.error === 'import') {
          reject(
            new Error(
              `python3-websockets is not importable by ${PYTHON} (${parsed.detail ?? ''}). ` +
                'Install it with `apt-get install python3-websockets` (npm test does this when it can).',
            ),
          );
          return;
        }
        if (!parsed.ok || parsed.result === undefined) {
          reject(new Error(`python peer failed: ${parsed.error ?? '?'}\n${parsed.traceback ?? ''}\nstderr: ${stderr}`));
          return;
        }
        resolve(parsed.result);
      },
    );
  });
}

/** How a connection ended, as the Python client saw it. */
interface ClosedReport {
  readonly closed: boolean;
  /** Code of the server's close frame (1006 when none arrived). */
  readonly close_code: number | null;
  readonly close_reason: string | null;
  readonly recv_exception: string | null;
  /** The server closed the TCP connection (FIN) without the client having to give up waiting. */
  readonly server_closed_tcp: boolean;
  readonly connection_lost_exception: string | null;
}

/** One frame the Python peer writes raw onto its TCP transport. */
interface FrameSpec {
  readonly opcode: number;
  readonly payload_hex: string;
  readonly fin?: boolean;
  /** 4 = RSV1, 2 = RSV2, 1 = RSV3. */
  readonly rsv?: number;
  /** Default true: masked with a random key, as a client must. */
  readonly masked?: boolean;
}

function frame(opcode: number, payload: Buffer | string = '', extra: Omit<FrameSpec, 'opcode' | 'payload_hex'> = {}): FrameSpec {
  return { opcode, payload_hex: Buffer.from(payload).toString('hex'), ...extra };
}

/** A close frame payload: the code, then the reason bytes. */
function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code);
  return Buffer.concat([head, Buffer.from(reason)]);
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

// ---- server-side recording ----

interface ServerClose {
  readonly code: number;
  readonly reason: string;
}

/**
 * An echo plugin that records, per connection (keyed by the `case` query parameter), what the server
 * received and the code its onClose hook was called with.
 */
function recordingPlugin() {
  const received: Array<{ isBinary: boolean; length: number; sha256: string }> = [];
  const closes = new Map<string, ServerClose>();
  const waiting = new Map<string, (c: ServerClose) => void>();
  const plugin = definePlugin({
    name: 'recording-echo',
    apiVersion: 1,
    onMessage(session, data, isBinary) {
      if (session.query.get('record') === '1') received.push({ isBinary, length: data.length, sha256: sha256(data) });
      session.send(data, { binary: isBinary });
    },
    onClose(session, code, reason) {
      const name = session.query.get('case') ?? '';
      const c = { code, reason };
      closes.set(name, c);
      waiting.get(name)?.(c);
    },
  });
  /** The onClose of the session opened with ?case=name (waits for it, within a generous deadline). */
  const closeOf = (name: string): Promise<ServerClose> => {
    const done = closes.get(name);
    if (done !== undefined) return Promise.resolve(done);
    return new Promise<ServerClose>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`onClose was never called for case "${name}"`)), 10_000);
      waiting.set(name, (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  };
  return { plugin, received, closeOf };
}

// ---- tests ----

test('python-websockets echo: text and binary of 0, 125, 126, 65535, 65536 bytes and 16 MiB, then a clean 1000 close', { timeout: 120_000 }, async () => {
  const rec = recordingPlugin();
  const t = await startHost([{ path: '/echo', plugin: rec.plugin, maxMessageSize: 17 * 1024 * 1024 }]);
  try {
    const sizes = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024];
    const messages = sizes.flatMap((size) => [
      { kind: 'text', size },
      { kind: 'binary', size },
    ]);
    const out = await runPython<{
      messages: Array<{
        kind: string;
        size: number;
        sent_sha256: string;
        recv_type: string;
        recv_len: number;
        recv_sha256: string;
        equal: boolean;
      }>;
      close: ClosedReport & { clean: boolean };
    }>({ op: 'echo', url: `${t.base}/echo?record=1&case=echo`, messages, close: { code: 1000, reason: 'done' } });

    assert.equal(out.messages.length, messages.length);
    out.messages.forEach((m, i) => {
      const what = `${m.kind} message of ${m.size} bytes`;
      const want = messages[i]!;
      assert.deepEqual({ kind: m.kind, size: m.size }, want, `message ${i}`);
      assert.equal(m.recv_type, m.kind === 'text' ? 'str' : 'bytes', `${what}: echoed with the wrong type`);
      assert.equal(m.recv_len, m.size, `${what}: echoed length`);
      assert.equal(m.recv_sha256, m.sent_sha256, `${what}: echoed content differs`);
      assert.equal(m.equal, true, `${what}: echo not identical`);
      // What the server's plugin received is what Python sent, with the right type.
      const s = rec.received[i];
      assert.ok(s !== undefined, `${what}: never reached the plugin`);
      assert.equal(s.isBinary, m.kind === 'binary', `${what}: isBinary`);
      assert.equal(s.length, m.size, `${what}: length at the server`);
      assert.equal(s.sha256, m.sent_sha256, `${what}: content at the server`);
    });
    assert.equal(rec.received.length, messages.length);

    assert.equal(out.close.closed, true);
    assert.equal(out.close.close_code, 1000, 'the server echoes the 1000 close');
    assert.equal(out.close.clean, true, `a clean close, got ${String(out.close.recv_exception)}`);
    assert.equal(out.close.server_closed_tcp, true, 'the server closes the TCP connection after the closing handshake');
    assert.equal(out.close.connection_lost_exception, null);
    assert.deepEqual(await rec.closeOf('echo'), { code: 1000, reason: 'done' });
  } finally {
    await t.close();
  }
});

/** A violation (or a valid close) the Python client injects, and what must follow. */
interface ViolationCase {
  readonly name: string;
  readonly path: '/probe' | '/small';
  readonly frames: readonly FrameSpec[];
  /** The close code the server must send. */
  readonly expect: number;
  /** The code the plugin's onClose must get (default: `expect`). */
  readonly serverCode?: number;
}

const TEXT = 0x1;
const BINARY = 0x2;
const CONT = 0x0;
const CLOSE = 0x8;
const PING = 0x9;
// Autobahn 6.3.1 / 7.5.1: "κόσμε" with a UTF-16 surrogate (ed a0 80) in the middle, then "edited".
const BAD_UTF8 = Buffer.from('cebae1bdb9cebcceb5eda080656469746564', 'hex');

const VIOLATIONS: readonly ViolationCase[] = [
  { name: 'unmasked frame', path: '/probe', frames: [frame(TEXT, 'hello', { masked: false })], expect: 1002 },
  { name: 'RSV1 on a text frame (no extension negotiated)', path: '/probe', frames: [frame(TEXT, 'hello', { rsv: 4 })], expect: 1002 },
  { name: 'RSV2 on a binary frame', path: '/probe', frames: [frame(BINARY, 'hello', { rsv: 2 })], expect: 1002 },
  { name: 'RSV3 on a ping', path: '/probe', frames: [frame(PING, 'hello', { rsv: 1 })], expect: 1002 },
  { name: 'reserved data opcode 0x3', path: '/probe', frames: [frame(0x3, '')], expect: 1002 },
  { name: 'reserved data opcode 0x7', path: '/probe', frames: [frame(0x7, 'x')], expect: 1002 },
  { name: 'reserved control opcode 0xB', path: '/probe', frames: [frame(0xb, '')], expect: 1002 },
  { name: 'reserved control opcode 0xF', path: '/probe', frames: [frame(0xf, 'x')], expect: 1002 },
  { name: 'ping with a 126-byte payload', path: '/probe', frames: [frame(PING, Buffer.alloc(126, 0x61))], expect: 1002 },
  { name: 'close with a 126-byte payload', path: '/probe', frames: [frame(CLOSE, closePayload(1000, 'x'.repeat(124)))], expect: 1002 },
  { name: 'fragmented ping (FIN=0)', path: '/probe', frames: [frame(PING, 'a', { fin: false }), frame(CONT, 'b')], expect: 1002 },
  { name: 'continuation frame without a message', path: '/probe', frames: [frame(CONT, 'orphan')], expect: 1002 },
  {
    name: 'new text frame inside a fragmented message',
    path: '/probe',
    frames: [frame(TEXT, 'frag', { fin: false }), frame(TEXT, 'ment')],
    expect: 1002,
  },
  {
    name: 'new binary frame inside a fragmented text message',
    path: '/probe',
    frames: [frame(TEXT, 'frag', { fin: false }), frame(BINARY, 'ment')],
    expect: 1002,
  },
  { name: 'close with a 1-byte payload', path: '/probe', frames: [frame(CLOSE, Buffer.from([0x03]))], expect: 1002 },
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535].map(
    (code): ViolationCase => ({ name: `close with invalid code ${code}`, path: '/probe', frames: [frame(CLOSE, closePayload(code))], expect: 1002 }),
  ),
  { name: 'invalid UTF-8 in a text message', path: '/probe', frames: [frame(TEXT, BAD_UTF8)], expect: 1007 },
  {
    name: 'invalid UTF-8 in a fragmented text message',
    path: '/probe',
    frames: [frame(TEXT, BAD_UTF8.subarray(0, 11), { fin: false }), frame(CONT, BAD_UTF8.subarray(11))],
    expect: 1007,
  },
  { name: 'text message ending inside a code point', path: '/probe', frames: [frame(TEXT, Buffer.from('cebae1bd', 'hex'))], expect: 1007 },
  { name: 'invalid UTF-8 in a close reason', path: '/probe', frames: [frame(CLOSE, closePayload(1000, BAD_UTF8))], expect: 1007 },
  { name: 'message over maxMessageSize (2000 > 1024 bytes)', path: '/small', frames: [frame(BINARY, Buffer.alloc(2000, 7))], expect: 1009 },
  {
    name: 'fragmented message over maxMessageSize (3 x 500 > 1024 bytes)',
    path: '/small',
    frames: [frame(TEXT, 'a'.repeat(500), { fin: false }), frame(CONT, 'b'.repeat(500), { fin: false }), frame(CONT, 'c'.repeat(500))],
    expect: 1009,
  },
  { name: 'valid close 3000', path: '/probe', frames: [frame(CLOSE, closePayload(3000, 'app'))], expect: 3000 },
  { name: 'valid close 4999', path: '/probe', frames: [frame(CLOSE, closePayload(4999))], expect: 4999 },
  // A close without a code is answered with 1000; the plugin hears 1005 ("no status received").
  { name: 'empty close', path: '/probe', frames: [frame(CLOSE)], expect: 1000, serverCode: 1005 },
];

test('python-websockets sees the right close code for every close code rule, and the server closes TCP', { timeout: 120_000 }, async () => {
  const rec = recordingPlugin();
  const t = await startHost([
    { path: '/probe', plugin: rec.plugin },
    { path: '/small', plugin: rec.plugin, maxMessageSize: 1024 },
  ]);
  try {
    const cases = VIOLATIONS.map((c) => ({ name: c.name, path: `${c.path}?case=${encodeURIComponent(c.name)}`, frames: c.frames }));
    const out = await runPython<{ cases: Array<ClosedReport & { name: string; warmup_ok?: boolean; error?: string }> }>({
      op: 'violations',
      base: t.base,
      cases,
    });
    assert.equal(out.cases.length, VIOLATIONS.length);
    for (const [i, c] of VIOLATIONS.entries()) {
      const r = out.cases[i]!;
      assert.equal(r.name, c.name);
      assert.equal(r.error, undefined, `${c.name}: the Python client failed: ${String(r.error)}`);
      assert.equal(r.warmup_ok, true, `${c.name}: the echo round trip before the violation`);
      assert.equal(r.close_code, c.expect, `${c.name}: close code sent by the server`);
      assert.equal(r.closed, true, `${c.name}: connection closed`);
      assert.match(r.recv_exception ?? '', /^ConnectionClosed/, `${c.name}: recv after the close`);
      assert.equal(r.server_closed_tcp, true, `${c.name}: the server closes the TCP connection`);
      const server = await rec.closeOf(c.name);
      assert.equal(server.code, c.serverCode ?? c.expect, `${c.name}: code passed to the plugin's onClose`);
    }
    const reasons = new Map(VIOLATIONS.map((c, i) => [c.name, out.cases[i]!.close_reason]));
    assert.equal(reasons.get('valid close 3000'), '', 'the echoed close carries the code only');
    assert.equal(t.host.connections, 0);
  } finally {
    await t.close();
  }
});

test('python-websockets ping gets a pong with the same payload (auto-pong)', { timeout: 60_000 }, async () => {
  const rec = recordingPlugin();
  const t = await startHost([{ path: '/echo', plugin: rec.plugin }]);
  try {
    const payloads = [Buffer.alloc(0), Buffer.from('wsmod ping'), Buffer.from([0x00, 0xff, 0x80, 0x7f]), Buffer.alloc(125, 0xa5)];
    const out = await runPython<{ pings: Array<{ sent_hex: string; pongs_hex: string[] }>; close: ClosedReport }>({
      op: 'ping',
      url: `${t.base}/echo?case=ping`,
      payloads_hex: payloads.map((p) => p.toString('hex')),
    });
    assert.equal(out.pings.length, payloads.length);
    out.pings.forEach((p, i) => {
      assert.equal(p.sent_hex, payloads[i]!.toString('hex'));
      assert.deepEqual(p.pongs_hex, [p.sent_hex], `ping ${i} (${payloads[i]!.length} bytes): exactly one pong, same payload`);
    });
    assert.equal(out.close.close_code, 1000);
    assert.equal(out.close.server_closed_tcp, true);
    assert.equal((await rec.closeOf('ping')).code, 1000);
  } finally {
    await t.close();
  }
});
