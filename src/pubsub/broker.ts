/**
 * The topic broker a host owns: topic → local subscribers, and the one path every publish takes.
 *
 * A publish is framed once ({@link PreparedMessage}) and the same bytes are handed to every subscriber's
 * connection, synchronously and in subscription order, so messages of one publisher on one topic reach
 * every local subscriber in publish order (and after that publisher's earlier direct sends, which went
 * into the same per-connection queues). A subscriber over its maxBackpressure does not hold anyone up:
 * its connection refuses the message at once and the subscriber's policy applies (drop, or close with
 * 1013), counted in {@link BrokerStats}. With a {@link Backplane}, the broker subscribes a topic there
 * while it has local subscribers, hands it every publish, and delivers what other hosts publish to the
 * local subscribers only (never back to the backplane). See docs/pubsub.md.
 */
import { PreparedMessage } from '../connection/prepared.ts';
import type { Logger } from '../log.ts';
import { checkTopic } from '../plugin/topic.ts';
import type { Backplane, TopicMessage } from './backplane.ts';

/** What became of a topic message handed to one subscriber. */
export type DeliveryResult =
  /** Written, or queued within maxBackpressure. */
  | 'sent'
  /** Over maxBackpressure: dropped (policy `drop`). */
  | 'dropped'
  /** Over maxBackpressure: the subscriber is being closed (policy `close`). */
  | 'closed'
  /** The subscriber is closing or closed already: nothing sent, nothing counted. */
  | 'gone';

/** One local receiver of topic messages (a host session). */
export interface Subscriber {
  /** Sends a prepared message; must not throw and must not wait. */
  deliver(message: PreparedMessage): DeliveryResult;
}

/** Counters of a broker (read-only views for tests, the status page and metrics). */
export interface BrokerStats {
  /** Topics with at least one local subscriber. */
  readonly topics: number;
  /** Local (session, topic) subscriptions. */
  readonly subscriptions: number;
  /** Publishes made on this host. */
  readonly published: number;
  /** Publishes received from other hosts through the backplane. */
  readonly received: number;
  /** Messages handed to local subscribers. */
  readonly delivered: number;
  /** Messages dropped for slow subscribers (policy `drop`). */
  readonly dropped: number;
  /** Subscribers closed for being slow (policy `close`, code 1013). */
  readonly slowClosed: number;
  /** Publishes the backplane refused (its queue full or its transport down). */
  readonly backplaneDropped: number;
  /** Topics reported as having had a gap by the backplane. */
  readonly gaps: number;
}

/** Options of a {@link Broker}. */
export interface BrokerOptions {
  /** Carries topics to and from other hosts; the broker sets its `onMessage` and `onGap`. */
  readonly backplane?: Backplane | undefined;
  /** A topic with local subscribers may have missed remote messages (after a backplane gap). */
  readonly onGap?: ((topic: string) => void) | undefined;
  readonly log?: Logger | undefined;
}

/** See the module doc. */
export class Broker {
  readonly #topics = new Map<string, Set<Subscriber>>();
  readonly #backplane: Backplane | undefined;
  readonly #onGap: ((topic: string) => void) | undefined;
  readonly #log: Logger | undefined;
  readonly #stats = { subscriptions: 0, published: 0, received: 0, delivered: 0, dropped: 0, slowClosed: 0, backplaneDropped: 0, gaps: 0 };

  constructor(options: BrokerOptions = {}) {
    this.#backplane = options.backplane;
    this.#onGap = options.onGap;
    this.#log = options.log;
    const backplane = this.#backplane;
    if (backplane !== undefined) {
      backplane.onMessage = (message) => this.#remote(message);
      backplane.onGap = (topics, reason) => this.#gap(topics, reason);
    }
  }

  /** The backplane, when the broker has one. */
  get backplane(): Backplane | undefined {
    return this.#backplane;
  }

  get stats(): BrokerStats {
    return { topics: this.#topics.size, ...this.#stats };
  }

  /** The number of local subscribers of `topic`. */
  subscribers(topic: string): number {
    return this.#topics.get(topic)?.size ?? 0;
  }

  /** Adds a subscriber; false when it subscribed already. The first one subscribes the backplane too. */
  subscribe(topic: string, subscriber: Subscriber): boolean {
    checkTopic(topic);
    let set = this.#topics.get(topic);
    if (set === undefined) {
      set = new Set();
      this.#topics.set(topic, set);
      this.#backplane?.subscribe(topic);
    } else if (set.has(subscriber)) return false;
    set.add(subscriber);
    this.#stats.subscriptions++;
    return true;
  }

  /** Removes a subscriber; false when it did not subscribe. The last one unsubscribes the backplane. */
  unsubscribe(topic: string, subscriber: Subscriber): boolean {
    const set = this.#topics.get(topic);
    if (set === undefined || !set.delete(subscriber)) return false;
    this.#stats.subscriptions--;
    if (set.size === 0) {
      this.#topics.delete(topic);
      this.#backplane?.unsubscribe(topic);
    }
    return true;
  }

  /**
   * Publishes on `topic`: to every local subscriber but `except` (frame built once) and to the
   * backplane. Returns how many local subscribers the message was handed to (see DeliveryResult).
   * Throws WSMOD_ERR_TOPIC_INVALID for a bad topic.
   */
  publish(topic: string, data: string | Uint8Array, binary: boolean, except?: Subscriber): number {
    checkTopic(topic);
    this.#stats.published++;
    const set = this.#topics.get(topic);
    const local = set !== undefined && (except === undefined || set.size > 1 || !set.has(except));
    if (!local && this.#backplane === undefined) return 0;
    const message = new PreparedMessage(data, binary);
    const reached = local ? this.#deliver(set, message, except) : 0;
    const backplane = this.#backplane;
    if (backplane !== undefined) {
      const sent = backplane.publish({ topic, data: message.payload, binary, origin: backplane.id });
      if (!sent) this.#stats.backplaneDropped++;
    }
    return reached;
  }

  /** Stops listening to the backplane (the host closes it). */
  detach(): void {
    const backplane = this.#backplane;
    if (backplane === undefined) return;
    backplane.onMessage = undefined;
    backplane.onGap = undefined;
  }

  #deliver(set: ReadonlySet<Subscriber>, message: PreparedMessage, except: Subscriber | undefined): number {
    let reached = 0;
    for (const subscriber of set) {
      if (subscriber === except) continue;
      switch (subscriber.deliver(message)) {
        case 'sent':
          reached++;
          break;
        case 'dropped':
          this.#stats.dropped++;
          break;
        case 'closed':
          this.#stats.dropped++;
          this.#stats.slowClosed++;
          break;
        case 'gone':
          break;
      }
    }
    this.#stats.delivered += reached;
    return reached;
  }

  /** Another host's publish: local subscribers only (never back to the backplane). */
  #remote(message: TopicMessage): void {
    if (message.origin === this.#backplane?.id) return;
    this.#stats.received++;
    const set = this.#topics.get(message.topic);
    if (set === undefined) return;
    this.#deliver(set, new PreparedMessage(message.data, message.binary), undefined);
  }

  #gap(topics: readonly string[], reason: string): void {
    this.#log?.warn({ topics: topics.length, reason }, 'backplane gap: remote topic messages may have been lost');
    for (const topic of topics) {
      if (!this.#topics.has(topic)) continue;
      this.#stats.gaps++;
      this.#onGap?.(topic);
    }
  }
}
