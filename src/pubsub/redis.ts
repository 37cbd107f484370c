/**
 * The Redis backplane: topics between hosts on many machines through Redis pub/sub (node-redis 6).
 *
 * Two connections per host. The publisher sends every PUBLISH of this host, in call order, so
 * per (origin, topic) FIFO holds on every subscriber: one TCP connection, and Redis delivers a
 * channel's messages in the order it executed the PUBLISHes. The subscriber holds one SUBSCRIBE per
 * topic in use (never a pattern), so a host only receives the topics it has subscribers for.
 *
 * At-most-once, never blocking: a publish waits in a bounded queue (count and bytes) until Redis
 * answers it; over the bound, or while the publisher is disconnected, it is dropped and counted.
 * node-redis reconnects with our backoff and resubscribes every channel it holds; when the
 * subscriber connection comes back after a loss (Redis restarted, `CLIENT KILL`, the server's
 * `client-output-buffer-limit pubsub` dropping a slow subscriber), the gap is counted and `onGap`
 * names every topic in use so the service can resync.
 *
 * `redis` is imported by `createRedisBackplane`, not at module load: a host without a backplane
 * never pays for node-redis's module graph.
 */
import { randomUUID } from 'node:crypto';
import type { createClient } from 'redis';
import type { Logger } from '../log.ts';
import type { Backplane, BackplaneStats, TopicMessage } from './backplane.ts';

type RedisClient = ReturnType<typeof createClient>;

/** Options of {@link createRedisBackplane}. */
export interface RedisBackplaneOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
  readonly url: string;
  /** Prepended to every topic to form its Redis channel, so several services can share one Redis. Default `wsmod:`. */
  readonly prefix?: string;
  /** This host instance's id (the origin of its publishes). Default: a random UUID. */
  readonly id?: string;
  /** Publishes waiting for Redis's reply, at most. Default 10,000. */
  readonly maxQueue?: number;
  /** Payload bytes waiting for Redis's reply, at most. Default 16 MiB. */
  readonly maxQueueBytes?: number;
  /** Reconnect backoff in ms: `min` doubled per failed attempt up to `max`, plus up to 20 % jitter. Default 100 and 5,000. */
  readonly reconnectDelay?: { readonly min?: number; readonly max?: number };
  /** Connection failures (warn, once per outage), recoveries (info) and faults of `onMessage` (error). */
  readonly logger?: Logger;
}

/** {@link BackplaneStats} and what only the Redis backplane knows. */
export interface RedisBackplaneStats extends BackplaneStats {
  /** Publishes sent to Redis and not answered yet. */
  readonly queued: number;
  /** Their payload bytes. */
  readonly queuedBytes: number;
  /** Topics subscribed in Redis (one channel each). */
  readonly topics: number;
  /** Messages on a subscribed channel that are not in this backplane's format (ignored). */
  readonly invalid: number;
}

/** The wire format's version: the first byte of every message. A host ignores versions it does not know. */
const FORMAT_VERSION = 1;
const FLAG_BINARY = 0x01;
/** version, flags, origin length. */
const HEADER_BYTES = 3;

/**
 * A publish as a Redis message: `[version, flags, originLength, ...origin, ...payload]`. Binary-safe:
 * the payload is carried as it is, and the topic is the channel, so it is not repeated here.
 */
export function encodeTopicMessage(message: TopicMessage): Buffer {
  const origin = Buffer.from(message.origin, 'utf8');
  // One byte holds the origin's length: ids are UUIDs or short names, refused beyond that at construction.
  if (origin.length > 255) throw new RangeError('backplane origin id longer than 255 bytes');
  const out = Buffer.allocUnsafe(HEADER_BYTES + origin.length + message.data.length);
  out[0] = FORMAT_VERSION;
  out[1] = message.binary ? FLAG_BINARY : 0;
  out[2] = origin.length;
  origin.copy(out, HEADER_BYTES);
  message.data.copy(out, HEADER_BYTES + origin.length);
  return out;
}

/** The inverse of {@link encodeTopicMessage}; undefined for anything else on the channel. */
export function decodeTopicMessage(topic: string, raw: Buffer): TopicMessage | undefined {
  if (raw.length < HEADER_BYTES || raw[0] !== FORMAT_VERSION) return undefined;
  const originLength = raw[2]!;
  if (raw.length < HEADER_BYTES + originLength) return undefined;
  return {
    topic,
    origin: raw.toString('utf8', HEADER_BYTES, HEADER_BYTES + originLength),
    binary: (raw[1]! & FLAG_BINARY) !== 0,
    // A view, not a copy: node-redis hands each message its own Buffer.
    data: raw.subarray(HEADER_BYTES + originLength),
  };
}

/**
 * Connects a Redis backplane. It resolves once node-redis is loaded and both connections are
 * started, not when they are up: a host starts even while Redis is unreachable (local delivery
 * works, remote publishes are dropped and counted), and connects in the background with backoff.
 * {@link RedisBackplane.ready} waits for the connections.
 */
export async function createRedisBackplane(options: RedisBackplaneOptions): Promise<RedisBackplane> {
  const { createClient } = await import('redis');
  return new RedisBackplane(createClient, options);
}

/** A {@link Backplane} over Redis pub/sub. Build it with {@link createRedisBackplane}. */
export class RedisBackplane implements Backplane {
  readonly id: string;
  onMessage: ((message: TopicMessage) => void) | undefined;
  onGap: ((topics: readonly string[], reason: string) => void) | undefined;

  readonly #prefix: string;
  readonly #maxQueue: number;
  readonly #maxQueueBytes: number;
  readonly #logger: Logger | undefined;
  readonly #publisher: RedisClient;
  readonly #subscriber: RedisClient;
  /** Topics in use: subscribed in Redis, or being subscribed. */
  readonly #topics = new Set<string>();
  readonly #listeners = new Map<string, (message: Buffer) => void>();
  #closed = false;
  #queued = 0;
  #queuedBytes = 0;
  #published = 0;
  #received = 0;
  #dropped = 0;
  #gaps = 0;
  #reconnects = 0;
  #invalid = 0;
  /** Why the subscriber connection was lost; set until it is back (then the gap is reported). */
  #subscriberLost: string | undefined;
  readonly #ready: Promise<void>;

  /** @internal Use {@link createRedisBackplane}, which loads node-redis first. */
  constructor(create: typeof createClient, options: RedisBackplaneOptions) {
    this.id = options.id ?? randomUUID();
    if (Buffer.byteLength(this.id) > 255) throw new RangeError('RedisBackplane: id longer than 255 bytes');
    this.#prefix = options.prefix ?? 'wsmod:';
    this.#maxQueue = options.maxQueue ?? 10_000;
    this.#maxQueueBytes = options.maxQueueBytes ?? 16 * 1024 * 1024;
    this.#logger = options.logger;
    const min = options.reconnectDelay?.min ?? 100;
    const max = options.reconnectDelay?.max ?? 5000;
    const reconnectStrategy = (retries: number): number => {
      const delay = Math.min(max, min * 2 ** Math.min(retries, 20));
      // Jitter, so that the hosts of a fleet do not all knock on a restarted Redis in the same millisecond.
      return Math.round(delay * (1 + Math.random() * 0.2));
    };
    this.#publisher = create({
      url: options.url,
      socket: { reconnectStrategy },
      // A publish while the publisher is down is dropped by us (counted); node-redis must not hold it.
      disableOfflineQueue: true,
    });
    // Subscribes and unsubscribes issued while down wait for the connection: they are how the topic set
    // reaches Redis (node-redis resubscribes what it holds, and sends what was queued after that).
    this.#subscriber = create({ url: options.url, socket: { reconnectStrategy } });
    this.#watch(this.#publisher, 'publisher');
    this.#watch(this.#subscriber, 'subscriber');
    const connect = (client: RedisClient): Promise<void> =>
      client.connect().then(
        () => undefined,
        (err: unknown) => {
          // Only close() ends the connect loop (reconnectStrategy never gives up).
          if (!this.#closed) this.#logger?.error({ err }, 'redis backplane: connect failed');
        },
      );
    this.#ready = Promise.all([connect(this.#publisher), connect(this.#subscriber)]).then(() => undefined);
  }

  /** Resolves when both connections are up for the first time (or the backplane is closed). */
  ready(): Promise<void> {
    return this.#ready;
  }

  subscribe(topic: string): void {
    if (this.#closed || this.#topics.has(topic)) return;
    this.#topics.add(topic);
    const listener = (raw: Buffer): void => this.#deliver(topic, raw);
    this.#listeners.set(topic, listener);
    this.#subscriber.subscribe(this.#prefix + topic, listener, true).catch((err: unknown) => {
      // The connection died before Redis answered: node-redis keeps the channel and resubscribes it.
      this.#logger?.debug({ err, topic }, 'redis backplane: subscribe not confirmed');
    });
  }

  unsubscribe(topic: string): void {
    if (this.#closed || !this.#topics.delete(topic)) return;
    const listener = this.#listeners.get(topic);
    this.#listeners.delete(topic);
    this.#subscriber.unsubscribe(this.#prefix + topic, listener, true).catch((err: unknown) => {
      this.#logger?.debug({ err, topic }, 'redis backplane: unsubscribe not confirmed');
    });
  }

  publish(message: TopicMessage): boolean {
    const size = message.data.length;
    if (
      this.#closed ||
      !this.#publisher.isReady ||
      this.#queued >= this.#maxQueue ||
      this.#queuedBytes + size > this.#maxQueueBytes
    ) {
      this.#dropped++;
      return false;
    }
    this.#queued++;
    this.#queuedBytes += size;
    // node-redis writes commands in call order on the one publisher connection, which keeps per
    // (origin, topic) FIFO; the promise only settles the queue's accounting.
    this.#publisher.publish(this.#prefix + message.topic, encodeTopicMessage({ ...message, origin: this.id })).then(
      () => {
        this.#queued--;
        this.#queuedBytes -= size;
        this.#published++;
      },
      () => {
        // The connection died with it in flight: Redis may or may not have run it, so it is not
        // counted as published (at-most-once).
        this.#queued--;
        this.#queuedBytes -= size;
        this.#dropped++;
      },
    );
    return true;
  }

  get stats(): RedisBackplaneStats {
    return {
      connected: this.#publisher.isReady && this.#subscriber.isReady,
      published: this.#published,
      received: this.#received,
      dropped: this.#dropped,
      gaps: this.#gaps,
      reconnects: this.#reconnects,
      queued: this.#queued,
      queuedBytes: this.#queuedBytes,
      topics: this.#topics.size,
      invalid: this.#invalid,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onMessage = undefined;
    this.onGap = undefined;
    // Publishes already handed to Redis get a moment to go out; then both connections are torn down
    // whatever their state (close() on a connection that is down would wait for it to come back).
    if (this.#publisher.isReady && this.#queued > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#publisher.close().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 1000);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const client of [this.#publisher, this.#subscriber]) {
      try {
        client.destroy();
      } catch {
        // Already closed.
      }
    }
  }

  #deliver(topic: string, raw: Buffer): void {
    // A message still in flight when the topic was unsubscribed.
    if (this.#closed || !this.#topics.has(topic)) return;
    const message = decodeTopicMessage(topic, raw);
    if (message === undefined) {
      this.#invalid++;
      return;
    }
    if (message.origin === this.id) return;
    this.#received++;
    try {
      this.onMessage?.(message);
    } catch (err) {
      // Thrown into node-redis, it would break its reply parsing; the broker's fault stays here.
      this.#logger?.error({ err, topic }, 'redis backplane: onMessage threw');
    }
  }

  /** Follows a connection's life: losses, recoveries, and the gap a subscriber loss leaves. */
  #watch(client: RedisClient, role: 'publisher' | 'subscriber'): void {
    let everReady = false;
    // One warning per outage (the first attempt included); node-redis emits 'error' for every failed
    // attempt, and without a listener an 'error' event would throw.
    let warned = false;
    client.on('error', (err: unknown) => {
      if (this.#closed) return;
      if (everReady && role === 'subscriber') this.#subscriberLost ??= err instanceof Error ? err.message : String(err);
      if (warned) {
        this.#logger?.debug({ err, role }, `redis backplane: ${role} connection attempt failed`);
      } else {
        warned = true;
        this.#logger?.warn({ err, role }, `redis backplane: ${role} connection ${everReady ? 'lost' : 'failed'}, retrying with backoff`);
      }
    });
    client.on('ready', () => {
      if (this.#closed) return;
      warned = false;
      if (!everReady) {
        everReady = true;
        return;
      }
      this.#reconnects++;
      this.#logger?.info({ role }, `redis backplane: ${role} reconnected`);
      if (role === 'publisher') return;
      // 'ready' follows node-redis's resubscribe of every channel it holds: from here on the topics
      // receive again, and what was published between the loss and now is lost for them.
      const reason = this.#subscriberLost ?? 'subscriber connection lost';
      this.#subscriberLost = undefined;
      if (this.#topics.size === 0) return;
      this.#gaps++;
      const topics = [...this.#topics];
      try {
        this.onGap?.(topics, reason);
      } catch (err) {
        this.#logger?.error({ err }, 'redis backplane: onGap threw');
      }
    });
  }
}
