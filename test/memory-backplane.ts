// An in-memory Backplane for tests: instances joined to one MemoryBus deliver each other's publishes
// (asynchronously, in publish order, like a transport would) on the topics they subscribe. `gap()`
// simulates an interruption the transport recovered from. Not a mock of a named component: the Redis
// backplane is tested against real redis-server elsewhere.
import type { Backplane, BackplaneStats, TopicMessage } from '../src/pubsub/backplane.ts';

/** The shared medium of a few {@link MemoryBackplane}s. */
export class MemoryBus {
  readonly members = new Set<MemoryBackplane>();
}

export class MemoryBackplane implements Backplane {
  readonly id: string;
  readonly #bus: MemoryBus;
  readonly subscribed = new Set<string>();
  /** Every call the broker made, in order: "sub:t", "unsub:t", "pub:t". */
  readonly calls: string[] = [];
  onMessage: ((message: TopicMessage) => void) | undefined;
  onGap: ((topics: readonly string[], reason: string) => void) | undefined;
  #stats = { connected: true, published: 0, received: 0, dropped: 0, gaps: 0, reconnects: 0 };
  closed = false;

  constructor(bus: MemoryBus, id: string) {
    this.#bus = bus;
    this.id = id;
    bus.members.add(this);
  }

  get stats(): BackplaneStats {
    return { ...this.#stats };
  }

  subscribe(topic: string): void {
    this.calls.push(`sub:${topic}`);
    this.subscribed.add(topic);
  }

  unsubscribe(topic: string): void {
    this.calls.push(`unsub:${topic}`);
    this.subscribed.delete(topic);
  }

  publish(message: TopicMessage): boolean {
    this.calls.push(`pub:${message.topic}`);
    if (this.closed) {
      this.#stats.dropped++;
      return false;
    }
    this.#stats.published++;
    // The bytes cross a process boundary in a real transport: a copy, delivered later.
    const copy: TopicMessage = { ...message, data: Buffer.from(message.data) };
    for (const member of this.#bus.members) {
      // A real transport echoes a publish to its own subscription too: the broker must ignore it.
      if (!member.subscribed.has(message.topic)) continue;
      queueMicrotask(() => member.#receive(copy));
    }
    return true;
  }

  #receive(message: TopicMessage): void {
    if (this.closed) return;
    this.#stats.received++;
    this.onMessage?.(message);
  }

  /** The transport was interrupted and is back: every subscribed topic may have missed messages. */
  gap(reason = 'test'): void {
    this.#stats.gaps++;
    this.onGap?.([...this.subscribed], reason);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.#bus.members.delete(this);
  }
}
