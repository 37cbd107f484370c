/**
 * The wsmod plugin API, version 1. A plugin is a plain object of hooks; it never sees a socket, an
 * HTTP request or a framework type, so the same plugin runs under `wsmod serve`, inside any Node
 * server, or (later) in a worker or another process. Additions to v1 are optional members only;
 * anything that would break a v1 plugin goes into v2.
 */

/** The plugin API version this host implements. */
export const PLUGIN_API_VERSION = 1;

/** Request headers: lower-case names, as Node gives them. */
export type Headers = Readonly<Record<string, string | readonly string[] | undefined>>;

/** What `session.send` did with a message (see docs/protocol.md, "Backpressure"). */
export type SendResult = 'sent' | 'queued' | 'dropped';

/** Options of `session.send`. */
export interface SendOptions {
  /**
   * Send as a binary message. Default: false for strings and for a Buffer received as a text
   * message, true for other bytes.
   */
  readonly binary?: boolean;
}

/** Options of `session.publish` and `host.publish` (see docs/pubsub.md). */
export interface PublishOptions {
  /** Send as a binary message; the default follows the rules of {@link SendOptions.binary}. */
  readonly binary?: boolean;
  /**
   * `session.publish` only: leave the publishing session out even when it subscribes the topic.
   * Default true, as uWebSockets.js's `ws.publish` does: a sender usually knows what it said.
   */
  readonly exceptSelf?: boolean;
}

/**
 * The number of this host's sessions a publish was handed to (messages dropped for a slow subscriber
 * not counted), or undefined where that cannot be known when publish returns: in a worker-isolated
 * plugin the host thread performs the publish afterwards.
 */
export type PublishResult = number | undefined;

/** What a plugin may do host-wide, without a session: handed to `onStart`. */
export interface PluginHost {
  /**
   * Publishes a message on a topic to every subscribed session of this host (any route) and, with a
   * backplane, of the other hosts. Throws WSMOD_ERR_TOPIC_INVALID for a bad topic name.
   */
  publish(topic: string, data: string | Uint8Array, options?: Omit<PublishOptions, 'exceptSelf'>): PublishResult;
}

/** How the plugin accepts an upgrade. */
export interface AcceptInit<Data> {
  /** Subprotocol to answer with; must be one the client offered. Default: the route's choice. */
  readonly protocol?: string;
  /** Extra response headers on the 101. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Initial `session.data`. */
  readonly data?: Data;
}

declare const decisionBrand: unique symbol;

/** The verdict returned by `onUpgrade`; made only by `req.accept` or `req.reject`. */
export interface UpgradeDecision {
  readonly [decisionBrand]: true;
}

/** What the request that opens a WebSocket tells: shared by the handshake request and the session. */
export interface RequestIdentity {
  /** Path of the request URL, without the query (as sent, percent-encoding kept). */
  readonly path: string;
  /** The query string, parsed. */
  readonly query: URLSearchParams;
  readonly headers: Headers;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The local end of the connection: the listener's address and port (not the Host header's). */
  readonly localAddress: string;
  readonly localPort: number;
  /** The connection is TLS (wss://). */
  readonly secure: boolean;
}

/** The handshake request's data, before the 101 is sent. */
export interface UpgradeIdentity extends RequestIdentity {
  /** The Origin header, when the client sent one (browsers always do). */
  readonly origin: string | undefined;
  /** Subprotocols the client offered, in its order of preference. */
  readonly protocols: readonly string[];
  /** The subprotocol the host would pick: the route's preference order against the client's offer. */
  readonly selectedProtocol: string | undefined;
}

/** The handshake request as a plugin sees it in `onUpgrade`, before the 101 is sent. */
export interface UpgradeRequest<Data = unknown> extends UpgradeIdentity {
  /** Accept the connection. */
  accept(init?: AcceptInit<Data>): UpgradeDecision;
  /** Refuse with an HTTP status (400-599, default 403) and a one-line reason. */
  reject(status?: number, reason?: string): UpgradeDecision;
}

/** What a session knows about the request that opened it and what was negotiated. */
export interface SessionIdentity extends RequestIdentity {
  /** Unique id (a UUID). */
  readonly id: string;
  /** The negotiated subprotocol, or undefined when none. */
  readonly protocol: string | undefined;
  /** The negotiated extensions, as in the Sec-WebSocket-Extensions response header ('' when none). */
  readonly extensions: string;
}

/** One open WebSocket, as the plugin sees it. */
export interface Session<Data = unknown> extends SessionIdentity {
  /** The plugin's own per-session state. */
  data: Data;
  /** Outbound bytes not yet handed to the kernel. */
  readonly bufferedAmount: number;
  /** 'open', 'closing' (a close frame was sent or received) or 'closed'. */
  readonly readyState: 'open' | 'closing' | 'closed';
  /**
   * Send a message. Strings go as text and bytes as binary unless `binary` says otherwise; a Buffer
   * that arrived as a text message (in onMessage) goes as text, so echoing or forwarding a message
   * keeps its type. The bytes are not copied when large: do not modify them until written.
   */
  send(data: string | Uint8Array, options?: SendOptions): SendResult;
  /** Start the closing handshake (code 1000-1003, 1007-1014 or 3000-4999; reason up to 123 bytes). */
  close(code?: number, reason?: string): void;
  /** Drop the TCP connection at once, with no closing handshake. */
  terminate(): void;
  /** Send a ping (payload up to 125 bytes); the host answers pongs and keeps the connection alive itself. */
  ping(data?: string | Uint8Array): boolean;
  /**
   * Subscribes the session to a topic: messages published on it are sent to the session, framed once
   * for all subscribers. Returns false when it was subscribed already. Throws
   * WSMOD_ERR_TOPIC_INVALID for a bad name, WSMOD_ERR_TOO_MANY_TOPICS past the route's `maxTopics`.
   * A closed session's topics are released by the host.
   */
  subscribe(topic: string): boolean;
  /** Ends a subscription; false when the session was not subscribed. Throws WSMOD_ERR_TOPIC_INVALID. */
  unsubscribe(topic: string): boolean;
  /** The topics the session subscribes to, in subscription order (a live, read-only view). */
  readonly topics: ReadonlySet<string>;
  /**
   * Publishes a message on a topic: to every subscriber of this host (the session itself left out
   * unless `exceptSelf: false`) and, with a backplane, of the other hosts. Messages one session
   * publishes or sends reach each receiver in the order they were published or sent (docs/pubsub.md).
   * Throws WSMOD_ERR_TOPIC_INVALID.
   */
  publish(topic: string, data: string | Uint8Array, options?: PublishOptions): PublishResult;
}

/** A result that may be awaited; the host waits where the hook's doc says it does. */
export type MaybePromise<T> = T | Promise<T>;

/** A WebSocket service, written against plugin API v1. */
export interface Plugin<Data = unknown> {
  /** Name used in logs and errors. */
  readonly name: string;
  /** The plugin API version the plugin is written for: 1. */
  readonly apiVersion: typeof PLUGIN_API_VERSION;
  /** Subprotocols the plugin speaks, in order of preference. */
  readonly protocols?: readonly string[];
  /**
   * The backpressure policy the plugin is written for, when a route does not set one: `'drop'` for a
   * plugin that checks every `send()` result and keeps or re-sends what was `'dropped'` (the process
   * runner does); otherwise the host's default, `'close'`, applies (no message lost silently).
   */
  readonly backpressurePolicy?: 'drop' | 'close';
  /** Before the 101: accept or refuse. Awaited (within the host's handshakeTimeout). Default: accept. */
  onUpgrade?(req: UpgradeRequest<Data>): MaybePromise<UpgradeDecision>;
  /** The connection is open and may be used. Awaited: no onMessage runs before it settles. */
  onOpen?(session: Session<Data>): MaybePromise<void>;
  /** A complete message. Text arrives as UTF-8 bytes (`data.toString()`), validated. Not awaited. */
  onMessage(session: Session<Data>, data: Buffer, isBinary: boolean): MaybePromise<void>;
  /** The connection is closed (TCP included). Runs exactly once per opened session. */
  onClose?(session: Session<Data>, code: number, reason: string): MaybePromise<void>;
  /** The outbound queue drained after a send returned 'queued' or 'dropped'. */
  onDrain?(session: Session<Data>): MaybePromise<void>;
  /** The host is stopping or replacing this plugin; awaited, up to the shutdown deadline. */
  onShutdown?(): MaybePromise<void>;
  /**
   * The host starts serving the plugin (at createHost, or when a reload installs it), with the host's
   * handle for work without a session (a publish from a timer or an external feed). Not awaited.
   */
  onStart?(host: PluginHost): MaybePromise<void>;
  /**
   * The backplane between hosts was interrupted: messages published on `topic` by other hosts may have
   * been lost (docs/pubsub.md). Called once per topic with local subscribers, when delivery resumed,
   * so the service can resync its subscribers. Not awaited.
   */
  onBackplaneGap?(topic: string): MaybePromise<void>;
}

/** What a plugin factory receives besides its options. */
export interface PluginContext {
  /** The route path the plugin is created for. */
  readonly path: string;
  /** The host's logger, for the plugin's own log lines. */
  readonly log: {
    debug(obj: object, msg?: string): void;
    info(obj: object, msg?: string): void;
    warn(obj: object, msg?: string): void;
    error(obj: object, msg?: string): void;
  };
}

/**
 * A plugin module that takes options: the route's `options` from the configuration and a context,
 * giving a plugin (per route, so routes sharing a module do not share state). It may validate the
 * options and throw: the host then refuses to start, naming the file and the message.
 */
export type PluginFactory<Options = unknown, Data = unknown> = (
  options: Options,
  context: PluginContext,
) => Plugin<Data> | Promise<Plugin<Data>>;

/** Declares a plugin factory: `Options` types the route's `options` (see {@link PluginFactory}). */
export function definePluginFactory<Options, Data = undefined>(factory: PluginFactory<Options, Data>): PluginFactory<Options, Data> {
  return factory;
}

/**
 * Declares a plugin. An identity function that gives the object its types: `Data` is the type of
 * `session.data`.
 */
export function definePlugin<Data = undefined>(plugin: Plugin<Data>): Plugin<Data> {
  return plugin;
}
