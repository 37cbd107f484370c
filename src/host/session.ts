import type { Duplex } from 'node:stream';
import { Connection, type ConnectionEvents, ReadyState } from '../connection/connection.ts';
import { WsmodError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { PreparedMessage } from '../connection/prepared.ts';
import type { PublishResult, SendResult } from '../plugin/api.ts';
import type { PluginRuntime, ReadyStateName, RuntimeSession, SessionInfo, SessionLink } from '../plugin/runtime.ts';
import type { DeflateCodec } from '../protocol/permessage-deflate.ts';
import type { Broker, DeliveryResult, Subscriber } from '../pubsub/broker.ts';
import type { Route } from './options.ts';

/** Counters a host keeps over all its sessions (read by tests, later the status page and metrics). */
export interface HostStats {
  /** Messages received from clients, and their payload bytes (after decompression). */
  messagesIn: number;
  bytesIn: number;
  /** Messages sent to clients (by `send()` or a publish) and not dropped, and their payload bytes (before compression). */
  messagesOut: number;
  bytesOut: number;
  /** `send()` calls that returned 'dropped' (session closing, or over maxBackpressure with policy `drop`). */
  messagesDropped: number;
  /** Sessions closed with 1008 because a send went over maxBackpressure (policy `close`). */
  closedForBackpressure: number;
}

const STATES = { [ReadyState.OPEN]: 'open', [ReadyState.CLOSING]: 'closing', [ReadyState.CLOSED]: 'closed' } as const;

/** How long a failing connection waits for replies still owed by a plugin worker (see PluginRuntime.settle). */
const SETTLE_DEADLINE_MS = 1000;

/**
 * The host's side of one session: the real {@link Connection}, offered to the plugin runtime as the
 * session's {@link SessionLink}, the connection events, handed to the runtime's hooks, and the
 * session's place in the host's topic {@link Broker} (as a {@link Subscriber}).
 */
export class HostSession implements ConnectionEvents, SessionLink, Subscriber {
  readonly #runtime: PluginRuntime;
  readonly #broker: Broker;
  readonly #route: Route;
  readonly #log: Logger;
  readonly #onEnded: (session: HostSession) => void;
  readonly #connection: Connection;
  readonly #session: RuntimeSession;
  readonly #head: Buffer;
  readonly #stats: HostStats;

  constructor(
    info: SessionInfo,
    data: unknown,
    deflate: DeflateCodec | undefined,
    route: Route,
    runtime: PluginRuntime,
    socket: Duplex,
    head: Buffer,
    log: Logger,
    stats: HostStats,
    broker: Broker,
    onEnded: (session: HostSession) => void,
  ) {
    this.#runtime = runtime;
    this.#stats = stats;
    this.#broker = broker;
    this.#route = route;
    this.#log = log;
    this.#onEnded = onEnded;
    this.#head = head;
    this.#connection = new Connection(
      socket,
      {
        role: 'server',
        maxMessageSize: route.maxMessageSize,
        idleTimeout: route.idleTimeout,
        pongTimeout: route.pongTimeout,
        closeTimeout: route.closeTimeout,
        maxBackpressure: route.maxBackpressure,
        backpressurePolicy: route.backpressurePolicy,
        deflate,
        // Reads start after runtime.open below, so the session exists by then.
        bindReads: (read) => runtime.bindReads(this.#session)(read),
      },
      this,
    );
    const { session, ready } = runtime.open(info, this, data);
    this.#session = session;
    // An asynchronous onOpen is awaited first, so no onMessage runs before it settles; meanwhile the
    // socket stays paused.
    if (ready === undefined) this.#connection.start(head);
    else void ready.then(() => this.#connection.start(this.#head));
  }

  get id(): string {
    return this.#session.id;
  }

  // ---- SessionLink ----

  get bufferedAmount(): number {
    return this.#connection.bufferedAmount;
  }

  get readyState(): ReadyStateName {
    return STATES[this.#connection.readyState];
  }

  send(data: string | Uint8Array, binary: boolean): SendResult {
    const result = this.#connection.send(data, binary);
    if (result === 'dropped') this.#stats.messagesDropped++;
    else {
      this.#stats.messagesOut++;
      this.#stats.bytesOut += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    }
    return result;
  }

  close(code?: number, reason?: string): void {
    this.#connection.close(code, reason);
  }

  terminate(): void {
    this.#connection.terminate();
  }

  ping(data: string | Uint8Array): boolean {
    return this.#connection.ping(typeof data === 'string' ? data : Buffer.from(data));
  }

  fail(err: WsmodError): void {
    this.#connection.fail(err);
  }

  get maxTopics(): number {
    return this.#route.maxTopics;
  }

  subscribe(topic: string): void {
    this.#broker.subscribe(topic, this);
  }

  unsubscribe(topic: string): void {
    this.#broker.unsubscribe(topic, this);
  }

  publish(topic: string, data: string | Uint8Array, binary: boolean, exceptSelf: boolean): PublishResult {
    return this.#broker.publish(topic, data, binary, exceptSelf ? this : undefined);
  }

  // ---- Subscriber ----

  /** @internal A topic message; over maxBackpressure the route's slowSubscriber policy applies. */
  deliver(message: PreparedMessage): DeliveryResult {
    const result = this.#connection.sendPrepared(message);
    if (result !== 'dropped') {
      this.#stats.messagesOut++;
      this.#stats.bytesOut += message.payload.length;
      return 'sent';
    }
    if (this.#connection.readyState !== ReadyState.OPEN) return 'gone';
    if (this.#route.slowSubscriber === 'drop') return 'dropped';
    this.#connection.fail(new WsmodError('WSMOD_ERR_SLOW_SUBSCRIBER', `${this.#connection.bufferedAmount + message.payload.length} bytes`));
    return 'closed';
  }

  // ---- ConnectionEvents ----

  /** @internal */
  onMessage(data: Buffer, isBinary: boolean): void {
    this.#stats.messagesIn++;
    this.#stats.bytesIn += data.length;
    this.#runtime.message(this.#session, data, isBinary);
  }

  /** @internal */
  onDrain(): void {
    this.#runtime.drain(this.#session);
  }

  /** @internal Replies owed for messages already delivered go out before a failure's close frame. */
  beforeFail(resume: () => void): boolean {
    const pending = this.#runtime.settle(this.#session);
    if (pending === undefined) return false;
    const timer = setTimeout(resume, SETTLE_DEADLINE_MS);
    void pending.then(
      () => {
        clearTimeout(timer);
        resume();
      },
      () => {
        clearTimeout(timer);
        resume();
      },
    );
    return true;
  }

  /** @internal */
  onClose(code: number, reason: string, error: WsmodError | undefined): void {
    if (error?.code === 'WSMOD_ERR_BACKPRESSURE') this.#stats.closedForBackpressure++;
    if (error !== undefined && error.code !== 'WSMOD_ERR_PLUGIN_THREW') {
      this.#log.debug({ session: this.#session.id, code: error.code, err: error.message }, 'connection failed');
    }
    // The topics are released before onClose, which may still read session.topics.
    for (const topic of this.#session.topics) this.#broker.unsubscribe(topic, this);
    this.#onEnded(this);
    this.#runtime.closed(this.#session, code, reason);
  }
}
