/**
 * wsmod's echo route, run from the compiled package (dist/, built by `npm run bench`) so the code
 * under test is what users run. Defaults everywhere (keepalive, backpressure, origin policy, logger)
 * except the limits a scenario needs: maxMessageSize 2 MiB (the 1 MiB fragmented message) and
 * 20,000 connections host-wide and per address (10,000 idle connections from one address).
 * With BENCH_DEFLATE=1 (scenario 8) the route has `compression: true`, its defaults.
 */
import type * as Wsmod from 'wsmod';
import { serveControl } from './control.ts';

// Types come from src/ (tsconfig paths); the code comes from dist/. A computed specifier keeps tsx's
// tsconfig-paths mapping from swapping in the TypeScript sources.
const dist = new URL('../../dist/index.js', import.meta.url).href;
const lib = (await import(dist)) as typeof Wsmod;

const echo = lib.definePlugin({
  name: 'echo',
  apiVersion: 1,
  onMessage(session, data, isBinary) {
    session.send(data, { binary: isBinary });
  },
});

// Scenario 8 only: permessage-deflate with the route's defaults (BENCH_DEFLATE=1).
const deflate = process.env['BENCH_DEFLATE'] === '1';
const host = lib.createHost({
  routes: [{ path: '/echo', plugin: echo, maxMessageSize: 2 * 1024 * 1024, ...(deflate ? { compression: true } : {}) }],
  maxConnections: 20_000,
  maxConnectionsPerIp: 20_000,
});
const { port } = await host.listen(0, '127.0.0.1');
serveControl({ name: 'wsmod', port, info: { code: dist, ...(deflate ? { compression: 'route default' } : {}) } }, () => host.connections);
