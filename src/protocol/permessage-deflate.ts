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
 * zlib state at all (compression contexts are borrowed from a process-wide pool per message).
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

/** Process-wide cap on zlib jobs in flight, so thousands of connections cannot exhaust memory at once. */
export const ZLIB_CONCURRENCY = 16;
let running = 0;
const waiting: Array<() => void> = [];

async function withZlibSlot<T>(job: () => Promise<T>): Promise<T> {
  if (running >= ZLIB_CONCURRENCY) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await job();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Idle zlib streams for no-context-takeover use, by settings; bounded so the pool itself stays small. */
const POOL_LIMIT = 8;
const deflatePool = new Map<string, DeflateRaw[]>();
const inflatePool: InflateRaw[] = [];

/**
 * zlib cannot compress with a true 8-bit window (its raw deflate silently uses 9). For an 8-bit window
 * wsmod compresses with the run-length strategy, whose matches all have distance 1: valid for any
 * window, so what was negotiated is honoured exactly.
 */
function deflateSettings(bits: number, config: DeflateConfig): { windowBits: number; level: number; memLevel: number; strategy: number } {
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
 * context takeover keeps its own zlib stream (created on first use); one without borrows a pooled
 * stream per message and returns it reset, so idle connections hold no zlib memory.
 */
export class DeflateCodec {
  readonly #config: DeflateConfig;
  readonly #sendBits: number;
  readonly #sendTakeover: boolean;
  readonly #receiveTakeover: boolean;
  #deflate: DeflateRaw | undefined;
  #inflate: InflateRaw | undefined;
  #closed = false;

  constructor(params: DeflateParams, role: 'server' | 'client', config: DeflateConfig = DEFAULT_DEFLATE) {
    this.#config = config;
    const server = role === 'server';
    this.#sendBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    this.#sendTakeover = !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover);
    this.#receiveTakeover = !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover);
  }

  /** Messages below this size go uncompressed. */
  get threshold(): number {
    return this.#config.threshold;
  }

  /** The compressed payload of a message (tail removed). */
  compress(data: Buffer): Promise<Buffer> {
    return withZlibSlot(async () => {
      const settings = deflateSettings(this.#sendBits, this.#config);
      const key = `${settings.windowBits}/${settings.level}/${settings.memLevel}/${settings.strategy}`;
      let stream: DeflateRaw;
      if (this.#sendTakeover) stream = this.#deflate ??= createDeflateRaw(settings);
      else stream = deflatePool.get(key)?.pop() ?? createDeflateRaw(settings);
      try {
        const out = await runFlush(stream, [data], Number.MAX_SAFE_INTEGER);
        return out.length >= 4 && out.subarray(out.length - 4).equals(TAIL) ? out.subarray(0, out.length - 4) : out;
      } finally {
        if (!this.#sendTakeover) {
          stream.reset();
          const pool = deflatePool.get(key) ?? [];
          if (pool.length < POOL_LIMIT) pool.push(stream);
          else stream.close();
          deflatePool.set(key, pool);
        }
      }
    });
  }

  /**
   * The payload of a compressed message, refused with WSMOD_ERR_MESSAGE_TOO_BIG (1009) as soon as the
   * inflated size passes `limit` (a deflate bomb stops at the limit), WSMOD_ERR_INFLATE (1007) when the
   * data is not valid DEFLATE.
   */
  decompress(data: Buffer, limit: number): Promise<Buffer> {
    return withZlibSlot(async () => {
      let stream: InflateRaw;
      if (this.#receiveTakeover) stream = this.#inflate ??= createInflateRaw({ windowBits: 15 });
      else stream = inflatePool.pop() ?? createInflateRaw({ windowBits: 15 });
      let healthy = true;
      try {
        return await runFlush(stream, [data, TAIL], limit);
      } catch (err) {
        healthy = false;
        throw err;
      } finally {
        if (ended.has(stream) || stream.destroyed) healthy = false;
        if (!this.#receiveTakeover) {
          if (healthy && inflatePool.length < POOL_LIMIT) {
            stream.reset();
            inflatePool.push(stream);
          } else stream.close();
        } else if (!healthy) {
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
