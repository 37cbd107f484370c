import { definePlugin } from 'wsmod';

/** The subprotocol this plugin speaks; a client that does not offer it is refused (403). */
export const PROTOCOL = 'dumb-increment-protocol';

/** Time between two counter messages, in ms. */
const INTERVAL = 50;

/** Per-session state: the next value to send and the timer sending it. */
interface Data {
  n: number;
  timer?: NodeJS.Timeout;
}

/** Every running timer of this module, so onShutdown can stop them all. */
const timers = new Set<NodeJS.Timeout>();

/**
 * The libwebsockets "dumb-increment-protocol": once open, the session receives a counter as a text
 * message ("0", "1", "2", ...) every 50 ms; the message `reset\n` sets the counter back to 0. Each
 * session's timer stops when the session closes; onShutdown stops any that remain.
 */
export default definePlugin<Data>({
  name: 'dumb-increment',
  apiVersion: 1,
  protocols: [PROTOCOL],
  onUpgrade(req) {
    if (!req.protocols.includes(PROTOCOL)) return req.reject(403, `subprotocol ${PROTOCOL} required`);
    return req.accept({ protocol: PROTOCOL, data: { n: 0 } });
  },
  onOpen(session) {
    const timer = setInterval(() => session.send(String(session.data.n++)), INTERVAL);
    session.data.timer = timer;
    timers.add(timer);
  },
  onMessage(session, data, isBinary) {
    if (!isBinary && data.toString() === 'reset\n') session.data.n = 0;
  },
  onClose(session) {
    stop(session.data);
  },
  onShutdown() {
    for (const timer of timers) clearInterval(timer);
    timers.clear();
  },
});

function stop(data: Data | undefined): void {
  if (data?.timer === undefined) return;
  clearInterval(data.timer);
  timers.delete(data.timer);
  delete data.timer;
}
