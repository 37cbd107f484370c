import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WsmodError } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import {
  acceptKey,
  acceptResponse,
  isValidHeader,
  listHeader,
  refusal,
  refusalResponse,
  selectProtocol,
  validateHandshake,
} from './handshake.ts';
import type { HandshakeHeaders, HandshakeRequest, HandshakeResult } from './handshake.ts';

/** RFC 6455 §1.3 sample. */
const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

const BASE_HEADERS: HandshakeHeaders = {
  host: 'server.example.com',
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-key': SAMPLE_KEY,
  'sec-websocket-version': '13',
};

/** A request with the base headers, some overridden (`undefined` removes a header). */
function request(headers: HandshakeHeaders = {}, method = 'GET', httpVersion = '1.1'): HandshakeRequest {
  const merged: Record<string, string | readonly string[] | undefined> = { ...BASE_HEADERS, ...headers };
  for (const name of Object.keys(merged)) if (merged[name] === undefined) delete merged[name];
  return { method, httpVersion, headers: merged };
}

function expectAccept(result: HandshakeResult): { key: string; protocols: readonly string[] } {
  assert.equal(result.ok, true, result.ok ? '' : `refused: ${result.code}`);
  if (!result.ok) throw new Error('unreachable');
  return result;
}

function expectRefusal(result: HandshakeResult, code: ErrorCode, status: number, headers: Record<string, string> = {}): void {
  assert.equal(result.ok, false, `expected ${code}, got an accept`);
  if (result.ok) return;
  assert.equal(result.code, code);
  assert.equal(result.status, status);
  assert.deepEqual(result.headers, headers);
  assert.equal(typeof result.reason, 'string');
}

function isCode(code: ErrorCode): (err: unknown) => boolean {
  return (err: unknown) => err instanceof WsmodError && err.code === code;
}

describe('validateHandshake', () => {
  test('accepts the RFC 6455 §1.3 sample request', () => {
    const r = expectAccept(validateHandshake(request()));
    assert.equal(r.key, SAMPLE_KEY);
    assert.deepEqual(r.protocols, []);
  });

  test('the RFC 6455 §1.3 sample key gives the sample accept value', () => {
    assert.equal(acceptKey(SAMPLE_KEY), SAMPLE_ACCEPT);
  });

  test('non-GET methods are 405 WSMOD_ERR_METHOD with Allow: GET', () => {
    for (const method of ['POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE', 'CONNECT', 'get']) {
      expectRefusal(validateHandshake(request({}, method)), 'WSMOD_ERR_METHOD', 405, { Allow: 'GET' });
    }
  });

  test('HTTP versions below 1.1 are 400 WSMOD_ERR_HTTP_VERSION', () => {
    for (const v of ['1.0', '0.9', '1', '', 'x.y', '0.1']) {
      expectRefusal(validateHandshake(request({}, 'GET', v)), 'WSMOD_ERR_HTTP_VERSION', 400);
    }
    expectAccept(validateHandshake(request({}, 'GET', '1.1')));
  });

  test('Host, Sec-WebSocket-Key, Sec-WebSocket-Version or Origin sent twice (rawHeaders) is 400 WSMOD_ERR_DUPLICATE_HEADER', () => {
    const raw = (...extra: string[]): string[] => ['Host', 'a.example', 'Upgrade', 'websocket', 'Connection', 'Upgrade', ...extra];
    const with_ = (rawHeaders: string[]) => validateHandshake({ ...request(), rawHeaders });
    expectAccept(with_(raw('Sec-WebSocket-Key', SAMPLE_KEY, 'Origin', 'http://a.example', 'X-Twice', '1', 'x-twice', '2')));
    for (const [name, value] of [
      ['host', 'b.example'],
      ['Sec-WebSocket-Key', SAMPLE_KEY],
      ['SEC-WEBSOCKET-VERSION', '13'],
      ['Origin', 'http://evil.example'],
    ] as const) {
      const first = name.toLowerCase() === 'host' ? [] : [name, value];
      const r = with_(raw(...first, name, value));
      expectRefusal(r, 'WSMOD_ERR_DUPLICATE_HEADER', 400);
      assert.match(r.ok ? '' : r.reason, new RegExp(name, 'i'));
    }
  });

  test('a missing, empty or repeated Host is 400 WSMOD_ERR_HOST_MISSING', () => {
    expectRefusal(validateHandshake(request({ host: undefined })), 'WSMOD_ERR_HOST_MISSING', 400);
    expectRefusal(validateHandshake(request({ host: '' })), 'WSMOD_ERR_HOST_MISSING', 400);
    expectRefusal(validateHandshake(request({ host: '   ' })), 'WSMOD_ERR_HOST_MISSING', 400);
    expectRefusal(validateHandshake(request({ host: ['a.example', 'b.example'] })), 'WSMOD_ERR_HOST_MISSING', 400);
    expectAccept(validateHandshake(request({ host: ['a.example'] })));
    expectAccept(validateHandshake(request({ host: '127.0.0.1:8080' })));
  });

  test('Upgrade must contain the websocket token, case-insensitively', () => {
    for (const upgrade of ['websocket', 'WebSocket', 'WEBSOCKET', 'h2c, websocket', 'websocket, h2c', ' websocket ']) {
      expectAccept(validateHandshake(request({ upgrade })));
    }
    expectAccept(validateHandshake(request({ upgrade: ['h2c', 'WebSocket'] })));
    for (const upgrade of [undefined, '', 'h2c', 'websockets', 'web socket', 'websocket/13x', 'http/1.1']) {
      expectRefusal(validateHandshake(request({ upgrade })), 'WSMOD_ERR_UPGRADE_HEADER', 400);
    }
  });

  test('Connection must contain the upgrade token, case-insensitively', () => {
    for (const connection of ['Upgrade', 'upgrade', 'UPGRADE', 'keep-alive, Upgrade', 'Upgrade, keep-alive', 'keep-alive,upgrade']) {
      expectAccept(validateHandshake(request({ connection })));
    }
    expectAccept(validateHandshake(request({ connection: ['keep-alive', 'Upgrade'] })));
    for (const connection of [undefined, '', 'keep-alive', 'close', 'Upgrade-Insecure', 'keep-alive upgrade']) {
      expectRefusal(validateHandshake(request({ connection })), 'WSMOD_ERR_CONNECTION_HEADER', 400);
    }
  });

  test('Sec-WebSocket-Key must be the canonical base64 of 16 bytes', () => {
    const bad = [
      undefined,
      '',
      'dGhlIHNhbXBsZSBub25jZQ=', // one '=' short
      'dGhlIHNhbXBsZSBub25jZQ', // no padding
      'dGhlIHNhbXBsZSBub25jZQ===',
      'dGhlIHNhbXBsZSBub25jZR==', // non-canonical: last character has low bits set
      'dGhlIHNhbXBsZSBub25jZf==',
      'dGhlIHNhbXBsZSBub25j', // 15 bytes
      Buffer.alloc(15, 1).toString('base64'),
      Buffer.alloc(17, 1).toString('base64'),
      Buffer.alloc(32, 1).toString('base64'),
      'dGhlIHNhbXBsZSBub25j!Q==', // invalid character
      'dGhlIHNhbXBsZSBub25j-Q==', // base64url alphabet
      'dGhlIHNhbXBsZSBub25j_Q==',
      'dGhlIHNhbXBsZSB ub25jZQ==',
      [SAMPLE_KEY, SAMPLE_KEY], // sent twice
      [SAMPLE_KEY, 'AAAAAAAAAAAAAAAAAAAAAA=='],
    ];
    for (const key of bad) {
      expectRefusal(validateHandshake(request({ 'sec-websocket-key': key })), 'WSMOD_ERR_KEY', 400);
    }
    expectAccept(validateHandshake(request({ 'sec-websocket-key': [SAMPLE_KEY] })));
  });

  test('keys: accepted exactly when they are the canonical base64 of 16 bytes', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(16).toString('base64');
      assert.equal(validateHandshake(request({ 'sec-websocket-key': key })).ok, true, key);
      // Vary the last data character over the whole alphabet.
      for (const c of alphabet) {
        const variant = key.slice(0, 21) + c + '==';
        const canonical = Buffer.from(variant, 'base64').toString('base64') === variant;
        assert.equal(validateHandshake(request({ 'sec-websocket-key': variant })).ok, canonical, variant);
      }
    }
  });

  test('version 8, 12, missing or repeated is 426 WSMOD_ERR_VERSION with Sec-WebSocket-Version: 13', () => {
    for (const version of ['8', '12', '14', '0', '', 'thirteen', '13, 8', undefined, ['13', '13'], ['8', '13']]) {
      expectRefusal(validateHandshake(request({ 'sec-websocket-version': version })), 'WSMOD_ERR_VERSION', 426, {
        'Sec-WebSocket-Version': '13',
      });
    }
    expectAccept(validateHandshake(request({ 'sec-websocket-version': ['13'] })));
  });

  test('Sec-WebSocket-Protocol: a list of distinct tokens, in client order', () => {
    assert.deepEqual(expectAccept(validateHandshake(request({ 'sec-websocket-protocol': 'chat' }))).protocols, ['chat']);
    assert.deepEqual(
      expectAccept(validateHandshake(request({ 'sec-websocket-protocol': 'superchat, chat,v2.json' }))).protocols,
      ['superchat', 'chat', 'v2.json'],
    );
    assert.deepEqual(
      expectAccept(validateHandshake(request({ 'sec-websocket-protocol': ['chat', 'superchat'] }))).protocols,
      ['chat', 'superchat'],
    );
  });

  test('malformed Sec-WebSocket-Protocol is 400 WSMOD_ERR_PROTOCOL_HEADER', () => {
    for (const value of [
      '',
      ' ',
      ',',
      'chat,,superchat',
      ', chat',
      'chat, ',
      'ch at',
      'chat/1',
      'a;b',
      '"chat"',
      'chät',
      'a=b',
      'chat, chat',
      'chat, superchat, chat',
      ['chat', 'chat'],
      ['chat', ''],
    ]) {
      expectRefusal(validateHandshake(request({ 'sec-websocket-protocol': value })), 'WSMOD_ERR_PROTOCOL_HEADER', 400);
    }
  });

  test('the refusal reason is a string and the status comes from the error registry', () => {
    const r = refusal('WSMOD_ERR_VERSION', 'x', { 'Sec-WebSocket-Version': '13' });
    assert.deepEqual({ ok: r.ok, code: r.code, status: r.status, headers: r.headers }, {
      ok: false,
      code: 'WSMOD_ERR_VERSION',
      status: 426,
      headers: { 'Sec-WebSocket-Version': '13' },
    });
    assert.equal(refusal('WSMOD_ERR_NOT_FOUND').status, 404);
    assert.equal(refusal('WSMOD_ERR_ORIGIN').status, 403);
  });
});

describe('listHeader', () => {
  test('splits, trims and drops empty elements', () => {
    assert.deepEqual(listHeader({ a: ' x , y,,z ' }, 'a'), ['x', 'y', 'z']);
    assert.deepEqual(listHeader({ a: ['x, y', 'z'] }, 'a'), ['x', 'y', 'z']);
    assert.deepEqual(listHeader({}, 'a'), []);
  });
});

describe('selectProtocol', () => {
  test('follows the server preference', () => {
    assert.equal(selectProtocol(['superchat', 'chat'], ['chat', 'superchat']), 'superchat');
    assert.equal(selectProtocol(['chat', 'superchat'], ['superchat', 'chat']), 'chat');
    assert.equal(selectProtocol(['v3', 'v2', 'v1'], ['v1', 'v2']), 'v2');
  });

  test('never picks a protocol the client did not offer', () => {
    assert.equal(selectProtocol(['chat'], []), undefined);
    assert.equal(selectProtocol([], ['chat']), undefined);
    assert.equal(selectProtocol(['chat'], ['Chat']), undefined);
    assert.equal(selectProtocol(['a', 'b'], ['c', 'd']), undefined);
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    let seed = 5;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 500; i++) {
      const server = names.filter(() => next() < 0.5).sort(() => next() - 0.5);
      const offered = names.filter(() => next() < 0.5);
      const chosen = selectProtocol(server, offered);
      const expected = server.find((p) => offered.includes(p));
      assert.equal(chosen, expected);
      if (chosen !== undefined) assert.ok(offered.includes(chosen) && server.includes(chosen));
    }
  });
});

describe('acceptResponse', () => {
  test('a complete 101 response with the sample accept value', () => {
    const res = acceptResponse(SAMPLE_KEY);
    assert.equal(
      res,
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
        '\r\n',
    );
  });

  test('the selected protocol and extra headers', () => {
    const res = acceptResponse(SAMPLE_KEY, 'chat', { 'X-Server': 'wsmod', 'Set-Cookie': 'a=b; Path=/' });
    const lines = res.split('\r\n');
    assert.equal(lines[0], 'HTTP/1.1 101 Switching Protocols');
    assert.ok(lines.includes('Sec-WebSocket-Protocol: chat'));
    assert.ok(lines.includes('X-Server: wsmod'));
    assert.ok(lines.includes('Set-Cookie: a=b; Path=/'));
    assert.ok(res.endsWith('\r\n\r\n'));
    assert.equal(res.indexOf('\r\n\r\n'), res.length - 4);
  });

  test('header injection (CR, LF, NUL in values, invalid names) is WSMOD_ERR_INVALID_HEADER', () => {
    for (const value of ['a\r\nX-Injected: 1', 'a\nX-Injected: 1', 'a\rb', 'a\0b', '\r\n\r\nbody']) {
      assert.throws(() => acceptResponse(SAMPLE_KEY, undefined, { 'X-Test': value }), isCode('WSMOD_ERR_INVALID_HEADER'), JSON.stringify(value));
    }
    for (const name of ['X Test', 'X-Test:', 'X\r\nTest', '', 'Ä']) {
      assert.throws(() => acceptResponse(SAMPLE_KEY, undefined, { [name]: 'v' }), isCode('WSMOD_ERR_INVALID_HEADER'), JSON.stringify(name));
    }
    try {
      acceptResponse(SAMPLE_KEY, undefined, { 'X-Test': 'a\r\nb' });
      assert.fail('no throw');
    } catch (err) {
      assert.ok(err instanceof WsmodError);
      assert.equal(err.code, 'WSMOD_ERR_INVALID_HEADER');
      assert.equal(err.status, 500);
    }
  });

  test('a subprotocol carrying CR/LF or a non-token is WSMOD_ERR_INVALID_HEADER', () => {
    for (const protocol of ['chat\r\nX-Injected: 1', 'chat\nX: 1', 'chat\r', 'a\0', '', 'two words']) {
      assert.throws(() => acceptResponse(SAMPLE_KEY, protocol), isCode('WSMOD_ERR_INVALID_HEADER'), JSON.stringify(protocol));
    }
  });

  test('isValidHeader', () => {
    assert.equal(isValidHeader('X-Ok', 'any value; with=stuff, "quotes"'), true);
    assert.equal(isValidHeader('X-Ok', ''), true);
    assert.equal(isValidHeader('X-Ok', 'a\nb'), false);
    assert.equal(isValidHeader('X Ok', 'v'), false);
  });
});

describe('refusalResponse', () => {
  function parts(res: string): { statusLine: string; headers: string[]; body: string } {
    const split = res.indexOf('\r\n\r\n');
    assert.ok(split > 0);
    const [statusLine, ...headers] = res.slice(0, split).split('\r\n');
    return { statusLine: statusLine!, headers, body: res.slice(split + 4) };
  }

  test('status line, headers and a one-line body whose length is Content-Length', () => {
    const r = validateHandshake(request({}, 'POST'));
    assert.equal(r.ok, false);
    if (r.ok) return;
    const res = refusalResponse(r.status, r.reason, r.headers);
    const { statusLine, headers, body } = parts(res);
    assert.equal(statusLine, 'HTTP/1.1 405 Method Not Allowed');
    assert.ok(headers.includes('Allow: GET'));
    assert.ok(headers.includes('Connection: close'));
    assert.ok(headers.includes(`Content-Length: ${Buffer.byteLength(body)}`));
    assert.equal(body, `${r.reason}\n`);
    assert.equal(body.split('\n').length, 2);
  });

  test('a reason with line breaks is folded into one line', () => {
    const { body, headers } = parts(refusalResponse(400, 'first\r\nsecond\nthird\r€'));
    assert.equal(body.split('\n').length, 2);
    assert.ok(body.endsWith('\n'));
    assert.ok(!body.slice(0, -1).includes('\r') && !body.slice(0, -1).includes('\n'));
    assert.ok(headers.includes(`Content-Length: ${Buffer.byteLength(body)}`));
  });

  test('426 carries Sec-WebSocket-Version: 13', () => {
    const r = validateHandshake(request({ 'sec-websocket-version': '8' }));
    assert.equal(r.ok, false);
    if (r.ok) return;
    const { statusLine, headers } = parts(refusalResponse(r.status, r.reason, r.headers));
    assert.equal(statusLine, 'HTTP/1.1 426 Upgrade Required');
    assert.ok(headers.includes('Sec-WebSocket-Version: 13'));
  });

  test('rejects header injection with WSMOD_ERR_INVALID_HEADER', () => {
    assert.throws(() => refusalResponse(400, 'bad', { 'X-A': 'v\r\nX-B: w' }), isCode('WSMOD_ERR_INVALID_HEADER'));
  });
});
