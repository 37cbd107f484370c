import type { Duplex } from 'node:stream';
import { Connection, type ConnectionEvents, ReadyState } from '../connection/connection.ts';
import { WsmodError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Headers, Plugin, SendOptions, SendResult, Session } from '../plugin/api.ts';
import type { DeflateCodec } from '../protocol/permessage-deflate.ts';
import type { Route } from './options.ts';

/** What a session knows about the request that opened it. */
export interface SessionInit {
  readonly id: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Headers;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly protocol: string | undefined;
  readonly extensions: string;
  readonly data: unknown;
  /** The permessage-deflate codec, when negotiated. */
  readonly deflate?: DeflateCodec | undefined;
}

const STATES = { [ReadyState.OPEN]: 'open', [ReadyState.CLOSING]: 'closing', [ReadyState.CLOSED]: 'closed' } as const;

/**
 * The host's side of one session: the {@link Session} a plugin holds, and the connection events that
 * drive the plugin's hooks. Every plugin call is guarded: a throw or a rejection closes this session
 * alone with 1011 and is logged.
 */
export class HostSession implements Session<unknown>, ConnectionEvents {
  readonly id: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Headers;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly protocol: string | undefined;
  readonly extensions: string;
  data: unknown;

  readonly #plugin: Plugin<unknown>;
  readonly #log: Logger;
  readonly #onEnded: (session: HostSession) => void;
  readonly #connection: Connection;
  #opened = false;
  #onRejected: ((err: unknown) => void) | undefined;

  constructor(
    init: SessionInit,
    route: Route,
    socket: Duplex,
    log: Logger,
    onEnded: (session: HostSession) => void,
  ) {
    this.id = init.id;
    this.path = init.path;
    this.query = init.query;
    this.headers = init.headers;
    this.remoteAddress = init.remoteAddress;
    this.remotePort = init.remotePort;
    this.protocol = init.protocol;
    this.extensions = init.extensions;
    this.data = init.data;
    this.#plugin = route.plugin;
    this.#log = log;
    this.#onEnded = onEnded;
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
        deflate: init.deflate,
      },
      this,
    );
  }

  /**
   * Runs onOpen, then starts reading (with `head`, the bytes that followed the handshake). An async
   * onOpen is awaited first, so no onMessage runs before it settles; meanwhile the socket stays paused.
   */
  open(head: Buffer): void {
    this.#opened = true;
    const hook = this.#plugin.onOpen;
    if (hook === undefined) {
      this.#connection.start(head);
      return;
    }
    let result: unknown;
    try {
      result = hook.call(this.#plugin, this);
    } catch (err) {
      this.#pluginFailed('onOpen', err);
      this.#connection.start(head);
      return;
    }
    if (isThenable(result)) {
      result.then(
        () => this.#connection.start(head),
        (err: unknown) => {
          this.#pluginFailed('onOpen', err);
          this.#connection.start(head);
        },
      );
    } else {
      this.#connection.start(head);
    }
  }

  get bufferedAmount(): number {
    return this.#connection.bufferedAmount;
  }

  get readyState(): 'open' | 'closing' | 'closed' {
    return STATES[this.#connection.readyState];
  }

  send(data: string | Uint8Array, options?: SendOptions): SendResult {
    return this.#connection.send(data, options?.binary ?? typeof data !== 'string');
  }

  close(code?: number, reason?: string): void {
    this.#connection.close(code, reason);
  }

  terminate(): void {
    this.#connection.terminate();
  }

  ping(data?: string | Uint8Array): boolean {
    return this.#connection.ping(data === undefined ? '' : typeof data === 'string' ? data : Buffer.from(data));
  }

  // ---- ConnectionEvents ----

  /** @internal */
  onMessage(data: Buffer, isBinary: boolean): void {
    let result: unknown;
    try {
      result = this.#plugin.onMessage(this, data, isBinary);
    } catch (err) {
      this.#pluginFailed('onMessage', err);
      return;
    }
    if (isThenable(result)) result.then(undefined, this.#rejectionHandler());
  }

  /** @internal */
  onDrain(): void {
    this.#guard('onDrain', this.#plugin.onDrain);
  }

  /** @internal */
  onClose(code: number, reason: string, error: WsmodError | undefined): void {
    if (error !== undefined && error.code !== 'WSMOD_ERR_PLUGIN_THREW') {
      this.#log.debug({ session: this.id, code: error.code, err: error.message }, 'connection failed');
    }
    this.#onEnded(this);
    if (this.#opened) {
      const hook = this.#plugin.onClose;
      if (hook !== undefined) {
        try {
          const result = hook.call(this.#plugin, this, code, reason);
          if (isThenable(result)) result.then(undefined, (err: unknown) => this.#logFailure('onClose', err));
        } catch (err) {
          this.#logFailure('onClose', err);
        }
      }
    }
  }

  /** Calls an optional hook with the session, guarding against throws and rejections. */
  #guard(name: string, hook: ((session: Session<unknown>) => unknown) | undefined): void {
    if (hook === undefined) return;
    try {
      const result = hook.call(this.#plugin, this);
      if (isThenable(result)) result.then(undefined, this.#rejectionHandler(name));
    } catch (err) {
      this.#pluginFailed(name, err);
    }
  }

  #rejectionHandler(name = 'onMessage'): (err: unknown) => void {
    if (name !== 'onMessage') return (err) => this.#pluginFailed(name, err);
    return (this.#onRejected ??= (err) => this.#pluginFailed('onMessage', err));
  }

  #logFailure(hook: string, err: unknown): void {
    this.#log.error({ plugin: this.#plugin.name, session: this.id, hook, err }, `plugin "${this.#plugin.name}" threw in ${hook}`);
  }

  /** A plugin failure ends only this session: close with 1011 (DESIGN.md, plugin rules). */
  #pluginFailed(hook: string, err: unknown): void {
    this.#logFailure(hook, err);
    if (this.#connection.readyState === ReadyState.OPEN) {
      this.#connection.fail(new WsmodError('WSMOD_ERR_PLUGIN_THREW', hook, { cause: err }));
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
