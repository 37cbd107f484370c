/**
 * The plugin runtime: the one place where a plugin's hooks are called. Every isolation mode reaches a
 * plugin through it — the host runs a runtime for each route's plugin, and a plugin worker runs one
 * inside its thread for the plugin it loaded — so the rules below are written once:
 *
 * - the upgrade request is built here from a plain {@link UpgradeInfo}, and the plugin's verdict is
 *   checked here ({@link Verdict});
 * - a session is a {@link RuntimeSession} built from a plain {@link SessionInfo}; what it does on the
 *   wire goes through a {@link SessionLink} (the real connection inline, a MessagePort in a worker);
 * - a hook that throws or rejects ends only its own session (1011 through `link.fail`) and is logged;
 * - asynchronous faults — a throw from a timer, a floating rejection, an 'error' event nobody listens
 *   to — are attributed to the plugin and session whose hook started the work (AsyncLocalStorage
 *   around every hook) and handled the same way. An error that cannot be attributed is logged and
 *   counted; the process keeps serving.
 *
 * Adding a session method means one change to {@link RuntimeSession} and {@link SessionLink}, plus the
 * worker's wire format.
 */
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { ERRORS, WsmodError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { STALL_THRESHOLD_MS, enterHook, leaveHook, watchStalls } from './stall-watch.ts';
import type {
  AcceptInit,
  Plugin,
  PluginHost,
  PublishOptions,
  PublishResult,
  SendOptions,
  SendResult,
  Session,
  SessionIdentity,
  UpgradeDecision,
  UpgradeIdentity,
  UpgradeRequest,
} from './api.ts';
import { checkTopic } from './topic.ts';

/** A plugin hook's name. */
export type HookName = 'onUpgrade' | 'onOpen' | 'onMessage' | 'onClose' | 'onDrain' | 'onShutdown' | 'onStart' | 'onBackplaneGap';

/** Every hook, in the order of a plugin's life. */
export const HOOK_NAMES: readonly HookName[] = ['onUpgrade', 'onOpen', 'onMessage', 'onClose', 'onDrain', 'onShutdown', 'onStart', 'onBackplaneGap'];

/** The plain, structured-cloneable form of request data: the query as its raw string (no "?"). */
type Plain<T> = { readonly [K in keyof T]: T[K] extends URLSearchParams ? string : T[K] };

/** What a session knows about the request that opened it, as plain data (it crosses thread boundaries as is). */
export type SessionInfo = Plain<SessionIdentity>;

/** The handshake request before the 101, as plain data. */
export type UpgradeInfo = Plain<UpgradeIdentity>;

/** A session's readyState. */
export type ReadyStateName = Session['readyState'];

/**
 * What a session does on the wire, provided by whoever holds the connection: the host (a real
 * connection) or a worker (messages to the host, which holds it).
 */
export interface SessionLink {
  send(data: string | Uint8Array, binary: boolean): SendResult;
  /** Throws WSMOD_ERR_INVALID_CLOSE for a code or reason that may not be sent. */
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(data: string | Uint8Array): boolean;
  readonly bufferedAmount: number;
  readonly readyState: ReadyStateName;
  /** The plugin failed on this session: end it with the error's close code (1011). */
  fail(err: WsmodError): void;
  /** How many topics the session may hold (the route's `maxTopics`). */
  readonly maxTopics: number;
  /** The session now subscribes `topic` (a valid name it did not hold; the runtime keeps the set). */
  subscribe(topic: string): void;
  /** The session no longer subscribes `topic` (one it held). */
  unsubscribe(topic: string): void;
  /** Publishes on a valid topic; `exceptSelf`: leave this session out. */
  publish(topic: string, data: string | Uint8Array, binary: boolean, exceptSelf: boolean): PublishResult;
}

/** What the plugin's host handle does, provided by the host (or, in a worker, messages to it). */
export interface HostLink {
  /** Publishes on a valid topic to every subscriber. */
  publish(topic: string, data: string | Uint8Array, binary: boolean): PublishResult;
}

/** The outcome of `onUpgrade`, as plain data (`data` is the accepted session's initial `session.data`). */
export type Verdict =
  | {
      readonly accept: true;
      readonly protocol?: string;
      readonly headers?: Readonly<Record<string, string>>;
      readonly data?: unknown;
    }
  | { readonly accept: false; readonly status: number; readonly reason: string };

/** The object behind {@link UpgradeDecision}: only `req.accept` and `req.reject` make one. */
class Decision {
  constructor(readonly verdict: Verdict) {}
}

const ACCEPT_ALL: Verdict = { accept: true };

/**
 * Internal capability of a wrapper plugin (worker isolation): resolves once the replies to the
 * messages already delivered to `session` have reached the host. The host waits for it (briefly)
 * before it fails a connection, so a reply is not lost behind a protocol error.
 */
export const SETTLE = Symbol('wsmod.settle');

/** A plugin that may expose {@link SETTLE}. */
type Settling = Plugin<unknown> & { [SETTLE]?(session: Session<unknown>): Promise<void> };

/** The key under which a runtime's objects give a wrapper plugin their plain form. */
export const INFO = Symbol('wsmod.info');

/** The plain form of a request or session made by a runtime (for wrappers that forward them). */
export function infoOf(value: Session<unknown>): SessionInfo;
export function infoOf(value: UpgradeRequest<unknown>): UpgradeInfo;
export function infoOf(value: Session<unknown> | UpgradeRequest<unknown>): SessionInfo | UpgradeInfo {
  const info = (value as { [INFO]?: SessionInfo | UpgradeInfo })[INFO];
  if (info === undefined) throw new TypeError('not a session or request made by the plugin runtime');
  return info;
}

/**
 * Marks a Buffer the runtime delivered as a text message, so sending it back without options keeps it
 * text. A property on the Buffer itself: a WeakSet of every text message would cost each message an
 * insertion and the garbage collector an ephemeron per message.
 */
const TEXT = Symbol('wsmod.text');
type Marked = Uint8Array & { [TEXT]?: true };

/** Strings are text, bytes binary, a Buffer received as text is text, unless the plugin said otherwise. */
function binaryOf(data: string | Uint8Array, binary: boolean | undefined): boolean {
  return binary ?? (typeof data !== 'string' && (data as Marked)[TEXT] !== true);
}

/** The host's cap on a session's topics, for a wrapper that forwards sessions elsewhere (a worker). */
export function maxTopicsOf(session: Session<unknown>): number {
  if (!(session instanceof RuntimeSession)) throw new TypeError('not a session made by the plugin runtime');
  return session.maxTopics;
}

/**
 * One session as the plugin sees it. The identity fields are copied from its {@link SessionInfo};
 * `query` is parsed on first use.
 */
export interface RuntimeSession extends Omit<SessionIdentity, 'query'> {}
export class RuntimeSession implements Session<unknown> {
  data: unknown;
  readonly [INFO]: SessionInfo;
  readonly #link: SessionLink;
  #query: URLSearchParams | undefined;
  /** onOpen was called: onClose is owed. */
  opened = false;
  /** Async-context scopes of this session's hooks, made on first use. */
  readonly scopes: Partial<Record<HookName, FaultScope>> = {};

  constructor(info: SessionInfo, link: SessionLink, data: unknown) {
    const { query: _query, ...identity } = info;
    Object.assign(this, identity);
    this[INFO] = info;
    this.#link = link;
    this.data = data;
  }

  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this[INFO].query));
  }

  get bufferedAmount(): number {
    return this.#link.bufferedAmount;
  }

  get readyState(): ReadyStateName {
    return this.#link.readyState;
  }

  /**
   * Strings go as text and bytes as binary unless `binary` says otherwise; a Buffer the plugin
   * received as a text message goes back as text (so an echo keeps the message's type).
   */
  send(data: string | Uint8Array, options?: SendOptions): SendResult {
    return this.#link.send(data, binaryOf(data, options?.binary));
  }

  close(code?: number, reason?: string): void {
    this.#link.close(code, reason);
  }

  terminate(): void {
    this.#link.terminate();
  }

  ping(data?: string | Uint8Array): boolean {
    return this.#link.ping(data ?? '');
  }

  /** The topic set lives here, once for every isolation mode; the link is told of each change. */
  readonly #topics = new Set<string>();

  get topics(): ReadonlySet<string> {
    return this.#topics;
  }

  /** @internal The route's cap on topics (a worker wrapper forwards it to the worker's session). */
  get maxTopics(): number {
    return this.#link.maxTopics;
  }

  subscribe(topic: string): boolean {
    checkTopic(topic);
    if (this.#topics.has(topic)) return false;
    if (this.#topics.size >= this.#link.maxTopics) throw new WsmodError('WSMOD_ERR_TOO_MANY_TOPICS', `${this.#link.maxTopics}`);
    // A closing session subscribes nothing: the host releases a session's topics when it ends.
    if (this.#link.readyState === 'closed') return false;
    this.#topics.add(topic);
    this.#link.subscribe(topic);
    return true;
  }

  unsubscribe(topic: string): boolean {
    checkTopic(topic);
    if (!this.#topics.delete(topic)) return false;
    this.#link.unsubscribe(topic);
    return true;
  }

  publish(topic: string, data: string | Uint8Array, options?: PublishOptions): PublishResult {
    checkTopic(topic);
    return this.#link.publish(topic, data, binaryOf(data, options?.binary), options?.exceptSelf ?? true);
  }

  /** @internal The plugin failed on this session: log it, then end the session with 1011 (onClose excepted). */
  fail(log: Logger, pluginName: string, hook: HookName, err: unknown, how = 'threw'): void {
    log.error({ plugin: pluginName, session: this.id, hook, err }, `plugin "${pluginName}" ${how} in ${hook}`);
    if (hook !== 'onClose' && this.#link.readyState === 'open') {
      this.#link.fail(new WsmodError('WSMOD_ERR_PLUGIN_THREW', hook, { cause: err }));
    }
  }
}

/** The async context of a running hook: whom to blame for an error that surfaces later. */
interface FaultScope {
  readonly runtime: PluginRuntime;
  readonly session: RuntimeSession | undefined;
  readonly hook: HookName;
}

const scopes = new AsyncLocalStorage<FaultScope>();

/** Counters of the faults the runtimes handled in this thread (read by tests and, later, metrics). */
export const faultCounts = { attributed: 0, unattributed: 0, stalls: 0 };

const HOOKS: readonly HookName[] = ['onUpgrade', 'onOpen', 'onMessage', 'onClose', 'onDrain', 'onShutdown'];
/** Runtimes by slot: a hook's stall-watch code is slot * 8 + the hook's index in HOOKS. */
const slots: Array<PluginRuntime | undefined> = [];
/** A blocked hook is logged at most this often per runtime and hook; every one is counted. */
const STALL_LOG_INTERVAL_MS = 60_000;

function onStall(code: number, ms: number): void {
  const runtime = slots[code >> 3];
  const hook = HOOKS[code & 7];
  if (runtime !== undefined && hook !== undefined) runtime.stalled(hook, ms);
}

/** Runtimes alive in this thread: their loggers report unattributed errors. */
const live = new Set<PluginRuntime>();

function onAsyncFault(err: unknown, kind: string): void {
  const scope = scopes.getStore();
  if (scope !== undefined) {
    faultCounts.attributed++;
    scope.runtime.asyncFault(scope, err, kind);
    return;
  }
  faultCounts.unattributed++;
  const [first] = live;
  const fields = { kind, err };
  if (first !== undefined) first.log.error(fields, `${kind} outside any plugin hook; the host keeps serving`);
  else console.error(`wsmod: ${kind} outside any plugin hook; the host keeps serving:`, err);
}

const onUncaught = (err: unknown): void => onAsyncFault(err, 'uncaught exception');
const onUnhandled = (reason: unknown): void => onAsyncFault(reason, 'unhandled rejection');

function register(runtime: PluginRuntime): number {
  if (live.size === 0) {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUnhandled);
    watchStalls(onStall);
  }
  live.add(runtime);
  let slot = slots.indexOf(undefined);
  if (slot === -1) slot = slots.push(runtime) - 1;
  else slots[slot] = runtime;
  return slot;
}

function unregister(runtime: PluginRuntime, slot: number): void {
  if (slots[slot] === runtime) slots[slot] = undefined;
  if (!live.delete(runtime) || live.size > 0) return;
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUnhandled);
}

/** True for anything with a `then` method (an awaited hook result). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Runs one plugin: calls its hooks with the rules of the module doc. While a runtime is alive, the
 * process's (or worker thread's) `uncaughtException` and `unhandledRejection` events are handled by
 * the runtimes (see the module doc); {@link shutdown} releases them.
 */
export class PluginRuntime {
  readonly plugin: Plugin<unknown>;
  readonly log: Logger;
  readonly #scopeNoSession: Partial<Record<HookName, FaultScope>> = {};
  #stopped = false;
  /** This runtime's slot: its hooks' stall-watch codes are slot * 8 + hook index. */
  readonly #slot: number;
  readonly #messageCode: number;
  /** When each hook's last stall was logged, and how many were not logged since. */
  readonly #stallLog = new Map<HookName, { at: number; quiet: number }>();

  constructor(plugin: Plugin<unknown>, log: Logger) {
    this.plugin = plugin;
    this.log = log;
    this.#slot = register(this);
    this.#messageCode = this.#slot * 8 + HOOKS.indexOf('onMessage');
  }

  get name(): string {
    return this.plugin.name;
  }

  /** Asks `onUpgrade` (when the plugin has one). Never throws: a failing hook is logged and refused with 500. */
  upgrade(info: UpgradeInfo): Verdict | Promise<Verdict> {
    const hook = this.plugin.onUpgrade;
    if (hook === undefined) return ACCEPT_ALL;
    const request = makeUpgradeRequest(info);
    let result: unknown;
    try {
      result = this.#run(undefined, 'onUpgrade', hook, request);
    } catch (err) {
      return this.#upgradeFailed(err);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => this.#verdict(value),
        (err: unknown) => this.#upgradeFailed(err),
      );
    }
    return this.#verdict(result);
  }

  #verdict(value: unknown): Verdict {
    if (value instanceof Decision) return value.verdict;
    return this.#upgradeFailed(new TypeError('onUpgrade must return req.accept(...) or req.reject(...)'));
  }

  #upgradeFailed(err: unknown): Verdict {
    this.log.error({ plugin: this.name, hook: 'onUpgrade', err }, `plugin "${this.name}" threw in onUpgrade`);
    const def = ERRORS.WSMOD_ERR_UPGRADE_FAILED;
    return { accept: false, status: def.status, reason: def.message };
  }

  /**
   * Makes the session and runs `onOpen`. The result is a promise when onOpen is asynchronous: the
   * caller reads no message before it settles. It never rejects: a failure ends the session (1011).
   */
  open(info: SessionInfo, link: SessionLink, data: unknown): { readonly session: RuntimeSession; readonly ready: void | Promise<void> } {
    const session = new RuntimeSession(info, link, data);
    session.opened = true;
    const hook = this.plugin.onOpen;
    if (hook === undefined) return { session, ready: undefined };
    return { session, ready: this.#guard(session, 'onOpen', hook) };
  }

  /** A complete message (not awaited). A text message's Buffer is remembered as text (see RuntimeSession.send). */
  message(session: RuntimeSession, data: Buffer, isBinary: boolean): void {
    if (!isBinary) (data as Marked)[TEXT] = true;
    const scope = (session.scopes.onMessage ??= { runtime: this, session, hook: 'onMessage' });
    let result: unknown;
    const depth = enterHook(this.#messageCode);
    try {
      // Reads bound with bindReads already run in this scope: entering it again per message would cost
      // an allocation each (Node 24's AsyncContextFrame makes a frame per run).
      result = scopes.getStore() === scope ? callMessage(this.plugin, session, data, isBinary) : scopes.run(scope, callMessage, this.plugin, session, data, isBinary);
    } catch (err) {
      session.fail(this.log, this.name, 'onMessage', err);
      return;
    } finally {
      leaveHook(depth);
    }
    if (isThenable(result)) result.then(undefined, (err: unknown) => session.fail(this.log, this.name, 'onMessage', err));
  }

  /**
   * Binds a connection's read handler into `session`'s onMessage fault scope, so the messages a read
   * delivers need no scope of their own: one scope per read instead of one per message.
   */
  bindReads(session: RuntimeSession): (read: (chunk: Buffer) => void) => (chunk: Buffer) => void {
    const scope = (session.scopes.onMessage ??= { runtime: this, session, hook: 'onMessage' });
    return (read) => scopes.run(scope, () => AsyncResource.bind(read));
  }

  /** The outbound queue drained. */
  drain(session: RuntimeSession): void {
    const hook = this.plugin.onDrain;
    if (hook !== undefined) void this.#guard(session, 'onDrain', hook);
  }

  /** The connection is gone: `onClose`, once, for a session whose onOpen was called. */
  closed(session: RuntimeSession, code: number, reason: string): void {
    if (!session.opened) return;
    session.opened = false;
    const hook = this.plugin.onClose;
    if (hook !== undefined) void this.#guard(session, 'onClose', hook, code, reason);
  }

  /**
   * The host serves the plugin: `onStart` with a handle whose publish goes through `link`. Not awaited;
   * a failure is logged (there is no session to end).
   */
  start(link: HostLink): void {
    const hook = this.plugin.onStart;
    if (hook === undefined) return;
    const host: PluginHost = {
      publish(topic, data, options) {
        checkTopic(topic);
        return link.publish(topic, data, binaryOf(data, options?.binary));
      },
    };
    this.#background('onStart', hook, host);
  }

  /** Remote messages on `topic` may have been lost (a backplane gap): `onBackplaneGap`, not awaited. */
  gap(topic: string): void {
    const hook = this.plugin.onBackplaneGap;
    if (hook !== undefined) this.#background('onBackplaneGap', hook, topic);
  }

  /** Calls a hook of no session that nobody waits for; a throw or rejection is logged. */
  #background(hook: HookName, fn: (...args: never[]) => unknown, ...args: unknown[]): void {
    const failed = (err: unknown): void => {
      this.log.error({ plugin: this.name, hook, err }, `plugin "${this.name}" threw in ${hook}`);
    };
    try {
      const result = this.#run(undefined, hook, fn, ...args);
      if (isThenable(result)) result.then(undefined, failed);
    } catch (err) {
      failed(err);
    }
  }

  /** See {@link SETTLE}: undefined when nothing is pending (always, for a plugin that is not a wrapper). */
  settle(session: Session<unknown>): Promise<void> | undefined {
    return (this.plugin as Settling)[SETTLE]?.(session);
  }

  /**
   * Runs `onShutdown`, waiting at most `timeout` ms; failures and overruns are logged, and a failure
   * is also the promise's value (undefined when it went well). Afterwards the runtime no longer handles
   * the process's error events (when it was the last one).
   */
  async shutdown(timeout: number): Promise<unknown> {
    if (this.#stopped) return undefined;
    this.#stopped = true;
    const hook = this.plugin.onShutdown;
    let timer: NodeJS.Timeout | undefined;
    try {
      if (hook === undefined) return undefined;
      const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), timeout)));
      const done = Promise.resolve(this.#run(undefined, 'onShutdown', hook));
      if ((await Promise.race([done, expired])) === 'expired') {
        this.log.warn({ plugin: this.name }, `plugin "${this.name}": onShutdown did not finish by the deadline`);
      }
      return undefined;
    } catch (err) {
      this.log.error({ plugin: this.name, hook: 'onShutdown', err }, `plugin "${this.name}" threw in onShutdown`);
      return err ?? new Error(String(err));
    } finally {
      clearTimeout(timer);
      unregister(this, this.#slot);
    }
  }

  /**
   * @internal One call of `hook` held the event loop for at least `ms` (reported by the stall watch
   * once the loop is free again): counted, and logged at most once a minute per hook.
   */
  stalled(hook: HookName, ms: number): void {
    faultCounts.stalls++;
    const now = Date.now();
    const last = this.#stallLog.get(hook);
    if (last !== undefined && now - last.at < STALL_LOG_INTERVAL_MS) {
      last.quiet++;
      return;
    }
    this.#stallLog.set(hook, { at: now, quiet: 0 });
    const more = last !== undefined && last.quiet > 0 ? ` (${last.quiet} more since the last report)` : '';
    this.log.warn(
      { plugin: this.name, hook, blockedMs: ms, thresholdMs: STALL_THRESHOLD_MS },
      `plugin "${this.name}" blocked the event loop for at least ${ms} ms in ${hook}${more}: every inline route waited; ` +
        'move slow synchronous work out of the hook or run the route with isolation: worker',
    );
  }

  /** @internal An error surfaced outside the hook that started the work (see the module doc). */
  asyncFault(scope: FaultScope, err: unknown, kind: string): void {
    if (scope.session !== undefined) {
      scope.session.fail(this.log, this.name, scope.hook, err, `raised an ${kind} (started in its hook)`);
      return;
    }
    this.log.error({ plugin: this.name, hook: scope.hook, kind, err }, `plugin "${this.name}" raised an ${kind} (started in ${scope.hook})`);
  }

  /** Calls a hook that nobody waits for a value from; a throw or rejection fails the session. */
  #guard(session: RuntimeSession, hook: HookName, fn: (...args: never[]) => unknown, ...args: unknown[]): void | Promise<void> {
    let result: unknown;
    try {
      result = this.#run(session, hook, fn, session, ...args);
    } catch (err) {
      session.fail(this.log, this.name, hook, err);
      return;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        () => undefined,
        (err: unknown) => session.fail(this.log, this.name, hook, err),
      );
    }
  }

  /** Calls `fn` as the plugin's method inside the hook's fault scope. */
  #run(session: RuntimeSession | undefined, hook: HookName, fn: (...args: never[]) => unknown, ...args: unknown[]): unknown {
    const table = session === undefined ? this.#scopeNoSession : session.scopes;
    const scope = (table[hook] ??= { runtime: this, session, hook });
    const depth = enterHook(this.#slot * 8 + HOOKS.indexOf(hook));
    try {
      return scopes.run(scope, () => (fn as (...a: unknown[]) => unknown).apply(this.plugin, args));
    } finally {
      leaveHook(depth);
    }
  }
}

function callMessage(plugin: Plugin<unknown>, session: RuntimeSession, data: Buffer, isBinary: boolean): unknown {
  return plugin.onMessage(session, data, isBinary);
}

/** The request a plugin's onUpgrade sees. */
function makeUpgradeRequest(info: UpgradeInfo): UpgradeRequest<unknown> {
  let query: URLSearchParams | undefined;
  const { query: _query, ...identity } = info;
  return {
    ...identity,
    get query() {
      return (query ??= new URLSearchParams(info.query));
    },
    [INFO]: info,
    accept: (init: AcceptInit<unknown> = {}) => acceptDecision(init),
    reject: (status?: number, reason?: string) => rejectDecision(status, reason),
  } as UpgradeRequest<unknown>;
}

function acceptDecision(init: AcceptInit<unknown>): UpgradeDecision {
  const verdict: Verdict = {
    accept: true,
    ...(init.protocol !== undefined && { protocol: init.protocol }),
    ...(init.headers !== undefined && { headers: { ...init.headers } }),
    ...(init.data !== undefined && { data: init.data }),
  };
  return new Decision(verdict) as unknown as UpgradeDecision;
}

/** A status outside 400-599 is the plugin's bug: 500. */
function rejectDecision(status: number = ERRORS.WSMOD_ERR_UPGRADE_REJECTED.status, reason?: string): UpgradeDecision {
  const ok = Number.isInteger(status) && status >= 400 && status <= 599;
  return new Decision({
    accept: false,
    status: ok ? status : 500,
    reason: reason ?? ERRORS.WSMOD_ERR_UPGRADE_REJECTED.message,
  }) as unknown as UpgradeDecision;
}

/**
 * Runs `onShutdown` of plugins that were built but never served (a configuration refused as a whole,
 * `--check-config`), each through a runtime of its own: failures are logged and returned, never thrown.
 */
export async function shutdownUnserved(
  plugins: Iterable<Plugin<unknown>>,
  log: Logger,
  timeout = 10_000,
): Promise<Array<{ readonly plugin: Plugin<unknown>; readonly err: unknown }>> {
  const unique = [...new Set(plugins)];
  const outcomes = await Promise.all(unique.map((plugin) => new PluginRuntime(plugin, log).shutdown(timeout)));
  return unique.flatMap((plugin, i) => (outcomes[i] === undefined ? [] : [{ plugin, err: outcomes[i] }]));
}
