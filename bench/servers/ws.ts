/**
 * An echo server on the `ws` package, with its defaults (no permessage-deflate, maxPayload 100 MiB)
 * except one limit a scenario needs: ws >= 8.18 refuses a message of more than 16,384 fragments (1009,
 * "Too many message fragments"), so scenario 6's 1,048,576 one-byte fragments need maxFragments raised.
 * With BENCH_DEFLATE=1 (scenario 8), `perMessageDeflate: true`: ws's defaults (context takeover kept).
 * Run with WS_NO_BUFFER_UTIL=1 WS_NO_UTF_8_VALIDATE=1 for the variant without the native addons.
 * Reports which native helpers ws actually uses: on Node 20, `bufferutil` for (un)masking; UTF-8
 * validation goes to Node's own buffer.isUtf8 whenever it exists, so `utf-8-validate` is not loaded.
 */
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { WebSocketServer } from 'ws';
import { serveControl } from './control.ts';

const require = createRequire(import.meta.url);
const wsDir = dirname(require.resolve('ws'));
const bufferUtil = require(join(wsDir, 'lib/buffer-util.js')) as { unmask: (b: Buffer, m: Buffer) => void };
const validation = require(join(wsDir, 'lib/validation.js')) as { isValidUTF8: (b: Buffer) => boolean };
const wsVersion = (require(join(wsDir, 'package.json')) as { version: string }).version;

// Scenario 8 only: permessage-deflate with ws's defaults (BENCH_DEFLATE=1).
const deflate = process.env['BENCH_DEFLATE'] === '1';
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxFragments: 2 ** 21, perMessageDeflate: deflate });
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', () => {});
});
await once(wss, 'listening');
const address = wss.address();
const port = typeof address === 'string' || address === null ? 0 : address.port;
const unmaskSource = bufferUtil.unmask.toString();
const utf8Source = validation.isValidUTF8.toString();
serveControl(
  {
    name: process.env['WS_NO_BUFFER_UTIL'] ? 'ws-noaddons' : 'ws',
    port,
    info: {
      wsVersion,
      ...(deflate ? { perMessageDeflate: 'ws defaults' } : {}),
      unmask: unmaskSource.includes('bufferUtil') ? 'bufferutil (native)' : unmaskSource.includes('websocketUnmask') ? 'node:http (native)' : 'JavaScript',
      utf8: utf8Source.includes('isUtf8') ? 'buffer.isUtf8 (native, Node)' : utf8Source.includes('isValidUTF8(buf)') ? 'utf-8-validate (native)' : 'JavaScript',
    },
  },
  () => wss.clients.size,
);
