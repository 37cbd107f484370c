/**
 * Isolation mode `worker`: a plugin runs in a `worker_threads` Worker while frames stay in the host.
 *
 * {@link createWorkerPlugin} returns an ordinary {@link Plugin} whose hooks forward to the worker, so
 * the host needs no special case: the host parses frames and assembles messages, the wrapper copies
 * each message into a fresh ArrayBuffer and transfers it, and the plugin's `session.send` comes back
 * the same way. A plugin that blocks its thread (a busy loop) stalls only its own sessions; a worker
 * that crashes takes down only the sessions it served (closed with 1011) and is restarted.
 *
 * The worker runs worker-entry.ts (or the built worker-entry.js beside this module).
 */
import { isAbsolute, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ERRORS, type ErrorCode, WsmodError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import {
  type AcceptInit,
  PLUGIN_API_VERSION,
  type Plugin,
  type PluginHost,
  type SendResult,
  type Session,
  type UpgradeDecision,
  type UpgradeRequest,
} from '../api.ts';
import { checkOptions, once, plainUnits, problemText } from '../../option-schema.ts';
import { isFileSpecifier } from '../loader.ts';
import { type HookName, type ReadyStateName, SETTLE, infoOf, maxTopicsOf } from '../runtime.ts';
import {
  type HostToWorker,
  type PlainDecision,
  type SerializedError,
  type WorkerBoot,
  type WorkerToHost,
  copyToArrayBuffer,
  deserializeError,
} from './worker-protocol.ts';

/** Options of {@link createWorkerPlugin}. */
export interface WorkerPluginOptions {
  /** Plugin file or package, as for loadPlugin. */
  readonly specifier: string;
  /** Where relative specifiers resolve from. */
  readonly baseDir: string;
  /** The route's plugin options (structured-cloneable), passed to a plugin factory. */
  readonly options?: unknown;
  /** The route path (PluginContext.path). */
  readonly path: string;
  /** Where the worker's failures and the plugin's own log lines (context.log) go. */
  readonly log: Logger;
  /** ms before a crashed worker is restarted (default 100, doubling up to 5 s while it keeps crashing at start). */
  readonly restartDelay?: number;
}

const DEFAULT_RESTART_DELAY = 100;
/** `restartDelay`, checked with the one options vocabulary (src/option-schema.ts). */
const restartDelaySchema = once(() => plainUnits.duration(0).optional());
const MAX_RESTART_DELAY = 5_000;
/** A worker that crashes after running this long was not "crashing at start": the delay starts over. */
const STABLE_AFTER = 1_000;
/** Upper bound on the plugin's onShutdown in the worker before the worker is terminated regardless. */
const SHUTDOWN_CAP = 10_000;
const PLUGIN_THREW = ERRORS.WSMOD_ERR_PLUGIN_THREW.closeCode;

/** @internal A worker plugin's accessor of the Worker it started last (a terminated one has threadId -1). */
export const LATEST_WORKER = Symbol('wsmod.latestWorker');

/** The worker that was asked is gone (crashed, or stopped on shutdown). */
class WorkerGoneError extends Error {
  override readonly name = 'WorkerGoneError';
}

interface Call {
  resolve(decision: PlainDecision | undefined): void;
  reject(err: Error): void;
}


/** One host session served by a worker. */
interface SessionRecord {
  readonly session: Session<unknown>;
  readonly instance: WorkerInstance;
  /** Last send result and ready state reported to the worker (for its synchronous `send` result). */
  lastResult: SendResult;
  lastState: ReadyStateName;
  /** The worker's onOpen is running: a crash fails that call, which closes the session. */
  opening: boolean;
}

/** Carries an accepted upgrade's `data` (kept in the worker) from onUpgrade to onOpen, as `session.data`. */
class Ticket {
  claimed = false;
  constructor(
    readonly instance: WorkerInstance,
    readonly id: number,
  ) {}
}

/** One started worker. A restart makes a new instance; sessions stay with the instance that opened them. */
class WorkerInstance {
  readonly sessions = new Map<string, SessionRecord>();
  readonly calls = new Map<number, Call>();
  /** performance.now() when the plugin reported loaded; 0 before. */
  readyAt = 0;
  dead = false;
  /** Terminated on purpose (shutdown, failed load): its exit is no crash. */
  stopping = false;

  constructor(readonly worker: Worker) {}

  post(message: HostToWorker, transfer?: ArrayBuffer[]): void {
    if (!this.dead) this.worker.postMessage(message, transfer);
  }

  /** A request the worker answers with a `reply` of the same rid. */
  call(rid: number, message: HostToWorker): Promise<PlainDecision | undefined> {
    if (this.dead) return Promise.reject(new WorkerGoneError('the plugin worker is gone'));
    return new Promise((resolve, reject) => {
      this.calls.set(rid, { resolve, reject });
      this.updateRef();
      try {
        this.worker.postMessage(message);
      } catch (err) {
        this.calls.delete(rid);
        this.updateRef();
        reject(err as Error);
      }
    });
  }

  settle(rid: number, decision: PlainDecision | undefined): void {
    const call = this.calls.get(rid);
    if (call === undefined) return;
    this.calls.delete(rid);
    this.updateRef();
    call.resolve(decision);
  }

  /**
   * An idle worker does not keep the process alive (the host's server does); a worker that is
   * loading, answering a request or shutting down does.
   */
  updateRef(): void {
    if (this.dead) return;
    if (this.readyAt === 0 || this.calls.size > 0 || this.stopping) this.worker.ref();
    else this.worker.unref();
  }
}

/**
 * Starts the worker. From src/ (this module is TypeScript, run under tsx) the worker needs a
 * TypeScript loader of its own: Node 20 does not apply `--import tsx` from execArgv to a worker's
 * entry module, so a two-line bootstrap registers tsx's loader in the worker and imports the entry.
 * From dist/ the sibling worker-entry.js runs directly (plugins still load through tsx's API).
 */
function startWorker(boot: WorkerBoot): Worker {
  const here = import.meta.url;
  const options = { workerData: boot, name: `wsmod plugin ${boot.path}`, execArgv: workerExecArgv(process.execArgv) };
  if (extname(fileURLToPath(here)) === '.js') return new Worker(new URL('./worker-entry.js', here), options);
  const entry = new URL('./worker-entry.ts', here).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/**
 * Node options a plugin worker inherits: those that change how modules load and run (loaders,
 * conditions, source maps, experimental features, warnings). Everything else stays with the main
 * thread: options about its entry (`--input-type`, `--test`, `-e`...) break a worker's entry, and
 * Node 24 under `--test` lists every default in execArgv, some of which a Worker refuses.
 */
const INHERITED = /^(?:--import|--require|-r|--loader|--experimental-loader|--conditions|-C|--enable-source-maps|--no-warnings|--no-deprecation|--disable-warning|--(?:no-)?experimental-[a-z0-9-]+)$/;
/** The inherited options that take their value as the next argument when not written `--flag=value`. */
const INHERITED_WITH_VALUE = /^(?:--import|--require|-r|--loader|--experimental-loader|--conditions|-C|--disable-warning)$/;

/** @internal The host process's Node options a worker needs (see {@link INHERITED}). */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const flag = arg.split('=', 1)[0]!;
    const takesNext = !arg.includes('=') && INHERITED_WITH_VALUE.test(flag);
    if (INHERITED.test(flag)) {
      out.push(arg);
      if (takesNext && i + 1 < execArgv.length) out.push(execArgv[++i]!);
    } else if (!arg.includes('=') && /^(?:-e|--eval|-p|--print|--input-type|--test-[a-z-]+|--watch-path)$/.test(flag)) {
      i++; // an option of the main program with its value as the next argument
    }
  }
  return out;
}

/** Rebuilds a load failure as the WsmodError the worker raised: same code, same message, its stack. */
function loadError(plain: SerializedError, where: string): WsmodError {
  const known = plain.code !== undefined && plain.code in ERRORS;
  const err = new WsmodError(known ? (plain.code as ErrorCode) : 'WSMOD_ERR_PLUGIN_LOAD', known ? undefined : `${where}: ${plain.message}`, {
    cause: deserializeError(plain),
  });
  if (known) {
    err.message = plain.message;
    if (plain.stack !== undefined) err.stack = plain.stack;
  }
  return err;
}

/** Ends a host session with 1011 (WSMOD_ERR_PLUGIN_THREW), as the host does for an inline plugin failure. */
function closeWith1011(session: Session<unknown>): void {
  if (session.readyState !== 'open') return;
  try {
    session.close(PLUGIN_THREW);
  } catch {
    session.terminate();
  }
}

class WorkerPluginRunner {
  readonly #opts: WorkerPluginOptions;
  readonly #log: Logger;
  /** The plugin file (or package) as errors name it. */
  readonly #where: string;
  readonly #baseDelay: number;
  #delay: number;
  #name = 'worker plugin';
  #protocols: readonly string[] | undefined;
  #backpressurePolicy: 'drop' | 'close' | undefined;
  #hooks = new Set<HookName>();
  #current: WorkerInstance | undefined;
  /** The worker started last (even once gone): for tests that check it was terminated. */
  #latest: Worker | undefined;
  #waiters: Array<{ resolve(instance: WorkerInstance): void; reject(err: Error): void }> = [];
  #restartTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #rid = 0;
  readonly #records = new WeakMap<Session<unknown>, SessionRecord>();
  /** The host's handle (from onStart): publishes of the worker's plugin without a session. */
  #host: PluginHost | undefined;

  constructor(opts: WorkerPluginOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#where = isFileSpecifier(opts.specifier)
      ? isAbsolute(opts.specifier)
        ? opts.specifier
        : resolve(opts.baseDir, opts.specifier)
      : opts.specifier;
    const checked = checkOptions(restartDelaySchema(), opts.restartDelay, ['restartDelay']);
    if (!checked.ok) throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `worker plugin ${opts.path}: ${problemText(checked.problems)}`);
    this.#baseDelay = this.#delay = checked.value ?? DEFAULT_RESTART_DELAY;
  }

  async start(): Promise<Plugin<unknown>> {
    this.#current = await this.#spawn();
    return this.#plugin();
  }

  #plugin(): Plugin<unknown> {
    // onOpen, onClose, onDrain and onShutdown are always there: the worker must create and release
    // each session, learn about drains (for send's result) and be terminated. onUpgrade is always there
    // so upgrades can wait for a restarting worker; none of them asks the worker to run a hook the
    // plugin does not have (no round trip).
    return {
      name: this.#name,
      apiVersion: PLUGIN_API_VERSION,
      ...(this.#protocols !== undefined && { protocols: this.#protocols }),
      ...(this.#backpressurePolicy !== undefined && { backpressurePolicy: this.#backpressurePolicy }),
      onUpgrade: (req) => this.#onUpgrade(req),
      onOpen: (session) => this.#onOpen(session),
      onMessage: (session, data, isBinary) => this.#onMessage(session, data, isBinary),
      onClose: (session, code, reason) => this.#onClose(session, code, reason),
      onDrain: (session) => this.#onDrain(session),
      onShutdown: () => this.#onShutdown(),
      // Always there: the host handle also serves session publishes whose session has gone.
      onStart: (host: PluginHost) => this.#onStart(host),
      ...(this.#hooks.has('onBackplaneGap') && { onBackplaneGap: (topic: string) => this.#current?.post({ t: 'gap', topic }) }),
      [SETTLE]: (session: Session<unknown>) => this.#settle(session),
      [LATEST_WORKER]: () => this.#latest,
    } as Plugin<unknown>;
  }

  // ---- worker life ----

  /** Starts a worker; resolves once its plugin is loaded, rejects with the load failure. */
  #spawn(): Promise<WorkerInstance> {
    return new Promise((resolvePromise, reject) => {
      const boot: WorkerBoot = {
        specifier: this.#opts.specifier,
        baseDir: this.#opts.baseDir,
        options: this.#opts.options,
        path: this.#opts.path,
      };
      let worker: Worker;
      try {
        worker = startWorker(boot);
      } catch (err) {
        const problem = (err as Error).name === 'DataCloneError' ? 'the options must be structured-cloneable' : 'cannot start a worker';
        reject(new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${this.#where}: ${problem}: ${(err as Error).message}`, { cause: err }));
        return;
      }
      const instance = new WorkerInstance(worker);
      this.#latest = worker;
      instance.updateRef();
      let settled = false;
      const failLoad = (err: WsmodError): void => {
        if (settled) return;
        settled = true;
        instance.stopping = true;
        void worker.terminate();
        instance.dead = true;
        reject(err);
      };
      worker.on('message', (m: WorkerToHost) => {
        if (m.t === 'ready') {
          if (settled) return;
          settled = true;
          this.#name = m.name;
          this.#protocols = m.protocols;
          this.#backpressurePolicy = m.backpressurePolicy;
          this.#hooks = new Set(m.hooks);
          instance.readyAt = performance.now();
          instance.updateRef();
          resolvePromise(instance);
        } else if (m.t === 'loadFailed') {
          failLoad(loadError(m.error, this.#where));
        } else {
          this.#fromWorker(instance, m);
        }
      });
      worker.on('error', (err: Error) => {
        if (!settled) failLoad(new WsmodError('WSMOD_ERR_PLUGIN_LOAD', `${this.#where}: the plugin worker failed while loading: ${err.message}`, { cause: err }));
        else this.#gone(instance, err, undefined);
      });
      worker.on('exit', (code: number) => {
        if (!settled) failLoad(new WsmodError('WSMOD_ERR_PLUGIN_LOAD', `${this.#where}: the plugin worker exited with code ${code} while loading`));
        else this.#gone(instance, undefined, code);
      });
      worker.on('messageerror', (err: Error) => {
        this.#log.error({ plugin: this.#name, path: this.#opts.path, err }, `plugin "${this.#name}": a message from its worker could not be read`);
      });
    });
  }

  /** The worker exited or threw: fail its calls; unless stopped on purpose, close its sessions and restart. */
  #gone(instance: WorkerInstance, err: Error | undefined, exitCode: number | undefined): void {
    if (instance.dead) return;
    instance.dead = true;
    const gone = new WorkerGoneError(
      err !== undefined ? `the plugin worker crashed: ${err.message}` : `the plugin worker exited with code ${String(exitCode)}`,
      { cause: err },
    );
    const calls = [...instance.calls.values()];
    instance.calls.clear();
    for (const call of calls) call.reject(gone);
    if (instance.stopping) return;

    const records = [...instance.sessions.values()];
    instance.sessions.clear();
    if (this.#current === instance) this.#current = undefined;
    if (performance.now() - instance.readyAt >= STABLE_AFTER) this.#delay = this.#baseDelay;
    this.#log.error(
      {
        plugin: this.#name,
        path: this.#opts.path,
        sessions: records.length,
        restartIn: this.#delay,
        ...(err !== undefined && { err }),
        ...(exitCode !== undefined && { exitCode }),
      },
      `plugin "${this.#name}": its worker ${err !== undefined ? 'crashed' : `exited with code ${String(exitCode)}`}; closing its ${records.length} session(s) with 1011 and restarting it`,
    );
    // Sessions whose onOpen was running are closed by the host when that call fails.
    for (const record of records) if (!record.opening) closeWith1011(record.session);
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#closed || this.#restartTimer !== undefined) return;
    const delay = this.#delay;
    this.#delay = Math.min(this.#delay * 2, Math.max(MAX_RESTART_DELAY, this.#baseDelay));
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      void this.#restart();
    }, delay);
    this.#restartTimer.unref();
  }

  async #restart(): Promise<void> {
    let instance: WorkerInstance;
    try {
      instance = await this.#spawn();
    } catch (err) {
      if (this.#closed) return;
      this.#log.error(
        { plugin: this.#name, path: this.#opts.path, err, restartIn: this.#delay },
        `plugin "${this.#name}": its worker could not be restarted; upgrades are refused with 503 until it is`,
      );
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const waiter of waiters) waiter.reject(err as Error);
      this.#scheduleRestart();
      return;
    }
    if (this.#closed) {
      instance.stopping = true;
      void instance.worker.terminate();
      return;
    }
    this.#current = instance;
    // A restarted plugin starts serving again: its onStart runs with the host handle, as at first.
    if (this.#host !== undefined && this.#hooks.has('onStart')) instance.post({ t: 'start' });
    this.#log.info({ plugin: this.#name, path: this.#opts.path }, `plugin "${this.#name}": worker restarted`);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve(instance);
  }

  /** The serving worker, or a promise of the restarted one. */
  #acquire(): WorkerInstance | Promise<WorkerInstance> {
    const current = this.#current;
    if (current !== undefined && !current.dead) return current;
    if (this.#closed) return Promise.reject(new WorkerGoneError('the plugin worker was shut down'));
    return new Promise((resolvePromise, reject) => this.#waiters.push({ resolve: resolvePromise, reject }));
  }

  // ---- worker → host ----

  #fromWorker(instance: WorkerInstance, m: WorkerToHost): void {
    switch (m.t) {
      case 'send': {
        const record = instance.sessions.get(m.sid);
        if (record === undefined) return;
        let result: SendResult;
        try {
          result = record.session.send(typeof m.data === 'string' ? m.data : Buffer.from(m.data), { binary: m.binary });
        } catch (err) {
          this.#failed(instance, m.sid, err);
          return;
        }
        const state = record.session.readyState;
        if (result === record.lastResult && state === record.lastState) return;
        record.lastResult = result;
        record.lastState = state;
        instance.post({ t: 'state', sid: m.sid, result, bufferedAmount: record.session.bufferedAmount, readyState: state });
        return;
      }
      case 'reply':
        instance.settle(m.rid, m.decision);
        return;
      case 'close': {
        const record = instance.sessions.get(m.sid);
        if (record === undefined) return;
        try {
          record.session.close(m.code, m.reason);
        } catch (err) {
          this.#failed(instance, m.sid, err);
        }
        return;
      }
      case 'terminate':
        instance.sessions.get(m.sid)?.session.terminate();
        return;
      case 'ping': {
        const record = instance.sessions.get(m.sid);
        if (record === undefined) return;
        try {
          record.session.ping(typeof m.data === 'string' ? m.data : Buffer.from(m.data));
        } catch (err) {
          this.#failed(instance, m.sid, err);
        }
        return;
      }
      case 'fail': {
        // The worker's runtime logged the failure already.
        const record = instance.sessions.get(m.sid);
        if (record !== undefined) closeWith1011(record.session);
        return;
      }
      case 'log':
        this.#log[m.level](m.obj, m.msg);
        return;
      case 'sub':
      case 'unsub': {
        const record = instance.sessions.get(m.sid);
        if (record === undefined) return;
        try {
          if (m.t === 'sub') record.session.subscribe(m.topic);
          else record.session.unsubscribe(m.topic);
        } catch (err) {
          this.#failed(instance, m.sid, err);
        }
        return;
      }
      case 'pub': {
        const data = typeof m.data === 'string' ? m.data : Buffer.from(m.data);
        const record = m.sid === undefined ? undefined : instance.sessions.get(m.sid);
        try {
          // A session that ended meanwhile subscribes nothing any more: its publish goes out host-wide.
          if (record !== undefined) record.session.publish(m.topic, data, { binary: m.binary, exceptSelf: m.exceptSelf });
          else if (this.#host !== undefined) this.#host.publish(m.topic, data, { binary: m.binary });
          else this.#log.warn({ plugin: this.#name, topic: m.topic }, `plugin "${this.#name}": a publish before the host started serving it was dropped`);
        } catch (err) {
          if (m.sid !== undefined) this.#failed(instance, m.sid, err);
          else this.#log.error({ plugin: this.#name, err }, `plugin "${this.#name}": its worker asked for an invalid publish`);
        }
        return;
      }
      case 'ready':
      case 'loadFailed':
        return;
    }
  }

  /** An action the plugin asked for was refused by the host (a bad close code...): logged, 1011. */
  #failed(instance: WorkerInstance, sid: string, err: unknown): void {
    this.#log.error({ plugin: this.#name, session: sid, err }, `plugin "${this.#name}": its worker asked for an invalid action`);
    const record = instance.sessions.get(sid);
    if (record !== undefined) closeWith1011(record.session);
  }

  // ---- host → worker: the proxy hooks ----

  #onUpgrade(req: UpgradeRequest<unknown>): UpgradeDecision | Promise<UpgradeDecision> {
    const got = this.#acquire();
    // No onUpgrade in the plugin and a worker ready: accept at once, no round trip.
    if (!(got instanceof Promise) && !this.#hooks.has('onUpgrade')) return req.accept();
    return this.#upgrade(req, got);
  }

  async #upgrade(req: UpgradeRequest<unknown>, got: WorkerInstance | Promise<WorkerInstance>): Promise<UpgradeDecision> {
    let instance: WorkerInstance;
    try {
      instance = await got;
    } catch {
      return req.reject(503, 'the plugin worker is unavailable');
    }
    if (!this.#hooks.has('onUpgrade')) return req.accept();
    const rid = ++this.#rid;
    let decision: PlainDecision | undefined;
    try {
      decision = await instance.call(rid, { t: 'upgrade', rid, req: infoOf(req) });
    } catch (err) {
      if (err instanceof WorkerGoneError) return req.reject(503, 'the plugin worker is restarting');
      throw err;
    }
    if (decision === undefined) throw new Error('the plugin worker sent no decision');
    if (!decision.accept) return req.reject(decision.status, decision.reason);
    const ticket = decision.ticket === undefined ? undefined : new Ticket(instance, decision.ticket);
    if (ticket !== undefined) {
      // The host opens an accepted session in the same tick; if it did not (the handshake timed out,
      // the socket went away), the worker drops the data it kept for it.
      setImmediate(() => {
        if (!ticket.claimed) instance.post({ t: 'discard', ticket: ticket.id });
      });
    }
    const init: AcceptInit<unknown> = {
      ...(decision.protocol !== undefined && { protocol: decision.protocol }),
      ...(decision.headers !== undefined && { headers: decision.headers }),
      ...(ticket !== undefined && { data: ticket }),
    };
    return req.accept(init);
  }

  #onOpen(session: Session<unknown>): void | Promise<void> {
    let ticket: Ticket | undefined;
    if (session.data instanceof Ticket) {
      ticket = session.data;
      ticket.claimed = true;
      session.data = undefined;
    }
    const got = this.#acquire();
    if (got instanceof Promise) {
      return got.then((instance) => {
        if (ticket !== undefined) throw new WorkerGoneError('the plugin worker restarted before the session opened');
        if (session.readyState === 'closed') return undefined;
        return this.#open(instance, session, undefined);
      });
    }
    if (ticket !== undefined && ticket.instance !== got) {
      return Promise.reject(new WorkerGoneError('the plugin worker restarted before the session opened'));
    }
    return this.#open(got, session, ticket?.id);
  }

  #open(instance: WorkerInstance, session: Session<unknown>, ticket: number | undefined): void | Promise<void> {
    const record: SessionRecord = { session, instance, lastResult: 'sent', lastState: 'open', opening: false };
    instance.sessions.set(session.id, record);
    this.#records.set(session, record);
    const init = infoOf(session);
    const maxTopics = maxTopicsOf(session);
    if (!this.#hooks.has('onOpen')) {
      instance.post({ t: 'open', sid: session.id, init, maxTopics, ...(ticket !== undefined && { ticket }) });
      return;
    }
    // Awaited: the host reads no message before the worker's onOpen settles.
    const rid = ++this.#rid;
    record.opening = true;
    return instance.call(rid, { t: 'open', sid: session.id, init, maxTopics, rid, ...(ticket !== undefined && { ticket }) }).then(
      () => {
        record.opening = false;
      },
      (err: unknown) => {
        record.opening = false;
        throw err;
      },
    );
  }

  #onMessage(session: Session<unknown>, data: Buffer, isBinary: boolean): void {
    const record = this.#records.get(session);
    if (record === undefined || record.instance.dead) return;
    // A copy: `data` may be a view of a pooled or shared buffer, which must never be transferred.
    const copy = copyToArrayBuffer(data);
    record.instance.post({ t: 'msg', sid: session.id, data: copy, binary: isBinary }, [copy]);
  }

  #onClose(session: Session<unknown>, code: number, reason: string): void {
    const record = this.#records.get(session);
    if (record === undefined) return;
    this.#records.delete(session);
    record.instance.sessions.delete(session.id);
    record.instance.post({ t: 'close', sid: session.id, code, reason });
  }

  #onDrain(session: Session<unknown>): void {
    const record = this.#records.get(session);
    if (record === undefined) return;
    record.lastResult = 'sent';
    record.lastState = session.readyState;
    record.instance.post({ t: 'drain', sid: session.id, bufferedAmount: session.bufferedAmount, readyState: session.readyState });
  }

  /** The host serves this plugin: keep its handle, and run the worker plugin's onStart (if it has one). */
  #onStart(host: PluginHost): void {
    this.#host = host;
    if (this.#hooks.has('onStart')) this.#current?.post({ t: 'start' });
  }

  /** Resolves once the worker has handled every message posted to it for `session` (and posted their replies). */
  #settle(session: Session<unknown>): Promise<void> | undefined {
    const record = this.#records.get(session);
    if (record === undefined || record.instance.dead) return undefined;
    const rid = ++this.#rid;
    return record.instance.call(rid, { t: 'settle', rid }).then(() => undefined);
  }

  /** Runs the plugin's onShutdown in the worker (at most SHUTDOWN_CAP), then terminates the worker. */
  async #onShutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(new WorkerGoneError('the plugin worker was shut down'));
    const instance = this.#current;
    this.#current = undefined;
    if (instance === undefined || instance.dead) return;
    instance.stopping = true;
    instance.updateRef();
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.#hooks.has('onShutdown')) {
        const rid = ++this.#rid;
        const capped = new Promise<void>((resolvePromise) => {
          timer = setTimeout(() => {
            this.#log.warn({ plugin: this.#name, path: this.#opts.path }, `plugin "${this.#name}": onShutdown did not finish in its worker; terminating it`);
            resolvePromise();
          }, SHUTDOWN_CAP);
        });
        const done = instance.call(rid, { t: 'shutdown', rid }).then(
          () => undefined,
          (err: unknown) => {
            if (!(err instanceof WorkerGoneError)) throw err;
          },
        );
        await Promise.race([done, capped]);
      }
    } finally {
      clearTimeout(timer);
      await instance.worker.terminate();
    }
  }
}

/**
 * Runs a plugin in a `worker_threads` Worker and returns a {@link Plugin} that proxies every hook to
 * it; use it as a route's plugin. Resolves once the worker has loaded the plugin (with
 * `loadPlugin(specifier, { baseDir, options, context })`); rejects with the loader's WsmodError
 * (WSMOD_ERR_PLUGIN_LOAD, WSMOD_ERR_PLUGIN_INVALID or WSMOD_ERR_PLUGIN_API_VERSION, message naming the
 * file) when it cannot.
 *
 * Rules, as for inline plugins: a hook that throws closes only its session with 1011, and the error is
 * logged. A worker that crashes (uncaught error, process.exit) closes the sessions it served with 1011
 * and is restarted after `restartDelay`; upgrades wait for the restart (503 if it fails).
 */
export async function createWorkerPlugin(opts: WorkerPluginOptions): Promise<Plugin<unknown>> {
  return new WorkerPluginRunner(opts).start();
}
