import type { Worker } from 'node:cluster';
import type { Logger } from '../log.ts';
import { type BackplaneWire, type IpcEndpoint, isWire } from './messages.ts';

/** Counters of the primary's relay (part of the cluster stats, docs/workers.md). */
export interface RelayStats {
  /** Publishes received from workers. */
  readonly publishes: number;
  /** Copies sent on to subscribing workers. */
  readonly forwarded: number;
  /** Copies not sent because the queue toward a worker was over its bound. */
  readonly dropped: number;
  /** Topics with at least one subscribing worker. */
  readonly topics: number;
}

/** Options of {@link ClusterRelay}. */
export interface ClusterRelayOptions {
  /** Copies queued toward one worker and not yet written; past it that worker's copies drop. Default 4096. */
  readonly maxQueue?: number;
  readonly logger?: Logger;
}

interface Peer {
  readonly name: string;
  readonly channel: IpcEndpoint;
  readonly listener: (message: unknown) => void;
  readonly topics: Set<string>;
  inFlight: number;
  /** Topics whose copies toward this worker were dropped, not yet reported to it. */
  readonly gapTopics: Set<string>;
}

const DEFAULT_MAX_QUEUE = 4096;

/**
 * The primary's half of {@link ClusterBackplane}: keeps which worker subscribes to which topic and
 * forwards each publish, in arrival order, to every other subscribing worker. It runs no plugin and
 * holds no message longer than a write: the primary stays a router.
 */
export class ClusterRelay {
  readonly #peers = new Map<string, Peer>();
  readonly #subscribers = new Map<string, Set<Peer>>();
  readonly #maxQueue: number;
  readonly #log: Logger | undefined;
  #publishes = 0;
  #forwarded = 0;
  #dropped = 0;

  constructor(options: ClusterRelayOptions = {}) {
    this.#maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.#log = options.logger;
  }

  /** Relays for a cluster worker from now on (until {@link detach} or its exit). */
  attachWorker(worker: Worker): void {
    this.attach(`worker ${worker.id}`, workerChannel(worker));
  }

  /** Relays for one channel, named `name` in logs; the same name detaches it. */
  attach(name: string, channel: IpcEndpoint): void {
    const peer: Peer = { name, channel, listener: (m) => this.#onWire(peer, m), topics: new Set(), inFlight: 0, gapTopics: new Set() };
    this.#peers.set(name, peer);
    channel.on('message', peer.listener);
  }

  /** Forgets a worker and its subscriptions. */
  detach(name: string): void {
    const peer = this.#peers.get(name);
    if (peer === undefined) return;
    this.#peers.delete(name);
    peer.channel.off('message', peer.listener);
    this.#forget(peer);
  }

  get stats(): RelayStats {
    return { publishes: this.#publishes, forwarded: this.#forwarded, dropped: this.#dropped, topics: this.#subscribers.size };
  }

  #onWire(from: Peer, raw: unknown): void {
    if (!isWire(raw, 'bp')) return;
    const wire = raw as unknown as BackplaneWire;
    switch (wire.op) {
      case 'sub': {
        if (typeof wire.topic !== 'string') return;
        from.topics.add(wire.topic);
        let set = this.#subscribers.get(wire.topic);
        if (set === undefined) this.#subscribers.set(wire.topic, (set = new Set()));
        set.add(from);
        return;
      }
      case 'unsub':
        from.topics.delete(wire.topic);
        this.#unsubscribe(from, wire.topic);
        return;
      case 'pub': {
        this.#publishes++;
        const set = this.#subscribers.get(wire.message.topic);
        if (set === undefined) return;
        for (const peer of set) if (peer !== from) this.#forward(peer, wire);
        return;
      }
      case 'gap':
        // A worker dropped publishes: the others subscribing to those topics may have missed them.
        for (const peer of this.#peers.values()) {
          if (peer === from) continue;
          const topics = wire.topics.filter((t) => peer.topics.has(t));
          if (topics.length > 0) peer.channel.send({ wsmod: 'bp', op: 'gap', topics, reason: wire.reason } satisfies BackplaneWire, ignore);
        }
        return;
      case 'close':
        this.#forget(from);
        return;
    }
  }

  #forward(peer: Peer, wire: BackplaneWire & { op: 'pub' }): void {
    if (peer.inFlight >= this.#maxQueue) {
      this.#dropped++;
      if (peer.gapTopics.size === 0) this.#log?.warn({ worker: peer.name }, 'cluster backplane: queue toward a worker is full, dropping its copies');
      peer.gapTopics.add(wire.message.topic);
      return;
    }
    this.#reportGap(peer);
    peer.inFlight++;
    this.#forwarded++;
    peer.channel.send(wire, () => {
      peer.inFlight--;
      if (peer.inFlight === 0) this.#reportGap(peer);
    });
  }

  #reportGap(peer: Peer): void {
    if (peer.gapTopics.size === 0 || !peer.channel.connected) return;
    const topics = [...peer.gapTopics];
    peer.gapTopics.clear();
    peer.channel.send({ wsmod: 'bp', op: 'gap', topics, reason: 'the primary dropped copies toward this worker (its queue was full)' } satisfies BackplaneWire, ignore);
  }

  #unsubscribe(peer: Peer, topic: string): void {
    const set = this.#subscribers.get(topic);
    if (set === undefined) return;
    set.delete(peer);
    if (set.size === 0) this.#subscribers.delete(topic);
  }

  #forget(peer: Peer): void {
    for (const topic of peer.topics) this.#unsubscribe(peer, topic);
    peer.topics.clear();
    peer.gapTopics.clear();
  }
}

function ignore(): void {
  // A worker that exits while a control message is on its way: its exit detaches it.
}

/** A cluster worker's channel as an {@link IpcEndpoint}. */
export function workerChannel(worker: Worker): IpcEndpoint {
  return {
    send: (message, callback) => {
      if (!worker.isConnected()) {
        queueMicrotask(() => callback(new Error('worker disconnected')));
        return false;
      }
      return worker.send(message as never, undefined, callback);
    },
    on: (event, listener) => worker.on(event, listener),
    off: (event, listener) => worker.off(event, listener),
    get connected() {
      return worker.isConnected();
    },
  };
}
