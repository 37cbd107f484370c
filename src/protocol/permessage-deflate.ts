import { type DeflateRaw, type InflateRaw, constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { WsmodError } from '../errors.ts';
import { type ExtensionOffer, formatExtension } from './extensions.ts';

/** RFC 7692 §7: the extension's name. */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** The negotiated parameters of one connection (RFC 7692 §7.1). */
export interface DeflateParams {
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  /** LZ77 window the server compresses with (8-15). */
  readonly serverMaxWindowBits: number;
  /** LZ77 window the client compresses with (8-15). */
  readonly clientMaxWindowBits: number;
}

/** A route's (or client's) compression settings. */
export interface DeflateConfig {
  /** Messages smaller than this are sent uncompressed (bytes). */
  readonly threshold: number;
  /** Ask for (server) / use (client) a fresh compression context for every message. */
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  /** Largest window the server compresses with (8-15). */
  readonly serverMaxWindowBits: number;
  /** Window the server asks the client to stay within, when the client offers to be limited (8-15). */
  readonly clientMaxWindowBits: number;
  /** zlib compression level (0-9, or -1 for zlib's default). */
  readonly level: number;
  /** zlib memLevel (1-9). */
  readonly memLevel: number;
}

/**
 * Defaults chosen for memory: no context takeover in either direction, so an idle connection holds no
 * zlib state at all (compression contexts are borrowed from the host's {@link ZlibPool} per message).
 */
export const DEFAULT_DEFLATE: DeflateConfig = {
  threshold: 1024,
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  level: -1,
  memLevel: 8,
};

type Params = Map<string, string | true>;

/** The offer's parameters, or null when one is unknown, repeated or has an invalid value (RFC 7692 §7). */
function offerParams(offer: ExtensionOffer): Params | null {
  const params: Params = new Map();
  for (const [key, value] of offer.params) {
    if (params.has(key)) return null;
    switch (key) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (value !== true) return null;
        break;
      case 'server_max_window_bits':
        if (value === true || !isWindowBits(value)) return null;
        break;
      case 'client_max_window_bits':
        if (value !== true && !isWindowBits(value)) return null;
        break;
      default:
        return null;
    }
    params.set(key, value);
  }
  return params;
}

function isWindowBits(value: string): boolean {
  return /^(?:8|9|1[0-5])$/.test(value);
}

/**
 * Server side (RFC 7692 §5, §7.1): the first acceptable permessage-deflate offer, answered consistently
 * with the route's configuration. Never answers a parameter the client did not allow:
 * client_max_window_bits only when offered; server_max_window_bits never above the client's value.
 */
export function negotiateDeflate(
  offers: readonly ExtensionOffer[],
  config: DeflateConfig,
): { readonly params: DeflateParams; readonly response: string } | undefined {
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const p = offerParams(offer);
    if (p === null) continue;
    const response: Array<readonly [string, string | true]> = [];
    const serverNoContextTakeover = p.has('server_no_context_takeover') || config.serverNoContextTakeover;
    if (serverNoContextTakeover) response.push(['server_no_context_takeover', true]);
    const clientNoContextTakeover = config.clientNoContextTakeover;
    if (clientNoContextTakeover) response.push(['client_no_context_takeover', true]);
    const requestedServerBits = p.get('server_max_window_bits');
    let serverMaxWindowBits = config.serverMaxWindowBits;
    if (typeof requestedServerBits === 'string') serverMaxWindowBits = Math.min(serverMaxWindowBits, Number(requestedServerBits));
    if (serverMaxWindowBits < 15 || typeof requestedServerBits === 'string') {
      response.push(['server_max_window_bits', String(serverMaxWindowBits)]);
    }
    let clientMaxWindowBits = 15;
    const offeredClientBits = p.get('client_max_window_bits');
    if (offeredClientBits !== undefined) {
      clientMaxWindowBits = Math.min(offeredClientBits === true ? 15 : Number(offeredClientBits), config.clientMaxWindowBits);
      if (clientMaxWindowBits < 15 || offeredClientBits !== true) response.push(['client_max_window_bits', String(clientMaxWindowBits)]);
    }
    return {
      params: { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits },
      response: formatExtension(PERMESSAGE_DEFLATE, response),
    };
  }
  return undefined;
}

/** Client side: the offer to send, from the client's wishes. */
export function deflateOffer(options: {
  readonly serverNoContextTakeover?: boolean;
  readonly clientNoContextTakeover?: boolean;
  readonly serverMaxWindowBits?: number;
  /** true: offer client_max_window_bits without a value (we accept any limit); a number: with it. */
  readonly clientMaxWindowBits?: number | boolean;
}): string {
  const params: Array<readonly [string, string | true]> = [];
  if (options.serverNoContextTakeover === true) params.push(['server_no_context_takeover', true]);
  if (options.clientNoContextTakeover === true) params.push(['client_no_context_takeover', true]);
  if (options.serverMaxWindowBits !== undefined) params.push(['server_max_window_bits', String(options.serverMaxWindowBits)]);
  if (options.clientMaxWindowBits === true) params.push(['client_max_window_bits', true]);
  else if (typeof options.clientMaxWindowBits === 'number') params.push(['client_max_window_bits', String(options.clientMaxWindowBits)]);
  return formatExtension(PERMESSAGE_DEFLATE, params);
}

/**
 * Client side: checks the server's response against what was offered (RFC 7692 §7.1) and returns the
 * parameters, or a reason to fail the connection.
 */
export function acceptDeflateResponse(response: ExtensionOffer, offered: ExtensionOffer): DeflateParams | string {
  if (response.name !== PERMESSAGE_DEFLATE) return `unexpected extension ${response.name}`;
  const p = offerParams(response);
  if (p === null) return 'invalid permessage-deflate parameters in the response';
  const o = offerParams(offered) ?? new Map<string, string | true>();
  const serverBits = p.get('server_max_window_bits');
  const offeredServerBits = o.get('server_max_window_bits');
  if (typeof offeredServerBits === 'string' && typeof serverBits === 'string' && Number(serverBits) > Number(offeredServerBits)) {
    return 'server_max_window_bits above the offered value';
  }
  if (typeof offeredServerBits === 'string' && serverBits === undefined) return 'server_max_window_bits missing from the response';
  if (o.has('server_no_context_takeover') && !p.has('server_no_context_takeover')) return 'server_no_context_takeover missing from the response';
  const clientBits = p.get('client_max_window_bits');
  if (clientBits !== undefined) {
    if (!o.has('client_max_window_bits')) return 'client_max_window_bits was not offered';
    if (clientBits === true) return 'client_max_window_bits needs a value in a response';
    const offeredClientBits = o.get('client_max_window_bits');
    if (typeof offeredClientBits === 'string' && Number(clientBits) > Number(offeredClientBits)) return 'client_max_window_bits above the offered value';
  }
  const offeredClient = o.get('client_max_window_bits');
  return {
    serverNoContextTakeover: p.has('server_no_context_takeover'),
    clientNoContextTakeover: p.has('client_no_context_takeover') || o.has('client_no_context_takeover'),
    serverMaxWindowBits: typeof serverBits === 'string' ? Number(serverBits) : 15,
    clientMaxWindowBits: typeof clientBits === 'string' ? Number(clientBits) : typeof offeredClient === 'string' ? Number(offeredClient) : 15,
  };
}

// ---------------------------------------------------------------------------------------------------
// The codec

/** RFC 7692 §7.2.1: the tail a sync flush ends with, removed after compressing, restored before inflating. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Default cap on zlib jobs in flight per {@link ZlibPool}. */
export const ZLIB_CONCURRENCY = 16;

/** Default number of idle zlib streams a {@link ZlibPool} keeps per set of settings. */
const POOL_LIMIT = 8;

/** Options of a {@link ZlibPool}. */
export interface ZlibPoolOptions {
  /** zlib jobs (compressing or inflating one message) allowed to run at once; others wait in FIFO order. */
  readonly maxJobs?: number;
  /** Idle streams kept for reuse per set of settings (deflate) and for inflating. */
  readonly maxIdle?: number;
}

/**
 * The zlib resources shared by many connections: a cap on jobs in flight, so thousands of connections
 * cannot exhaust memory at once, and idle streams for no-context-takeover use, so an idle connection
 * holds no zlib memory. A host owns one; every {@link DeflateCodec} it creates borrows from it. Its
 * counters are read-only views for tests and metrics.
 */
export class ZlibPool {
  /** The cap on jobs in flight. */
  readonly maxJobs: number;
  readonly #maxIdle: number;
  #running = 0;
  #peak = 0;
  #completed = 0;
  readonly #waiting: Array<() => void> = [];
  readonly #deflate = new Map<string, DeflateRaw[]>();
  readonly #inflate: InflateRaw[] = [];

  constructor(options: ZlibPoolOptions = {}) {
    this.maxJobs = options.maxJobs ?? ZLIB_CONCURRENCY;
    this.#maxIdle = options.maxIdle ?? POOL_LIMIT;
    if (!Number.isInteger(this.maxJobs) || this.maxJobs < 1) throw new RangeError(`maxJobs must be a positive integer, got ${this.maxJobs}`);
    if (!Number.isInteger(this.#maxIdle) || this.#maxIdle < 0) throw new RangeError(`maxIdle must be a non-negative integer, got ${this.#maxIdle}`);
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** The most jobs that ran at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Jobs finished, successfully or not. */
  get completed(): number {
    return this.#completed;
  }

  /** Idle streams held for reuse. */
  get idle(): number {
    let n = this.#inflate.length;
    for (const streams of this.#deflate.values()) n += streams.length;
    return n;
  }

  /** Runs `job` once a slot is free, and frees the slot when it settles. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    // A finishing job hands its slot straight to the next waiter, so a job arriving in between cannot
    // take it too and pass the cap.
    if (this.#running >= this.maxJobs) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    if (this.#running > this.#peak) this.#peak = this.#running;
    try {
      return await job();
    } finally {
      this.#completed++;
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#running--;
    }
  }

  /** An idle deflate stream with these settings, or a new one. */
  takeDeflate(settings: DeflateSettings): DeflateRaw {
    return this.#deflate.get(deflateKey(settings))?.pop() ?? createDeflateRaw(settings);
  }

  /** Gives a deflate stream back after a message: reset and kept, or closed when enough are idle. */
  giveDeflate(settings: DeflateSettings, stream: DeflateRaw): void {
    const key = deflateKey(settings);
    stream.reset();
    const idle = this.#deflate.get(key) ?? [];
    if (idle.length < this.#maxIdle) idle.push(stream);
    else stream.close();
    this.#deflate.set(key, idle);
  }

  /** An idle inflate stream, or a new one. */
  takeInflate(): InflateRaw {
    return this.#inflate.pop() ?? createInflateRaw({ windowBits: 15 });
  }

  /** Gives an inflate stream back: kept when it is healthy and there is room, else closed. */
  giveInflate(stream: InflateRaw, healthy: boolean): void {
    if (healthy && this.#inflate.length < this.#maxIdle) {
      stream.reset();
      this.#inflate.push(stream);
    } else stream.close();
  }

  /** Closes every idle stream (jobs in flight are not affected). */
  close(): void {
    for (const streams of this.#deflate.values()) for (const stream of streams) stream.close();
    this.#deflate.clear();
    for (const stream of this.#inflate) stream.close();
    this.#inflate.length = 0;
  }
}

/** The pool of codecs created without one (clients and tools); a host owns its own. */
export const defaultZlibPool = new ZlibPool();

/** How a deflate stream is created; streams with equal settings are interchangeable. */
export interface DeflateSettings {
  readonly windowBits: number;
  readonly level: number;
  readonly memLevel: number;
  readonly strategy: number;
}

function deflateKey(s: DeflateSettings): string {
  return `${s.windowBits}/${s.level}/${s.memLevel}/${s.strategy}`;
}

/**
 * zlib cannot compress with a true 8-bit window (its raw deflate silently uses 9). For an 8-bit window
 * wsmod compresses with the run-length strategy, whose matches all have distance 1: valid for any
 * window, so what was negotiated is honoured exactly.
 */
function deflateSettings(bits: number, config: DeflateConfig): DeflateSettings {
  return {
    windowBits: Math.max(9, bits),
    level: config.level,
    memLevel: config.memLevel,
    strategy: bits === 8 ? constants.Z_RLE : constants.Z_DEFAULT_STRATEGY,
  };
}

/**
 * Streams that reached the end of a DEFLATE stream (a block with BFINAL set, RFC 7692 §7.2.3.4):
 * zlib will not take more input on them, so they are never pooled or reused.
 */
const ended = new WeakSet<DeflateRaw | InflateRaw>();
/** Streams whose end is watched (one listener per stream, however many messages it carries). */
const watched = new WeakSet<DeflateRaw | InflateRaw>();

function runFlush(stream: DeflateRaw | InflateRaw, input: readonly Buffer[], limit: number): Promise<Buffer> {
  if (!watched.has(stream)) {
    watched.add(stream);
    stream.once('end', () => ended.add(stream));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limit) {
        failed = true;
        cleanup();
        reject(new WsmodError('WSMOD_ERR_MESSAGE_TOO_BIG', `inflated beyond ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onError = (err: Error): void => {
      failed = true;
      cleanup();
      reject(new WsmodError('WSMOD_ERR_INFLATE', err.message, { cause: err }));
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('error', onError);
    };
    stream.on('data', onData);
    stream.on('error', onError);
    for (const b of input) stream.write(b);
    stream.flush(constants.Z_SYNC_FLUSH, () => {
      if (failed) return;
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    });
  });
}

/**
 * Compresses and decompresses the messages of one connection (RFC 7692 §7.2). A direction with
 * context takeover keeps its own zlib stream (created on first use); one without borrows a stream
 * from `pool` per message and returns it reset, so idle connections hold no zlib memory. Every job
 * runs within the pool's cap.
 */
export class DeflateCodec {
  readonly #config: DeflateConfig;
  readonly #sendBits: number;
  readonly #sendTakeover: boolean;
  readonly #receiveTakeover: boolean;
  readonly #pool: ZlibPool;
  #deflate: DeflateRaw | undefined;
  #inflate: InflateRaw | undefined;
  #closed = false;

  constructor(params: DeflateParams, role: 'server' | 'client', config: DeflateConfig = DEFAULT_DEFLATE, pool: ZlibPool = defaultZlibPool) {
    this.#config = config;
    this.#pool = pool;
    const server = role === 'server';
    this.#sendBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    this.#sendTakeover = !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover);
    this.#receiveTakeover = !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover);
  }

  /** Messages below this size go uncompressed. */
  get threshold(): number {
    return this.#config.threshold;
  }

  /**
   * Without context takeover in the sending direction (RFC 7692 §7.1.1.1 `server_no_context_takeover`
   * for a server) every message is compressed from a fresh state, so any codec with equal settings
   * produces the same bytes: this key names those settings, and one compressed message may be shared
   * by every connection with the same key (topic fan-out). Undefined with context takeover: the bytes
   * then depend on this connection's history.
   */
  get sharedKey(): string | undefined {
    return this.#sendTakeover ? undefined : deflateKey(deflateSettings(this.#sendBits, this.#config));
  }

  /** The compressed payload of a message (tail removed). */
  compress(data: Buffer): Promise<Buffer> {
    return this.#pool.run(async () => {
      const settings = deflateSettings(this.#sendBits, this.#config);
      let stream: DeflateRaw;
      if (this.#sendTakeover) stream = this.#deflate ??= createDeflateRaw(settings);
      else stream = this.#pool.takeDeflate(settings);
      try {
        const out = await runFlush(stream, [data], Number.MAX_SAFE_INTEGER);
        return out.length >= 4 && out.subarray(out.length - 4).equals(TAIL) ? out.subarray(0, out.length - 4) : out;
      } finally {
        if (!this.#sendTakeover) this.#pool.giveDeflate(settings, stream);
      }
    });
  }

  /**
   * The payload of a compressed message, refused with WSMOD_ERR_MESSAGE_TOO_BIG (1009) as soon as the
   * inflated size passes `limit` (a deflate bomb stops at the limit), WSMOD_ERR_INFLATE (1007) when the
   * data is not valid DEFLATE.
   */
  decompress(data: Buffer, limit: number): Promise<Buffer> {
    return this.#pool.run(async () => {
      let stream: InflateRaw;
      if (this.#receiveTakeover) stream = this.#inflate ??= createInflateRaw({ windowBits: 15 });
      else stream = this.#pool.takeInflate();
      let healthy = true;
      try {
        return await runFlush(stream, [data, TAIL], limit);
      } catch (err) {
        healthy = false;
        throw err;
      } finally {
        if (ended.has(stream) || stream.destroyed) healthy = false;
        if (!this.#receiveTakeover) this.#pool.giveInflate(stream, healthy);
        else if (!healthy) {
          stream.close();
          this.#inflate = undefined;
        }
      }
    });
  }

  /** Releases the connection's own zlib streams. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#deflate?.close();
    this.#inflate?.close();
    this.#deflate = undefined;
    this.#inflate = undefined;
  }
}
