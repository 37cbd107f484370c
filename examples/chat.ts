import { definePlugin, definePluginFactory } from 'wsmod';

/** Options of the chat plugin (a route's `options`). */
export interface ChatOptions {
  /** How many of the last messages a newly opened session receives first. Default 0 (none). */
  history?: number;
}

/** Upper bound of `history`: the replay buffer lives in memory. */
export const MAX_HISTORY = 10_000;

/** Factory calls per route path in this process: a second call for one path makes a second room. */
const calls = new Map<string, number>();

/**
 * A chat room per route, built on topics: every session subscribes to the room's topic and every
 * message is published on it, the sender included; text stays text and binary stays binary. The
 * topic is the route path, so the room spans every host process serving that route (`--workers N`,
 * hosts sharing a backplane). With `history: N`, a session that opens first receives the last N
 * messages this process saw. A factory, so that two routes using this module have two rooms.
 */
export default definePluginFactory<ChatOptions>((options, context) => {
  const history = historyOption(options);
  const n = (calls.get(context.path) ?? 0) + 1;
  calls.set(context.path, n);
  const room = n === 1 ? `chat:${context.path}` : `chat:${context.path}#${n}`;
  const recent: Array<{ readonly data: Buffer; readonly isBinary: boolean }> = [];
  return definePlugin({
    name: 'chat',
    apiVersion: 1,
    onOpen(session) {
      for (const m of recent) session.send(m.data, { binary: m.isBinary });
      session.subscribe(room);
    },
    onMessage(session, data, isBinary) {
      if (history > 0) {
        // A copy: the host's buffer is not ours to keep.
        recent.push({ data: Buffer.from(data), isBinary });
        if (recent.length > history) recent.shift();
      }
      // Framed once for the whole room; the host releases a closed session's subscription itself.
      session.publish(room, data, { binary: isBinary, exceptSelf: false });
    },
    onShutdown() {
      recent.length = 0;
    },
  });
});

/** Validates the route's options: `{ history?: integer 0..MAX_HISTORY }` or nothing at all. */
function historyOption(options: unknown): number {
  if (options === undefined || options === null) return 0;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new Error(`chat: options must be an object like { history: 20 }, got ${show(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'history') throw new Error(`chat: unknown option "${key}" (the only option is "history")`);
  }
  const history: unknown = (options as { history?: unknown }).history;
  if (history === undefined) return 0;
  if (typeof history !== 'number' || !Number.isInteger(history) || history < 0 || history > MAX_HISTORY) {
    throw new Error(`chat: "history" must be an integer from 0 to ${MAX_HISTORY}, got ${show(history)}`);
  }
  return history;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'an array' : String(v);
}
