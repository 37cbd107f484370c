import { type Session, definePlugin, definePluginFactory } from 'wsmod';

/** Options of the chat plugin (a route's `options`). */
export interface ChatOptions {
  /** How many of the last messages a newly opened session receives first. Default 0 (none). */
  history?: number;
}

/** Upper bound of `history`: the replay buffer lives in memory. */
export const MAX_HISTORY = 10_000;

/**
 * A chat room per route: every message is broadcast to all sessions of the route, the sender
 * included; text stays text and binary stays binary. With `history: N`, a session that opens first
 * receives the last N messages. A factory, so that two routes using this module have two rooms.
 */
export default definePluginFactory<ChatOptions>((options) => {
  const history = historyOption(options);
  const sessions = new Set<Session>();
  const recent: Array<{ readonly data: Buffer; readonly isBinary: boolean }> = [];
  return definePlugin({
    name: 'chat',
    apiVersion: 1,
    onOpen(session) {
      for (const m of recent) session.send(m.data, { binary: m.isBinary });
      sessions.add(session);
    },
    onMessage(_session, data, isBinary) {
      // One copy: the host's buffer is not ours to keep, and slow peers may queue the bytes.
      const copy = Buffer.from(data);
      if (history > 0) {
        recent.push({ data: copy, isBinary });
        if (recent.length > history) recent.shift();
      }
      for (const s of sessions) s.send(copy, { binary: isBinary });
    },
    onClose(session) {
      sessions.delete(session);
    },
    onShutdown() {
      sessions.clear();
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
