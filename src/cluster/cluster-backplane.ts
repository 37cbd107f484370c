import { randomUUID } from 'node:crypto';
import type { Backplane, BackplaneStats, TopicMessage } from '../pubsub/backplane.ts';
import { type BackplaneWire, type IpcEndpoint, isWire, processChannel } from './messages.ts';

/** Options of {@link ClusterBackplane}. */
export interface ClusterBackplaneOptions {
  /**
   * Publishes handed to the IPC channel and not yet written to it. Past it, `publish` drops and
   * counts instead of queueing without bound behind a busy primary. Default 1024.
   */
  readonly maxQueue?: number;
  /** This worker's id, the `origin` of its publishes. Default: `worker-<pid>-<random>`. */
  readonly id?: string;
  /** The channel to the primary. Default: this process's IPC channel (a cluster worker's). */
  readonly channel?: IpcEndpoint;
}

const DEFAULT_MAX_QUEUE = 1024;

/**
 * The {@link Backplane} of `wsmod serve --workers N`: topics between the workers of one machine,
 * relayed by the primary ({@link ClusterRelay}) over cluster IPC.
 *
 * FIFO per (origin, topic) holds because each IPC channel is a pipe written in order and the primary
 * forwards each worker's messages in the order they arrive. The primary forwards a publish only to
 * the workers that subscribed to its topic, never back to its origin. Both ends bound what they
 * queue: a worker past `maxQueue` drops the publish (counted, `publish` returns false) and later
 * tells the primary, which reports a gap on that topic to the subscribing workers; the primary past
 * its bound toward one worker drops for that worker only and reports the gap to it.
 */
export class ClusterBackplane implements Backplane {
  readonly id: string;
  onMessage: ((message: TopicMessage) => void) | undefined;
  onGap: ((topics: readonly string[], reason: string) => void) | undefined;
  readonly #channel: IpcEndpoint;
  readonly #maxQueue: number;
  readonly #topics = new Set<string>();
  /** Topics whose publishes were dropped here and not yet reported to the primary. */
  readonly #droppedTopics = new Set<string>();
  #inFlight = 0;
  #closed = false;
  #published = 0;
  #received = 0;
  #dropped = 0;
  #gaps = 0;

  constructor(options: ClusterBackplaneOptions = {}) {
    this.#channel = options.channel ?? processChannel();
    this.#maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.id = options.id ?? `worker-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.#channel.on('message', this.#onWire);
  }

  subscribe(topic: string): void {
    if (this.#closed || this.#topics.has(topic)) return;
    this.#topics.add(topic);
    this.#control({ wsmod: 'bp', op: 'sub', topic });
  }

  unsubscribe(topic: string): void {
    if (this.#closed || !this.#topics.delete(topic)) return;
    this.#control({ wsmod: 'bp', op: 'unsub', topic });
  }

  publish(message: TopicMessage): boolean {
    if (this.#closed || this.#inFlight >= this.#maxQueue) {
      this.#dropped++;
      this.#droppedTopics.add(message.topic);
      return false;
    }
    this.#reportDrops();
    // A plain object: the caller's TopicMessage may be a class instance or carry extra fields.
    const wire: BackplaneWire = { wsmod: 'bp', op: 'pub', message: { topic: message.topic, data: message.data, binary: message.binary, origin: message.origin } };
    this.#inFlight++;
    this.#published++;
    this.#channel.send(wire, (err) => {
      this.#inFlight--;
      if (err !== null) {
        this.#dropped++;
        this.#droppedTopics.add(message.topic);
      }
      if (this.#inFlight === 0) this.#reportDrops();
    });
    return true;
  }

  get stats(): BackplaneStats {
    return {
      connected: !this.#closed && this.#channel.connected,
      published: this.#published,
      received: this.#received,
      dropped: this.#dropped,
      gaps: this.#gaps,
      reconnects: 0,
    };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#channel.off('message', this.#onWire);
    // The primary forgets this worker's subscriptions (it does so on the worker's exit as well).
    this.#control({ wsmod: 'bp', op: 'close' });
    this.#topics.clear();
    return Promise.resolve();
  }

  /** Subscription changes are tiny and must not be lost, so they bypass the publish bound. */
  #control(wire: BackplaneWire): void {
    if (this.#channel.connected) this.#channel.send(wire, ignore);
  }

  /** Tells the primary which topics lost publishes here, so it reports the gap to their subscribers. */
  #reportDrops(): void {
    if (this.#droppedTopics.size === 0 || this.#closed) return;
    const topics = [...this.#droppedTopics];
    this.#droppedTopics.clear();
    this.#control({ wsmod: 'bp', op: 'gap', topics, reason: `worker ${this.id} dropped publishes (its queue to the primary was full)` });
  }

  readonly #onWire = (raw: unknown): void => {
    if (this.#closed || !isWire(raw, 'bp')) return;
    const wire = raw as unknown as BackplaneWire;
    if (wire.op === 'pub') {
      const m = wire.message;
      // An unsubscribe may cross a publish already on its way; and a host ignores its own publishes.
      if (!this.#topics.has(m.topic) || m.origin === this.id) return;
      this.#received++;
      this.onMessage?.({ topic: m.topic, data: Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data), binary: m.binary, origin: m.origin });
    } else if (wire.op === 'gap') {
      const topics = wire.topics.filter((t) => this.#topics.has(t));
      if (topics.length === 0) return;
      this.#gaps++;
      this.onGap?.(topics, wire.reason);
    }
  };
}

function ignore(): void {
  // A control message on a channel closing under it: the worker is on its way out.
}
