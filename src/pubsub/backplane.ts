/**
 * The contract between a host's topic broker and whatever carries topics to other processes: the
 * Redis backplane (many machines), the cluster backplane (`--workers N`, many cores), or none. The
 * broker delivers to its own subscribers directly and hands every publish to the backplane as well;
 * the backplane delivers other hosts' publishes back through `onMessage`.
 *
 * Semantics every implementation keeps (docs/pubsub.md): at-most-once; FIFO per (origin, topic);
 * `publish` never blocks and its queue is bounded (over the bound: dropped and counted); while the
 * transport is down remote delivery is lost and counted, and once it is back every topic in use is
 * subscribed again and `onGap` names the topics that may have missed messages.
 */

/** One publish as it crosses processes. */
export interface TopicMessage {
  readonly topic: string;
  /** The message bytes (a text message as UTF-8). */
  readonly data: Buffer;
  readonly binary: boolean;
  /** Id of the publishing host instance: a host ignores its own publishes coming back. */
  readonly origin: string;
}

/** Counters a backplane keeps (for the status page and metrics). */
export interface BackplaneStats {
  /** The transport is connected and subscribed. */
  readonly connected: boolean;
  readonly published: number;
  readonly received: number;
  /** Publishes not delivered to the transport (queue over its bound, or transport down). */
  readonly dropped: number;
  /** Times remote delivery may have missed messages (disconnects, subscriber drops by the server). */
  readonly gaps: number;
  readonly reconnects: number;
}

/** A transport for topics between hosts. */
export interface Backplane {
  /** This host instance's id (the `origin` of its publishes). */
  readonly id: string;
  /** Starts receiving `topic` from other hosts. Called once when the first local subscriber appears. */
  subscribe(topic: string): void;
  /** Stops receiving `topic`. Called once when its last local subscriber leaves. */
  unsubscribe(topic: string): void;
  /** Sends a publish to the other hosts. Never blocks; false when it was dropped (and counted). */
  publish(message: TopicMessage): boolean;
  /** Set by the broker: a publish from another host on a subscribed topic. */
  onMessage: ((message: TopicMessage) => void) | undefined;
  /** Set by the broker: these subscribed topics may have missed messages (`reason` for the log). */
  onGap: ((topics: readonly string[], reason: string) => void) | undefined;
  readonly stats: BackplaneStats;
  /** Disconnects; no callback runs afterwards. */
  close(): Promise<void>;
}
