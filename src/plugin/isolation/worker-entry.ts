/**
 * The inside of a plugin worker (isolation mode `worker`, see worker.ts). Loads the plugin with
 * {@link loadPlugin} and drives its hooks from the host's messages. Each session is a
 * {@link WorkerSession}: plain data plus methods that post the plugin's actions to the host, which
 * performs them on the real session. Frames never reach this thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WsmodError } from '../../errors.ts';
import { MAX_CONTROL_PAYLOAD } from '../../protocol/constants.ts';
import { encodeClosePayload } from '../../protocol/frame-serializer.ts';
import type { AcceptInit, Headers, Plugin, PluginContext, SendOptions, SendResult, Session, UpgradeDecision, UpgradeRequest } from '../api.ts';
import { loadPlugin } from '../loader.ts';
import {
  type HookName,
  type HostToWorker,
  type LogLevelName,
  type PlainDecision,
  type PlainSession,
  type PlainUpgradeRequest,
  type ReadyStateName,
  type WorkerBoot,
  type WorkerToHost,
  copyToArrayBuffer,
  serializeError,
} from './worker-protocol.ts';

if (parentPort === null) throw new Error('worker-entry must run in a worker thread');
const port = parentPort;
const boot = workerData as WorkerBoot;

function post(message: WorkerToHost, transfer?: ArrayBuffer[]): void {
  port.postMessage(message, transfer);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** The plugin's log lines go to the host's logger. Objects that cannot be cloned are flattened first. */
function forwardLog(level: LogLevelName): (obj: object, msg?: string) => void {
  return (obj, msg) => {
    const message: WorkerToHost = msg === undefined ? { t: 'log', level, obj } : { t: 'log', level, obj, msg };
    try {
      post(message);
    } catch {
      post({ ...message, obj: flatten(obj) });
    }
  };
}

function flatten(obj: object): object {
  try {
    return JSON.parse(JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? serializeError(v) : typeof v === 'bigint' ? String(v) : v))) as object;
  } catch {
    return { unserializable: String(obj) };
  }
}

const context: PluginContext = {
  path: boot.path,
  log: { debug: forwardLog('debug'), info: forwardLog('info'), warn: forwardLog('warn'), error: forwardLog('error') },
};

/** How a hook the host waits for settled. */
type Outcome = { readonly decision?: PlainDecision } | { readonly failure: unknown };

/** The decision object behind UpgradeDecision, on this side of the thread boundary. */
class Decision {
  constructor(readonly plain: PlainDecision, readonly data: unknown) {}
}

/**
 * A session as a worker plugin sees it. Identity and request data are copies; `data` lives here.
 * `send`, `close`, `terminate` and `ping` post to the host, which performs them on the real session.
 */
class WorkerSession implements Session<unknown> {
  readonly id: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Headers;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly protocol: string | undefined;
  readonly extensions: string;
  data: unknown;
  #bufferedAmount = 0;
  #readyState: ReadyStateName = 'open';
  #lastResult: SendResult = 'sent';

  constructor(init: PlainSession, data: unknown) {
    this.id = init.id;
    this.path = init.path;
    this.query = new URLSearchParams(init.query);
    this.headers = init.headers;
    this.remoteAddress = init.remoteAddress;
    this.remotePort = init.remotePort;
    this.protocol = init.protocol;
    this.extensions = init.extensions;
    this.data = data;
  }

  /** The last value the host reported (after a send whose outcome changed, or on drain). */
  get bufferedAmount(): number {
    return this.#bufferedAmount;
  }

  /** The last state the host reported, or what this side's own close/terminate implies. */
  get readyState(): ReadyStateName {
    return this.#readyState;
  }

  /**
   * Posts the message to the host, which sends it on the real connection. It must return at once, so
   * the result is an approximation: `'dropped'` when the session is known to be closing or closed,
   * otherwise the result of the last send the host performed for this session as the host last
   * reported it (`'sent'`, or `'queued'`/`'dropped'` while the host's outbound queue is backed up;
   * a drain resets it to `'sent'`). The host reports only when that result or the ready state
   * changes, so the real outcome of this very send may differ: a message answered `'queued'` can
   * still be dropped by the host's maxBackpressure, and one answered `'dropped'` because of backpressure
   * is still handed to the host, which sends it if its queue has drained meanwhile. Bytes are copied.
   */
  send(data: string | Uint8Array, options?: SendOptions): SendResult {
    if (this.#readyState !== 'open') return 'dropped';
    const binary = options?.binary ?? typeof data !== 'string';
    if (typeof data === 'string') {
      post({ t: 'send', sid: this.id, data, binary });
    } else {
      const copy = copyToArrayBuffer(data);
      post({ t: 'send', sid: this.id, data: copy, binary }, [copy]);
    }
    return this.#lastResult;
  }

  /** Validated here (throws WSMOD_ERR_INVALID_CLOSE like an inline session), performed by the host. */
  close(code?: number, reason?: string): void {
    encodeClosePayload(code, reason);
    if (this.#readyState !== 'open') return;
    this.#readyState = 'closing';
    post({ t: 'close', sid: this.id, ...(code !== undefined && { code }), ...(reason !== undefined && { reason }) });
  }

  terminate(): void {
    if (this.#readyState === 'closed') return;
    this.#readyState = 'closed';
    post({ t: 'terminate', sid: this.id });
  }

  /** Returns false when the session is known not to be open; the host sends the ping. */
  ping(data?: string | Uint8Array): boolean {
    const size = data === undefined ? 0 : typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (size > MAX_CONTROL_PAYLOAD) throw new WsmodError('WSMOD_ERR_CONTROL_PAYLOAD', `${size} bytes`);
    if (this.#readyState !== 'open') return false;
    if (data === undefined || typeof data === 'string') {
      post({ t: 'ping', sid: this.id, data: data ?? '' });
    } else {
      const copy = copyToArrayBuffer(data);
      post({ t: 'ping', sid: this.id, data: copy }, [copy]);
    }
    return true;
  }

  /** @internal The host's report of the real session's backpressure and state. */
  report(result: SendResult, bufferedAmount: number, readyState: ReadyStateName): void {
    this.#lastResult = result;
    this.#bufferedAmount = bufferedAmount;
    // This side may know better (it asked for a close the host has not reported yet).
    if (readyState !== 'open' || this.#readyState === 'open') this.#readyState = readyState;
  }

  /** @internal The plugin failed on this session: the host closes it with 1011. */
  failed(): void {
    if (this.#readyState === 'open') this.#readyState = 'closing';
  }

  /** @internal The host's session is gone. */
  ended(): void {
    this.#readyState = 'closed';
  }
}

const plugin = await (async (): Promise<Plugin<unknown> | undefined> => {
  try {
    return await loadPlugin(boot.specifier, { baseDir: boot.baseDir, options: boot.options, context });
  } catch (err) {
    post({ t: 'loadFailed', error: serializeError(err) });
    return undefined;
  }
})();

if (plugin !== undefined) serve(plugin);

function serve(plugin: Plugin<unknown>): void {
  const sessions = new Map<string, WorkerSession>();
  /** Data of accepted upgrades, until their session opens (or the host discards them). */
  const tickets = new Map<number, unknown>();

  const reply = (rid: number, outcome: Outcome): void => {
    const message: WorkerToHost =
      'failure' in outcome
        ? { t: 'reply', rid, error: serializeError(outcome.failure) }
        : { t: 'reply', rid, ...(outcome.decision !== undefined && { decision: outcome.decision }) };
    try {
      post(message);
    } catch (err) {
      post({ t: 'reply', rid, error: serializeError(err) });
    }
  };

  /** Runs a hook whose outcome the host is waiting for; answers once it settles. */
  const answer = (rid: number, run: () => unknown, onValue: (value: unknown) => Outcome): void => {
    let result: unknown;
    try {
      result = run();
    } catch (err) {
      reply(rid, { failure: err });
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => reply(rid, onValue(value)),
        (err: unknown) => reply(rid, { failure: err }),
      );
    } else {
      reply(rid, onValue(result));
    }
  };

  /** Runs a hook nobody waits for; a throw or rejection is reported (the host closes the session with 1011). */
  const guard = (hook: HookName, session: WorkerSession, run: () => unknown): void => {
    const failed = (err: unknown): void => {
      if (hook !== 'onClose') session.failed();
      post({ t: 'threw', sid: session.id, hook, error: serializeError(err) });
    };
    try {
      const result = run();
      if (isThenable(result)) result.then(undefined, failed);
    } catch (err) {
      failed(err);
    }
  };

  const upgrade = (rid: number, plain: PlainUpgradeRequest): void => {
    const hook = plugin.onUpgrade;
    if (hook === undefined) {
      reply(rid, { decision: { accept: true } });
      return;
    }
    const request: UpgradeRequest<unknown> = {
      path: plain.path,
      query: new URLSearchParams(plain.query),
      headers: plain.headers,
      origin: plain.origin,
      remoteAddress: plain.remoteAddress,
      remotePort: plain.remotePort,
      protocols: plain.protocols,
      selectedProtocol: plain.selectedProtocol,
      accept: (init: AcceptInit<unknown> = {}) =>
        new Decision(
          {
            accept: true,
            ...(init.protocol !== undefined && { protocol: init.protocol }),
            ...(init.headers !== undefined && { headers: { ...init.headers } }),
          },
          init.data,
        ) as unknown as UpgradeDecision,
      reject: (status?: number, reason?: string) =>
        new Decision(
          { accept: false, ...(status !== undefined && { status }), ...(reason !== undefined && { reason }) },
          undefined,
        ) as unknown as UpgradeDecision,
    };
    answer(
      rid,
      () => hook.call(plugin, request),
      (value) => {
        if (!(value instanceof Decision)) return { failure: new Error('onUpgrade must return req.accept(...) or req.reject(...)') };
        if (value.plain.accept && value.data !== undefined) {
          tickets.set(rid, value.data);
          return { decision: { ...value.plain, ticket: rid } };
        }
        return { decision: value.plain };
      },
    );
  };

  const open = (sid: string, init: PlainSession, ticket: number | undefined, rid: number | undefined): void => {
    let data: unknown;
    if (ticket !== undefined) {
      data = tickets.get(ticket);
      tickets.delete(ticket);
    }
    const session = new WorkerSession(init, data);
    sessions.set(sid, session);
    if (rid === undefined) return;
    const hook = plugin.onOpen;
    if (hook === undefined) {
      reply(rid, {});
      return;
    }
    answer(
      rid,
      () => hook.call(plugin, session),
      () => ({}),
    );
  };

  const handle = (m: HostToWorker): void => {
    switch (m.t) {
      case 'msg': {
        const session = sessions.get(m.sid);
        if (session === undefined) return;
        const data = Buffer.from(m.data);
        guard('onMessage', session, () => plugin.onMessage(session, data, m.binary));
        return;
      }
      case 'state':
        sessions.get(m.sid)?.report(m.result, m.bufferedAmount, m.readyState);
        return;
      case 'upgrade':
        upgrade(m.rid, m.req);
        return;
      case 'discard':
        tickets.delete(m.ticket);
        return;
      case 'open':
        open(m.sid, m.init, m.ticket, m.rid);
        return;
      case 'drain': {
        const session = sessions.get(m.sid);
        if (session === undefined) return;
        session.report('sent', m.bufferedAmount, m.readyState);
        const hook = plugin.onDrain;
        if (hook !== undefined) guard('onDrain', session, () => hook.call(plugin, session));
        return;
      }
      case 'close': {
        const session = sessions.get(m.sid);
        if (session === undefined) return;
        sessions.delete(m.sid);
        session.ended();
        const hook = plugin.onClose;
        if (hook !== undefined) guard('onClose', session, () => hook.call(plugin, session, m.code, m.reason));
        return;
      }
      case 'shutdown': {
        const hook = plugin.onShutdown;
        answer(
          m.rid,
          () => hook?.call(plugin),
          () => ({}),
        );
        return;
      }
    }
  };

  port.on('message', handle);
  const hooks = (['onUpgrade', 'onOpen', 'onMessage', 'onClose', 'onDrain', 'onShutdown'] as const).filter(
    (h) => typeof plugin[h] === 'function',
  );
  post({ t: 'ready', name: plugin.name, protocols: plugin.protocols === undefined ? undefined : [...plugin.protocols], hooks });
}
