/**
 * The ceiling: a minimal echo on raw `net` that any Node server is bound by. It parses the upgrade
 * head by hand, then frames (bench/frames.ts MinimalEcho: unmask, UTF-8 check of text with one native
 * call, fragment assembly, ping/close answered) and answers each read with one write. No limits, no
 * timers, no close codes: not a server to deploy, the cost floor of the same work in Node.
 */
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { MinimalEcho, acceptKey } from '../frames.ts';
import { serveControl } from './control.ts';

const KEY = /\r\nsec-websocket-key:[ \t]*([A-Za-z0-9+/=]+)/i;
let open = 0;

function upgrade(socket: Socket): void {
  let head = '';
  const onData = (chunk: Buffer): void => {
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) {
      if (head.length > 8192) socket.destroy();
      return;
    }
    const key = KEY.exec(head.slice(0, end + 2))?.[1];
    if (key === undefined || !head.startsWith('GET ')) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    socket.off('data', onData);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
    open++;
    socket.once('close', () => open--);
    const echo = new MinimalEcho();
    const onFrames = (data: Buffer): void => {
      const out = echo.push(data);
      if (out.length === 2) {
        socket.cork();
        socket.write(out[0]!);
        socket.write(out[1]!);
        socket.uncork();
      } else if (out.length > 0) {
        socket.write(Buffer.concat(out));
      }
      if (echo.fatal === 'close') socket.end();
      else if (echo.fatal === 'error') socket.destroy();
    };
    socket.on('data', onFrames);
    const rest = Buffer.from(head.slice(end + 4), 'latin1');
    if (rest.length > 0) onFrames(rest);
  };
  socket.setNoDelay(true);
  socket.on('data', onData);
  socket.on('error', () => {});
}

const server = createServer(upgrade);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const address = server.address();
serveControl({ name: 'minimal', port: typeof address === 'string' || address === null ? 0 : address.port, info: {} }, () => open);
