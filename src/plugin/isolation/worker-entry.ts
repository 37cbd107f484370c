/**
 * The inside of a plugin worker (isolation mode `worker`, see worker.ts). Loads the plugin with
 * {@link loadPlugin} and runs it with the same {@link PluginRuntime} as an inline plugin: the host's
 * messages become runtime calls, and each session's {@link SessionLink} posts the plugin's actions
 * (send, close, ...) back to the host, which performs them on the real connection. Frames never reach
 * this thread. Faults are handled by the runtime here (1011 for the session, logged through the host).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WsmodError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { MAX_CONTROL_PAYLOAD } from '../../protocol/constants.ts';
import { encodeClosePayload } from '../../protocol/frame-serializer.ts';
import type { Plugin, PluginContext, PublishResult, SendResult } from '../api.ts';
import { loadPlugin } from '../loader.ts';
import {
  HOOK_NAMES,
  PluginRuntime,
  type ReadyStateName,
  type RuntimeSession,
  type SessionLink,
  type Verdict,
  isThenable,
} from '../runtime.ts';
import {
  type HostToWorker,
  type LogLevelName,
  type PlainDecision,
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

const log: Logger = { debug: forwardLog('debug'), info: forwardLog('info'), warn: forwardLog('warn'), error: forwardLog('error') };
const context: PluginContext = { path: boot.path, log };

/** Upper bound on onShutdown here; the host's own deadline applies too. */
const SHUTDOWN_CAP = 10_000;

/**
 * A session's link to the host's real connection. Actions are posted; what must be answered at once
 * (send's result, bufferedAmount, readyState) is the host's last report, see {@link WorkerLink.send}.
 */
class WorkerLink implements SessionLink {
  readonly #sid: string;
  #bufferedAmount = 0;
  #readyState: ReadyStateName = 'open';
  #lastResult: SendResult = 'sent';
  readonly maxTopics: number;

  constructor(sid: string, maxTopics: number) {
    this.#sid = sid;
    this.maxTopics = maxTopics;
  }

  get bufferedAmount(): number {
    return this.#bufferedAmount;
  }

  get readyState(): ReadyStateName {
    return this.#readyState;
  }

  /**
   * Posts the message to the host, which sends it on the real connection. It must return at once, so
   * the result is an approximation: `'dropped'` when the session is known to be closing or closed,
   * otherwise the result of the last send the host performed for this session as the host last
   * reported it (`'sent'`, or `'queued'`/`'dropped'` while the host's outbound queue is backed up;
   * a drain resets it to `'sent'`). Bytes are copied.
   */
  send(data: string | Uint8Array, binary: boolean): SendResult {
    if (this.#readyState !== 'open') return 'dropped';
    if (typeof data === 'string') {
      post({ t: 'send', sid: this.#sid, data, binary });
    } else {
      const copy = copyToArrayBuffer(data);
      post({ t: 'send', sid: this.#sid, data: copy, binary }, [copy]);
    }
    return this.#lastResult;
  }

  /** Validated here (throws WSMOD_ERR_INVALID_CLOSE like an inline session), performed by the host. */
  close(code?: number, reason?: string): void {
    encodeClosePayload(code, reason);
    if (this.#readyState !== 'open') return;
    this.#readyState = 'closing';
    post({ t: 'close', sid: this.#sid, ...(code !== undefined && { code }), ...(reason !== undefined && { reason }) });
  }

  terminate(): void {
    if (this.#readyState === 'closed') return;
    this.#readyState = 'closed';
    post({ t: 'terminate', sid: this.#sid });
  }

  ping(data: string | Uint8Array): boolean {
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (size > MAX_CONTROL_PAYLOAD) throw new WsmodError('WSMOD_ERR_CONTROL_PAYLOAD', `${size} bytes`);
    if (this.#readyState !== 'open') return false;
    if (typeof data === 'string') {
      post({ t: 'ping', sid: this.#sid, data });
    } else {
      const copy = copyToArrayBuffer(data);
      post({ t: 'ping', sid: this.#sid, data: copy }, [copy]);
    }
    return true;
  }

  /** The runtime logged the failure here; the host closes the connection with its code. */
  fail(err: WsmodError): void {
    if (this.#readyState !== 'open') return;
    this.#readyState = 'closing';
    post({ t: 'fail', sid: this.#sid, code: err.closeCode ?? 1011 });
  }

  subscribe(topic: string): void {
    post({ t: 'sub', sid: this.#sid, topic });
  }

  unsubscribe(topic: string): void {
    post({ t: 'unsub', sid: this.#sid, topic });
  }

  /** Posted on the port of the session's sends (order kept); the host thread publishes: no count here. */
  publish(topic: string, data: string | Uint8Array, binary: boolean, exceptSelf: boolean): PublishResult {
    postPublish(this.#sid, topic, data, binary, exceptSelf);
    return undefined;
  }

  /** The host's report of the real session's backpressure and state. */
  report(result: SendResult, bufferedAmount: number, readyState: ReadyStateName): void {
    this.#lastResult = result;
    this.#bufferedAmount = bufferedAmount;
    // This side may know better (it asked for a close the host has not reported yet).
    if (readyState !== 'open' || this.#readyState === 'open') this.#readyState = readyState;
  }

  /** The host's session is gone. */
  ended(): void {
    this.#readyState = 'closed';
  }
}

/** A publish toward the host; bytes are copied (the plugin may reuse its buffer). */
function postPublish(sid: string | undefined, topic: string, data: string | Uint8Array, binary: boolean, exceptSelf: boolean): void {
  const at = sid === undefined ? {} : { sid };
  if (typeof data === 'string') {
    post({ t: 'pub', ...at, topic, data, binary, exceptSelf });
  } else {
    const copy = copyToArrayBuffer(data);
    post({ t: 'pub', ...at, topic, data: copy, binary, exceptSelf }, [copy]);
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

if (plugin !== undefined) serve(new PluginRuntime(plugin, log));

function serve(runtime: PluginRuntime): void {
  const sessions = new Map<string, { readonly session: RuntimeSession; readonly link: WorkerLink }>();
  /** Data of accepted upgrades, until their session opens (or the host discards them). */
  const tickets = new Map<number, unknown>();

  const reply = (rid: number, decision?: PlainDecision): void => {
    post(decision === undefined ? { t: 'reply', rid } : { t: 'reply', rid, decision });
  };

  /** The verdict, minus `data`: that stays here under a ticket until the session opens. */
  const decided = (rid: number, verdict: Verdict): void => {
    if (!verdict.accept) {
      reply(rid, verdict);
      return;
    }
    const { data, ...plain } = verdict;
    if (data === undefined) {
      reply(rid, plain);
      return;
    }
    tickets.set(rid, data);
    reply(rid, { ...plain, ticket: rid });
  };

  const handle = (m: HostToWorker): void => {
    switch (m.t) {
      case 'msg': {
        const entry = sessions.get(m.sid);
        if (entry !== undefined) runtime.message(entry.session, Buffer.from(m.data), m.binary);
        return;
      }
      case 'state':
        sessions.get(m.sid)?.link.report(m.result, m.bufferedAmount, m.readyState);
        return;
      case 'upgrade': {
        const verdict = runtime.upgrade(m.req);
        if (isThenable(verdict)) void verdict.then((v) => decided(m.rid, v));
        else decided(m.rid, verdict);
        return;
      }
      case 'discard':
        tickets.delete(m.ticket);
        return;
      case 'open': {
        let data: unknown;
        if (m.ticket !== undefined) {
          data = tickets.get(m.ticket);
          tickets.delete(m.ticket);
        }
        const link = new WorkerLink(m.sid, m.maxTopics);
        const { session, ready } = runtime.open(m.init, link, data);
        sessions.set(m.sid, { session, link });
        const rid = m.rid;
        if (rid === undefined) return;
        if (ready === undefined) reply(rid);
        else void ready.then(() => reply(rid));
        return;
      }
      case 'settle':
        // Everything posted before this message has been handled, and its sends posted: say so.
        reply(m.rid);
        return;
      case 'drain': {
        const entry = sessions.get(m.sid);
        if (entry === undefined) return;
        entry.link.report('sent', m.bufferedAmount, m.readyState);
        runtime.drain(entry.session);
        return;
      }
      case 'close': {
        const entry = sessions.get(m.sid);
        if (entry === undefined) return;
        sessions.delete(m.sid);
        entry.link.ended();
        runtime.closed(entry.session, m.code, m.reason);
        return;
      }
      case 'shutdown':
        void runtime.shutdown(SHUTDOWN_CAP).then(() => reply(m.rid));
        return;
      case 'start':
        runtime.start({
          publish(topic, data, binary) {
            postPublish(undefined, topic, data, binary, false);
            return undefined;
          },
        });
        return;
      case 'gap':
        runtime.gap(m.topic);
        return;
    }
  };

  port.on('message', handle);
  const plugin = runtime.plugin;
  const hooks = HOOK_NAMES.filter((h) => typeof plugin[h] === 'function');
  post({
    t: 'ready',
    name: plugin.name,
    protocols: plugin.protocols === undefined ? undefined : [...plugin.protocols],
    backpressurePolicy: plugin.backpressurePolicy,
    hooks,
  });
}
