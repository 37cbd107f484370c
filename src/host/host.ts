import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERRORS, type ErrorCode, WsmodError } from '../errors.ts';
import { type Logger, createLogger } from '../log.ts';
import type { Plugin } from '../plugin/api.ts';
import { PluginRuntime, type SessionInfo, type UpgradeInfo, type Verdict, isThenable } from '../plugin/runtime.ts';
import {
  type HandshakeRefusal,
  acceptResponse,
  listHeader,
  refusal,
  refusalResponse,
  selectProtocol,
  validateHandshake,
} from '../protocol/handshake.ts';
import { type HostLimits, type HostOptions, type Route, type RouteOptions, DEFAULTS, resolveLimits, resolveRoute } from './options.ts';
import { checkOrigin } from './origin.ts';
import { parseExtensions } from '../protocol/extensions.ts';
import { DeflateCodec, type DeflateParams, ZlibPool, negotiateDeflate } from '../protocol/permessage-deflate.ts';
import { Broker } from '../pubsub/broker.ts';
import { HostSession, type HostStats } from './session.ts';

/** Options of {@link Host.close}. */
export interface CloseOptions {
  /** Time the sessions get to finish their closing handshakes before they are destroyed. Default 10 s. */
  readonly deadline?: number;
}

/** TLS material for a wss:// listener (PEM contents, not paths). */
export interface TlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly ca?: string | Buffer;
  readonly passphrase?: string;
}

/** Where a standalone host listens. */
export interface ListenInfo {
  readonly host: string;
  readonly port: number;
}

/** The socket of an upgrade request: a net.Socket or tls.TLSSocket, typed as Node types the event. */
type UpgradeSocket = Duplex & {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly encrypted?: boolean | undefined;
};

/** A negotiated permessage-deflate: its parameters and the response header value. */
interface Negotiated {
  readonly params: DeflateParams;
  readonly response: string;
}

/** How long a refused socket may linger, so the peer can read the response, before it is destroyed. */
const REFUSAL_LINGER_MS = 1000;

/**
 * The WebSocket host: routes (path → plugin + directives), origin policy, connection limits, the
 * upgrade itself, the registry of sessions and graceful shutdown. It works on `(req, socket, head)`
 * from any Node HTTP/1.1 server, so it mounts anywhere; {@link listen} runs it standalone.
 */
export class Host {
  #routes = new Map<string, Route>();
  /** Open sessions per plugin, and plugins replaced by a reload that still serve old sessions. */
  readonly #pluginSessions = new Map<Plugin<unknown>, number>();
  /** The runtime that calls each plugin's hooks (one per plugin, for as long as it serves). */
  readonly #runtimes = new Map<Plugin<unknown>, PluginRuntime>();
  readonly #retired = new Set<Plugin<unknown>>();
  readonly #limits: HostLimits;
  readonly #log: Logger;
  readonly #sessions = new Set<HostSession>();
  readonly #perIp = new Map<string, number>();
  #pendingHandshakes = 0;
  #closing: Promise<void> | undefined;
  #allEnded: (() => void) | undefined;
  readonly #servers: Server[] = [];
  readonly #owned = new Set<Server>();
  /** Each owned server's close, once asked for: net.Server#close(cb) asked twice may never call back. */
  readonly #serverClosed = new Map<Server, Promise<void>>();
  /** zlib jobs cap and idle streams shared by this host's compressed sessions; its counters are read-only. */
  readonly zlibPool = new ZlibPool();
  /** Drops and backpressure closes over all sessions, ever (no message is lost without being counted). */
  readonly stats: Readonly<HostStats> = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, messagesDropped: 0, closedForBackpressure: 0 };
  /** Topics of this host: every session's subscriptions and publishes, and the backplane if any. */
  readonly broker: Broker;

  constructor(options: HostOptions) {
    if (typeof options !== 'object' || options === null || !Array.isArray(options.routes)) {
      throw new WsmodError('WSMOD_ERR_INVALID_OPTION', 'createHost needs { routes: [...] }');
    }
    this.#routes = resolveRoutes(options.routes);
    this.#limits = resolveLimits(options);
    this.#log = options.logger ?? createLogger();
    this.broker = new Broker({
      backplane: options.backplane,
      // Every plugin may have sessions on the topic: each hears of the gap (onBackplaneGap).
      onGap: (topic) => {
        for (const runtime of this.#runtimes.values()) runtime.gap(topic);
      },
      log: this.#log,
    });
    for (const route of this.#routes.values()) this.#runtime(route.plugin);
  }

  /** The runtime of a plugin, made on first use. */
  #runtime(plugin: Plugin<unknown>): PluginRuntime {
    let runtime = this.#runtimes.get(plugin);
    if (runtime === undefined) {
      runtime = new PluginRuntime(plugin, this.#log);
      this.#runtimes.set(plugin, runtime);
      runtime.start({ publish: (topic, data, binary) => this.broker.publish(topic, data, binary) });
    }
    return runtime;
  }

  /** Open sessions. */
  get connections(): number {
    return this.#sessions.size;
  }

  /** The resolved routes, by path. */
  get routes(): ReadonlyMap<string, Route> {
    return this.#routes;
  }

  /**
   * Replaces every route at once (graceful reload): new upgrades get the new routes and plugins,
   * open sessions finish on the ones they started with. A plugin no longer used by any route gets
   * onShutdown once its last session has ended. Throws, changing nothing, when a route is invalid.
   */
  replaceRoutes(routes: readonly RouteOptions[]): void {
    const next = resolveRoutes(routes);
    const kept = new Set([...next.values()].map((r) => r.plugin));
    const previous = [...this.#routes.values()].map((r) => r.plugin);
    this.#routes = next;
    for (const route of next.values()) this.#runtime(route.plugin);
    for (const plugin of previous) {
      if (kept.has(plugin) || this.#retired.has(plugin)) continue;
      this.#retired.add(plugin);
      if ((this.#pluginSessions.get(plugin) ?? 0) === 0) void this.#retire(plugin);
    }
  }

  /** Runs a replaced plugin's onShutdown once its last session is gone. */
  async #retire(plugin: Plugin<unknown>): Promise<void> {
    this.#retired.delete(plugin);
    await this.#shutdownPlugin(plugin, this.#limits.shutdownDeadline);
  }

  /** A plugin's onShutdown through its runtime, awaited at most `timeout` ms. */
  async #shutdownPlugin(plugin: Plugin<unknown>, timeout: number): Promise<void> {
    const runtime = this.#runtimes.get(plugin);
    if (runtime === undefined) return;
    this.#runtimes.delete(plugin);
    await runtime.shutdown(timeout);
  }

  /**
   * Handles an HTTP upgrade request (`server.on('upgrade', host.handleUpgrade)`): validates it, applies
   * the route's origin policy and the limits, asks the plugin, and answers 101 or a refusal.
   */
  readonly handleUpgrade = (req: IncomingMessage, socket: UpgradeSocket, head: Buffer): void => {
    // Nothing is read until the session starts; errors during the handshake must not crash the process.
    socket.pause();
    socket.on('error', onHandshakeSocketError);
    const checked = this.#precheck(req, socket);
    if (!checked.ok) {
      refuse(socket, checked);
      return;
    }
    this.#runHandshake(req, socket, head, checked.route, checked.protocols, checked.deflate);
  };

  /**
   * Answers a plain HTTP request: 426 Upgrade Required on a WebSocket route (returns true), nothing on
   * other paths (returns false, so the caller's app can serve them).
   */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (!this.#routes.has(pathOf(req))) return false;
    // An attempted WebSocket handshake that Node did not treat as an upgrade (no "Connection: upgrade"):
    // answer what is wrong with it (400) rather than 426.
    if (listHeader(req.headers, 'upgrade').some((p) => p.toLowerCase() === 'websocket')) {
      const verdict = validateHandshake({ method: req.method ?? '', httpVersion: req.httpVersion, headers: req.headers, rawHeaders: req.rawHeaders });
      if (!verdict.ok) {
        sendRefusal(res, verdict);
        return true;
      }
    }
    const r = refusal('WSMOD_ERR_UPGRADE_REQUIRED', undefined, {
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Version': '13',
    });
    sendRefusal(res, r);
    return true;
  };

  /** Serves WebSocket upgrades on an existing http or https server. */
  attach(server: Server | HttpsServer): this {
    server.on('upgrade', this.handleUpgrade);
    this.#servers.push(server as Server);
    return this;
  }

  /**
   * Runs standalone: an HTTP server on `host:port` (port 0 picks a free one) that upgrades on the
   * routes, answers 426 to plain requests on them and 404 elsewhere.
   */
  async listen(port: number, host = '127.0.0.1', options: { readonly tls?: TlsOptions } = {}): Promise<ListenInfo> {
    const t = this.#limits.handshakeTimeout;
    const serverOptions = {
      // Slow or incomplete request heads are dropped (DESIGN.md: handshakeTimeout).
      headersTimeout: t > 0 ? t : 0,
      requestTimeout: t > 0 ? t : 0,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, t > 0 ? t / 2 : 1000)),
    };
    const server: Server = options.tls === undefined ? createServer(serverOptions) : createHttpsServer({ ...serverOptions, ...options.tls });
    // Requests Node's parser refuses: our one-line reasons and codes (431 for oversized headers).
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      refuse(socket, refusal(clientErrorCode(err.code)));
    });
    server.on('request', (req, res) => {
      if (this.handleRequest(req, res)) return;
      sendRefusal(res, refusal('WSMOD_ERR_NOT_FOUND'));
    });
    this.attach(server);
    this.#owned.add(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    return { host: addr.address, port: addr.port };
  }

  /**
   * Stops accepting connections on the servers {@link listen} opened, and nothing else: open sessions
   * and handshakes in progress go on, and {@link close} still ends them. For a worker replaced in a
   * rolling reload (docs/workers.md): its successor already listens, so no connection is refused.
   */
  stopAccepting(): void {
    for (const server of this.#owned) void this.#closeServer(server);
  }

  #closeServer(server: Server): Promise<void> {
    let closed = this.#serverClosed.get(server);
    if (closed === undefined) {
      closed = new Promise<void>((resolve) => server.close(() => resolve()));
      this.#serverClosed.set(server, closed);
    }
    return closed;
  }

  /**
   * Graceful shutdown: refuses new upgrades (503), closes every session with 1001 and waits for the
   * closing handshakes, destroys whatever is left at the deadline, then runs each plugin's onShutdown
   * and closes the servers this host listens on. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options.deadline ?? this.#limits.shutdownDeadline);
    return this.#closing;
  }

  async #shutdown(deadline: number): Promise<void> {
    const started = performance.now();
    const serversClosed = [...this.#owned].map((server) => {
      const closed = this.#closeServer(server);
      server.closeIdleConnections();
      return closed;
    });
    if (this.#sessions.size > 0) {
      const ended = new Promise<void>((resolve) => (this.#allEnded = resolve));
      const goingAway = new WsmodError('WSMOD_ERR_SHUTDOWN');
      for (const session of this.#sessions) session.close(goingAway.closeCode, 'server shutting down');
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline)));
      await Promise.race([ended, expired]);
      clearTimeout(timer);
      if (this.#sessions.size > 0) {
        this.#log.warn({ sessions: this.#sessions.size }, 'shutdown deadline reached: destroying the remaining connections');
        for (const session of this.#sessions) session.terminate();
        await ended;
      }
    }
    // Each plugin's onShutdown (current ones and replaced ones), together, for what is left of the deadline.
    const plugins = new Set([...[...this.#routes.values()].map((r) => r.plugin), ...this.#retired]);
    this.#retired.clear();
    const remaining = Math.max(0, deadline - (performance.now() - started));
    await Promise.all([...plugins].map((plugin) => this.#shutdownPlugin(plugin, remaining)));
    for (const server of this.#servers) server.off('upgrade', this.handleUpgrade);
    for (const server of this.#owned) server.closeAllConnections();
    this.broker.detach();
    await Promise.all([...serversClosed, this.broker.backplane?.close()]);
  }

  /** Checks that need no plugin: state, route, RFC 6455 §4.2.1, origin, limits. */
  #precheck(
    req: IncomingMessage,
    socket: UpgradeSocket,
  ): HandshakeRefusal | { readonly ok: true; readonly route: Route; readonly protocols: readonly string[]; readonly deflate: Negotiated | undefined } {
    if (this.#closing !== undefined) return refusal('WSMOD_ERR_SHUTTING_DOWN');
    const route = this.#routes.get(pathOf(req));
    if (route === undefined) return refusal('WSMOD_ERR_NOT_FOUND', pathOf(req));
    const verdict = validateHandshake({ method: req.method ?? '', httpVersion: req.httpVersion, headers: req.headers, rawHeaders: req.rawHeaders });
    if (!verdict.ok) return verdict;
    const origin = headerValue(req, 'origin');
    const scheme = socket.encrypted === true ? 'https' : 'http';
    const bad = checkOrigin(route.origin, route.requireOrigin, origin, scheme, headerValue(req, 'host') ?? '');
    if (bad !== undefined) return refusal(bad, origin);
    if (this.#sessions.size + this.#pendingHandshakes >= this.#limits.maxConnections) {
      return refusal('WSMOD_ERR_MAX_CONNECTIONS');
    }
    const ip = socket.remoteAddress ?? '';
    if ((this.#perIp.get(ip) ?? 0) >= this.#limits.maxConnectionsPerIp) return refusal('WSMOD_ERR_MAX_CONNECTIONS_PER_IP');
    // RFC 7692: only routes with compression on read the extension offers; others ignore the header.
    let deflate: Negotiated | undefined;
    if (route.compression !== undefined) {
      const offers = parseExtensions(req.headers['sec-websocket-extensions']);
      if (offers === null) return refusal('WSMOD_ERR_EXTENSIONS_HEADER');
      deflate = negotiateDeflate(offers, route.compression);
    }
    return { ok: true, route, protocols: verdict.protocols, deflate };
  }

  #runHandshake(
    req: IncomingMessage,
    socket: UpgradeSocket,
    head: Buffer,
    route: Route,
    offered: readonly string[],
    deflate: Negotiated | undefined,
  ): void {
    const ip = socket.remoteAddress ?? '';
    this.#pendingHandshakes++;
    this.#countIp(ip, 1);
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const release = (): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      socket.off('close', onGone);
      this.#pendingHandshakes--;
    };
    const onGone = (): void => {
      release();
      this.#countIp(ip, -1);
    };
    socket.on('close', onGone);
    if (this.#limits.handshakeTimeout > 0) {
      timer = setTimeout(() => {
        onGone();
        refuse(socket, refusal('WSMOD_ERR_HANDSHAKE_TIMEOUT'));
      }, this.#limits.handshakeTimeout);
    }

    const [path, query] = splitTarget(req);
    const info: UpgradeInfo = {
      path,
      query,
      headers: req.headers,
      origin: headerValue(req, 'origin'),
      remoteAddress: ip,
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      secure: socket.encrypted === true,
      protocols: offered,
      selectedProtocol: selectProtocol(route.protocols, offered),
    };
    const finish = (verdict: Verdict): void => {
      if (settled) return;
      release();
      if (!verdict.accept) {
        this.#countIp(ip, -1);
        refuse(socket, { ...refusal('WSMOD_ERR_UPGRADE_REJECTED'), status: verdict.status, reason: verdict.reason });
        return;
      }
      if (this.#closing !== undefined) {
        this.#countIp(ip, -1);
        refuse(socket, refusal('WSMOD_ERR_SHUTTING_DOWN'));
        return;
      }
      this.#accept(req, socket, head, route, info, verdict, ip, deflate);
    };
    const verdict = this.#runtime(route.plugin).upgrade(info);
    if (isThenable(verdict)) void verdict.then(finish);
    else finish(verdict);
  }

  #accept(
    req: IncomingMessage,
    socket: UpgradeSocket,
    head: Buffer,
    route: Route,
    request: UpgradeInfo,
    verdict: Verdict & { readonly accept: true },
    ip: string,
    deflate: Negotiated | undefined,
  ): void {
    const protocol = verdict.protocol ?? request.selectedProtocol;
    let response: string;
    try {
      if (protocol !== undefined && !request.protocols.includes(protocol)) {
        throw new WsmodError('WSMOD_ERR_PROTOCOL_NOT_OFFERED', protocol);
      }
      const headers = deflate === undefined ? verdict.headers : { ...verdict.headers, 'Sec-WebSocket-Extensions': deflate.response };
      response = acceptResponse(headerValue(req, 'sec-websocket-key')!.trim(), protocol, headers);
    } catch (err) {
      this.#countIp(ip, -1);
      const code: ErrorCode = err instanceof WsmodError ? err.code : 'WSMOD_ERR_UPGRADE_FAILED';
      this.#log.error({ plugin: route.plugin.name, hook: 'onUpgrade', err }, 'invalid accept from plugin');
      refuse(socket, refusal(code));
      return;
    }
    if (socket.destroyed) {
      this.#countIp(ip, -1);
      return;
    }
    socket.off('error', onHandshakeSocketError);
    socket.write(response);
    const info: SessionInfo = {
      id: randomUUID(),
      path: request.path,
      query: request.query,
      headers: request.headers,
      remoteAddress: ip,
      remotePort: request.remotePort,
      localAddress: request.localAddress,
      localPort: request.localPort,
      secure: request.secure,
      protocol,
      extensions: deflate?.response ?? '',
    };
    const codec = deflate === undefined ? undefined : new DeflateCodec(deflate.params, 'server', route.compression, this.zlibPool);
    this.#pluginSessions.set(route.plugin, (this.#pluginSessions.get(route.plugin) ?? 0) + 1);
    const session = new HostSession(info, verdict.data, codec, route, this.#runtime(route.plugin), socket, head, this.#log, this.stats as HostStats, this.broker, (s) =>
      this.#ended(s, ip, route.plugin),
    );
    this.#sessions.add(session);
  }

  #ended(session: HostSession, ip: string, plugin: Plugin<unknown>): void {
    if (!this.#sessions.delete(session)) return;
    this.#countIp(ip, -1);
    const left = (this.#pluginSessions.get(plugin) ?? 1) - 1;
    if (left > 0) this.#pluginSessions.set(plugin, left);
    else {
      this.#pluginSessions.delete(plugin);
      if (this.#retired.has(plugin)) void this.#retire(plugin);
    }
    if (this.#sessions.size === 0) this.#allEnded?.();
  }

  #countIp(ip: string, delta: number): void {
    const n = (this.#perIp.get(ip) ?? 0) + delta;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
  }
}

/** Resolves routes and refuses duplicate paths. */
function resolveRoutes(routes: readonly RouteOptions[]): Map<string, Route> {
  const map = new Map<string, Route>();
  routes.forEach((r, i) => {
    const route = resolveRoute(r, i);
    if (map.has(route.path)) throw new WsmodError('WSMOD_ERR_DUPLICATE_ROUTE', route.path);
    map.set(route.path, route);
  });
  return map;
}

/** Creates a {@link Host}. Throws WSMOD_ERR_* for invalid routes or plugins. */
export function createHost(options: HostOptions): Host {
  return new Host(options);
}

/** What a request Node's HTTP parser refused gets: 431 for oversized headers, 408 for a too slow head, else 400. */
function clientErrorCode(code: string | undefined): ErrorCode {
  if (code === 'HPE_HEADER_OVERFLOW') return 'WSMOD_ERR_HEADERS_TOO_LARGE';
  // headersTimeout / requestTimeout expired (handshakeTimeout): RFC 9110 §15.5.9.
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') return 'WSMOD_ERR_HANDSHAKE_TIMEOUT';
  return 'WSMOD_ERR_BAD_REQUEST';
}

function onHandshakeSocketError(): void {
  // A peer that resets during the handshake: the 'close' that follows cleans up.
}

/** The request path without the query; origin-form or absolute-form request targets. */
function pathOf(req: IncomingMessage): string {
  return splitTarget(req)[0];
}

/** The request target's path and raw query (without "?"), as sent; absolute-form targets too. */
function splitTarget(req: IncomingMessage): [path: string, query: string] {
  let target = req.url ?? '/';
  if (!target.startsWith('/')) {
    try {
      const url = new URL(target);
      target = url.pathname + url.search;
    } catch {
      return [target, ''];
    }
  }
  const q = target.indexOf('?');
  return q === -1 ? [target, ''] : [target.slice(0, q), target.slice(q + 1)];
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Answers a plain HTTP request with a refusal: its status, headers and one-line reason. */
function sendRefusal(res: ServerResponse, r: HandshakeRefusal): void {
  const body = `${r.reason}\n`;
  res.writeHead(r.status, {
    ...r.headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Writes a refusal and closes the socket once the peer had a moment to read it. */
function refuse(socket: Duplex, r: HandshakeRefusal): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(refusalResponse(r.status, r.reason, r.headers));
  const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
