import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, mock, test } from 'node:test';
import WebSocket from 'ws';
import { ERRORS, isWsmodError } from '../src/errors.ts';
import { createHost } from '../src/host/host.ts';
import type { RouteOptions } from '../src/host/options.ts';
import { definePlugin } from '../src/plugin/api.ts';
import { echoPlugin, handshakeLines, memoryLogger, rawClient, rawRequest, startHost, until } from './helpers.ts';

const reasonOf = (code: keyof typeof ERRORS) => ERRORS[code].message;

describe('handshake refusals over HTTP (RFC 6455 §4.2.1)', () => {
  const cases: Array<{ name: string; lines: (port: number) => string[]; status: number; code: keyof typeof ERRORS; header?: [string, string] }> = [
    { name: 'unknown path', lines: (p) => handshakeLines(p, '/nope'), status: 404, code: 'WSMOD_ERR_NOT_FOUND' },
    { name: 'POST', lines: (p) => handshakeLines(p, '/echo', {}, 'POST /echo HTTP/1.1'), status: 405, code: 'WSMOD_ERR_METHOD', header: ['allow', 'GET'] },
    { name: 'HTTP/1.0', lines: (p) => handshakeLines(p, '/echo', {}, 'GET /echo HTTP/1.0'), status: 400, code: 'WSMOD_ERR_HTTP_VERSION' },
    { name: 'Upgrade without websocket', lines: (p) => handshakeLines(p, '/echo', { Upgrade: 'h2c' }), status: 400, code: 'WSMOD_ERR_UPGRADE_HEADER' },
    { name: 'Connection without upgrade', lines: (p) => handshakeLines(p, '/echo', { Connection: 'Upgrade-ish, keep-alive', Upgrade: 'websocket' }), status: 400, code: 'WSMOD_ERR_CONNECTION_HEADER' },
    { name: 'key of 15 bytes', lines: (p) => handshakeLines(p, '/echo', { 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAA' }), status: 400, code: 'WSMOD_ERR_KEY' },
    { name: 'missing key', lines: (p) => handshakeLines(p, '/echo', { 'Sec-WebSocket-Key': null }), status: 400, code: 'WSMOD_ERR_KEY' },
    { name: 'version 8', lines: (p) => handshakeLines(p, '/echo', { 'Sec-WebSocket-Version': '8' }), status: 426, code: 'WSMOD_ERR_VERSION', header: ['sec-websocket-version', '13'] },
    { name: 'missing version', lines: (p) => handshakeLines(p, '/echo', { 'Sec-WebSocket-Version': null }), status: 426, code: 'WSMOD_ERR_VERSION', header: ['sec-websocket-version', '13'] },
    { name: 'malformed protocol list', lines: (p) => handshakeLines(p, '/echo', { 'Sec-WebSocket-Protocol': 'a, , b' }), status: 400, code: 'WSMOD_ERR_PROTOCOL_HEADER' },
    { name: 'protocol with a space inside a token', lines: (p) => handshakeLines(p, '/echo', { 'Sec-WebSocket-Protocol': 'chat v1' }), status: 400, code: 'WSMOD_ERR_PROTOCOL_HEADER' },
    { name: 'cross origin', lines: (p) => handshakeLines(p, '/echo', { Origin: 'http://evil.example' }), status: 403, code: 'WSMOD_ERR_ORIGIN' },
    { name: 'same host, other port', lines: (p) => handshakeLines(p, '/echo', { Origin: `http://127.0.0.1:${p + 1}` }), status: 403, code: 'WSMOD_ERR_ORIGIN' },
    { name: 'same host, other scheme', lines: (p) => handshakeLines(p, '/echo', { Origin: `https://127.0.0.1:${p}` }), status: 403, code: 'WSMOD_ERR_ORIGIN' },
    { name: 'origin "null"', lines: (p) => handshakeLines(p, '/echo', { Origin: 'null' }), status: 403, code: 'WSMOD_ERR_ORIGIN' },
  ];
  for (const c of cases) {
    test(`${c.name} -> ${c.status}`, async () => {
      const t = await startHost();
      try {
        const r = await rawRequest(t.port, c.lines(t.port));
        assert.equal(r.status, c.status);
        assert.ok(r.body.startsWith(reasonOf(c.code)), `body names the reason: ${r.body}`);
        assert.equal(r.body.trimEnd().split('\n').length, 1, 'one-line reason');
        if (c.header !== undefined) assert.equal(r.headers[c.header[0]], c.header[1]);
      } finally {
        await t.close();
      }
    });
  }

  test('a plain HTTP request to a WebSocket route gets 426 with Upgrade: websocket', async () => {
    const t = await startHost();
    try {
      const r = await rawRequest(t.port, ['GET /echo HTTP/1.1', `Host: 127.0.0.1:${t.port}`, 'Connection: close']);
      assert.equal(r.status, 426);
      assert.equal(r.headers['upgrade'], 'websocket');
      assert.equal(r.headers['sec-websocket-version'], '13');
      const other = await rawRequest(t.port, ['GET /other HTTP/1.1', `Host: 127.0.0.1:${t.port}`, 'Connection: close']);
      assert.equal(other.status, 404);
    } finally {
      await t.close();
    }
  });

  test('oversized request headers get 431', async () => {
    const t = await startHost();
    try {
      const r = await rawRequest(t.port, handshakeLines(t.port, '/echo', { 'X-Big': 'x'.repeat(20000) }));
      assert.equal(r.status, 431);
      assert.ok(r.body.startsWith(reasonOf('WSMOD_ERR_HEADERS_TOO_LARGE')));
      const garbage = await rawRequest(t.port, ['GET /echo HTTP/1.1', 'Host: x', 'Bad Header Line']);
      assert.equal(garbage.status, 400);
      assert.ok(garbage.body.startsWith(reasonOf('WSMOD_ERR_BAD_REQUEST')));
    } finally {
      await t.close();
    }
  });
});

describe('origin policy', () => {
  test('same-origin and no-Origin upgrades succeed, "keep-alive, Upgrade" and mixed-case Upgrade are fine', async () => {
    const t = await startHost();
    try {
      const same = await rawRequest(t.port, handshakeLines(t.port, '/echo', { Origin: `http://127.0.0.1:${t.port}` }));
      assert.equal(same.status, 101);
      assert.equal(same.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      const none = await rawRequest(t.port, handshakeLines(t.port, '/echo', { Connection: 'keep-alive, Upgrade', Upgrade: 'WebSocket' }));
      assert.equal(none.status, 101);
      // And with an independent client: ws sends no Origin unless asked.
      const ws = new WebSocket(`${t.base}/echo`, { origin: `http://127.0.0.1:${t.port}` });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.close();
      const crossWs = new WebSocket(`${t.base}/echo`, { origin: 'http://evil.example' });
      const status = await new Promise<number>((resolve) => crossWs.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      assert.equal(status, 403);
    } finally {
      await t.close();
    }
  });

  test('requireOrigin refuses requests without Origin; trusted lists and "any"', async () => {
    const t = await startHost([
      { path: '/strict', plugin: echoPlugin, requireOrigin: true },
      { path: '/list', plugin: echoPlugin, origin: ['https://app.example', 'http://localhost:3000'] },
      { path: '/any', plugin: echoPlugin, origin: 'any' },
    ]);
    try {
      const status = async (path: string, origin: string | null) =>
        (await rawRequest(t.port, handshakeLines(t.port, path, { Origin: origin }))).status;
      assert.equal(await status('/strict', null), 403);
      assert.equal(await status('/strict', `http://127.0.0.1:${t.port}`), 101);
      assert.equal(await status('/list', 'https://app.example'), 101);
      assert.equal(await status('/list', 'https://APP.example:443'), 101);
      assert.equal(await status('/list', 'http://localhost:3000'), 101);
      assert.equal(await status('/list', 'http://localhost:3001'), 403);
      assert.equal(await status('/list', `http://127.0.0.1:${t.port}`), 403);
      assert.equal(await status('/any', 'http://evil.example'), 101);
    } finally {
      await t.close();
    }
  });
});

describe('subprotocols and onUpgrade', () => {
  const chat = definePlugin({
    name: 'chat',
    apiVersion: 1,
    protocols: ['chat.v2', 'chat.v1'],
    onMessage(session) {
      session.send(session.protocol ?? 'none');
    },
  });

  test('the plugin preference wins among offered protocols; unoffered are never echoed', async () => {
    const t = await startHost([{ path: '/chat', plugin: chat }]);
    try {
      const pick = async (offer: string | null) => {
        const r = await rawRequest(t.port, handshakeLines(t.port, '/chat', { 'Sec-WebSocket-Protocol': offer }));
        assert.equal(r.status, 101);
        return r.headers['sec-websocket-protocol'];
      };
      assert.equal(await pick('chat.v1, chat.v2'), 'chat.v2');
      assert.equal(await pick('chat.v1'), 'chat.v1');
      assert.equal(await pick('other'), undefined);
      assert.equal(await pick(null), undefined);
      const ws = new WebSocket(`${t.base}/chat`, ['x', 'chat.v1']);
      await new Promise((resolve) => ws.once('open', resolve));
      assert.equal(ws.protocol, 'chat.v1');
      ws.send('which');
      const [data] = await new Promise<[Buffer]>((resolve) => ws.once('message', (d: Buffer) => resolve([d])));
      assert.equal(data.toString(), 'chat.v1');
      ws.close();
    } finally {
      await t.close();
    }
  });

  test('onUpgrade can refuse, accept with data and headers, and may be async; a throw gives 500', async () => {
    const gated = definePlugin<{ user: string }>({
      name: 'gated',
      apiVersion: 1,
      async onUpgrade(req) {
        await new Promise((r) => setTimeout(r, 10));
        const user = req.query.get('user');
        if (user === 'boom') throw new Error('boom');
        if (user === 'bad-protocol') return req.accept({ protocol: 'never-offered' });
        if (user === null) return req.reject(401, 'who are you?');
        if (user === 'nobody') return req.reject();
        return req.accept({ data: { user }, headers: { 'X-Welcome': user } });
      },
      onMessage(session) {
        session.send(`hello ${session.data.user}`);
      },
    });
    const t = await startHost([{ path: '/gated', plugin: gated }]);
    try {
      const anon = await rawRequest(t.port, handshakeLines(t.port, '/gated'));
      assert.equal(anon.status, 401);
      assert.equal(anon.body, 'who are you?\n');
      const nobody = await rawRequest(t.port, handshakeLines(t.port, '/gated?user=nobody'));
      assert.equal(nobody.status, 403, 'reject() defaults to 403');
      const boom = await rawRequest(t.port, handshakeLines(t.port, '/gated?user=boom'));
      assert.equal(boom.status, 500);
      const badProto = await rawRequest(t.port, handshakeLines(t.port, '/gated?user=bad-protocol'));
      assert.equal(badProto.status, 500);
      assert.ok(t.log.entries.some((e) => e.level === 'error'), 'plugin failures are logged');
      const ws = new WebSocket(`${t.base}/gated?user=ada`);
      const upgraded = new Promise<Record<string, string | string[] | undefined>>((resolve) => ws.once('upgrade', (res) => resolve(res.headers)));
      const opened = new Promise((resolve) => ws.once('open', resolve));
      assert.equal((await upgraded)['x-welcome'], 'ada');
      await opened;
      ws.send('hi');
      const data = await new Promise<Buffer>((resolve) => ws.once('message', (d: Buffer) => resolve(d)));
      assert.equal(data.toString(), 'hello ada');
      ws.close();
    } finally {
      await t.close();
    }
  });
});

describe('route options', () => {
  test('bad directives are refused with WSMOD_ERR_INVALID_OPTION naming the route', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ path: 'echo' }, /routes\[0\]\.path: expected a path starting with "\/"/],
      [{ path: '/e', maxMessageSize: -1 }, /maxMessageSize/],
      [{ path: '/e', idleTimeout: 1000, pongTimeout: 0 }, /pongTimeout/],
      [{ path: '/e', backpressurePolicy: 'block' }, /backpressurePolicy/],
      [{ path: '/e', origin: ['not an origin'] }, /not an origin/],
    ];
    for (const [route, message] of bad) {
      assert.throws(
        () => createHost({ routes: [{ plugin: echoPlugin, ...route } as RouteOptions], logger: memoryLogger() }),
        (err: unknown) => isWsmodError(err, 'WSMOD_ERR_INVALID_OPTION') && message.test(err.message),
      );
    }
    assert.throws(
      () => createHost({ routes: [{ path: '/a', plugin: echoPlugin }, { path: '/a', plugin: echoPlugin }], logger: memoryLogger() }),
      (err: unknown) => isWsmodError(err, 'WSMOD_ERR_DUPLICATE_ROUTE'),
    );
    assert.throws(
      () => createHost({ routes: [{ path: '/a', plugin: { name: 'x', apiVersion: 2, onMessage() {} } as unknown as RouteOptions['plugin'] }], logger: memoryLogger() }),
      (err: unknown) => isWsmodError(err, 'WSMOD_ERR_PLUGIN_API_VERSION'),
    );
    assert.throws(
      () => createHost({ routes: [{ path: '/a', plugin: { name: 'x', apiVersion: 1 } as unknown as RouteOptions['plugin'] }], logger: memoryLogger() }),
      (err: unknown) => isWsmodError(err, 'WSMOD_ERR_PLUGIN_INVALID') && /onMessage/.test(err.message),
    );
  });
});

describe('limits', () => {
  test('maxConnections and maxConnectionsPerIp answer 503 before the upgrade', async () => {
    const t = await startHost(undefined, { maxConnections: 2 });
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const ws = new WebSocket(`${t.base}/echo`);
        await new Promise((resolve) => ws.once('open', resolve));
        open.push(ws);
      }
      const r = await rawRequest(t.port, handshakeLines(t.port));
      assert.equal(r.status, 503);
      assert.ok(r.body.startsWith(reasonOf('WSMOD_ERR_MAX_CONNECTIONS')));
      const closing = open.pop()!;
      closing.close();
      await new Promise((resolve) => closing.once('close', resolve));
      // The slot is free again once the session ended.
      await until(() => t.host.connections === 1, 5000, 'the closed session to end');
      assert.equal((await rawRequest(t.port, handshakeLines(t.port))).status, 101);
    } finally {
      for (const ws of open) ws.terminate();
      await t.close();
    }
    const u = await startHost(undefined, { maxConnectionsPerIp: 1 });
    try {
      const ws = new WebSocket(`${u.base}/echo`);
      await new Promise((resolve) => ws.once('open', resolve));
      const r = await rawRequest(u.port, handshakeLines(u.port));
      assert.equal(r.status, 503);
      assert.ok(r.body.startsWith(reasonOf('WSMOD_ERR_MAX_CONNECTIONS_PER_IP')));
      ws.terminate();
    } finally {
      await u.close();
    }
  });

  test('a handshake the plugin does not decide within handshakeTimeout holds its slot until then, is refused, and frees it', async () => {
    let upgradeAsked: () => void = () => {};
    const asked = new Promise<void>((resolve) => (upgradeAsked = resolve));
    let decideLate: (() => void) | undefined;
    const slow = definePlugin({
      name: 'slow',
      apiVersion: 1,
      onUpgrade: (req) =>
        new Promise((resolve) => {
          decideLate = () => resolve(req.accept());
          upgradeAsked();
        }),
      onMessage() {},
    });
    const HANDSHAKE_TIMEOUT = 10_000;
    const t = await startHost(
      [
        { path: '/slow', plugin: slow },
        { path: '/echo', plugin: echoPlugin },
      ],
      { handshakeTimeout: HANDSHAKE_TIMEOUT, maxConnections: 1 },
    );
    // The handshake deadline runs on fake time: the test decides when it passes.
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const timedOut = rawRequest(t.port, handshakeLines(t.port, '/slow'));
      await asked;
      // Both requests reach a real route, so only the limit can tell them apart.
      const meanwhile = await rawRequest(t.port, handshakeLines(t.port, '/echo'));
      assert.equal(meanwhile.status, 503, 'the undecided handshake holds the only slot');
      assert.ok(meanwhile.body.startsWith(reasonOf('WSMOD_ERR_MAX_CONNECTIONS')));
      mock.timers.tick(HANDSHAKE_TIMEOUT);
      assert.equal((await timedOut).status, 408);
      // A decision after the deadline changes nothing, and frees nothing a second time.
      decideLate!();
      const again = await rawClient(t.port, '/echo');
      assert.match(again.response, /^HTTP\/1\.1 101 /, 'the timed-out handshake no longer counts against maxConnections');
      // The session now holds the slot: had the late decision freed it a second time, this would pass.
      assert.equal((await rawRequest(t.port, handshakeLines(t.port, '/echo'))).status, 503);
      again.socket.destroy();
    } finally {
      // Should an assertion fail first, the handshake must not be left waiting on a fake deadline.
      decideLate?.();
      mock.timers.reset();
      await t.close();
    }
  });

});

describe('a request head that is too slow', () => {
  test('gets 408 with its reason once handshakeTimeout has passed (not 400)', async () => {
    const t = await startHost(undefined, { handshakeTimeout: 300 });
    try {
      const socket = connect(t.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(`GET /echo HTTP/1.1\r\nHost: 127.0.0.1:${t.port}\r\nUpgrade: websocket\r\n`); // never finished
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      await once(socket, 'close');
      const response = Buffer.concat(chunks).toString('latin1');
      assert.match(response, /^HTTP\/1\.1 408 /);
      assert.match(response, /handshake not completed within handshakeTimeout/);
    } finally {
      await t.close();
    }
  });
});

describe('headers that must be single', () => {
  test('a second Host, Sec-WebSocket-Key, Sec-WebSocket-Version or Origin line is refused with 400 naming it', async () => {
    const t = await startHost([{ path: '/echo', plugin: echoPlugin, origin: 'any' }]);
    try {
      for (const extra of [`Host: evil.example`, 'Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==', 'Sec-WebSocket-Version: 13', 'Origin: http://a.example']) {
        const lines = handshakeLines(t.port, '/echo', extra.startsWith('Origin') ? { Origin: 'http://b.example' } : {});
        const r = await rawRequest(t.port, [...lines, extra]);
        assert.equal(r.status, 400, extra);
        assert.match(r.body, new RegExp(`${extra.split(':')[0]}`, 'i'));
      }
      const ok = await rawRequest(t.port, handshakeLines(t.port, '/echo'));
      assert.equal(ok.status, 101);
    } finally {
      await t.close();
    }
  });
});
