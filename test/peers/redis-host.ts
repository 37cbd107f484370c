// One "host" for the cross-process backplane tests: a RedisBackplane in its own process, driven by the
// test over the fork IPC channel. Argument: the Redis URL. It reports every message and gap it sees.
import { createRedisBackplane } from '../../src/pubsub/redis.ts';

/** What the test sends. Every request carries `req`, echoed in the reply. */
export type HostRequest =
  | { readonly req: number; readonly op: 'subscribe' | 'unsubscribe'; readonly topic: string }
  | { readonly req: number; readonly op: 'publish'; readonly topic: string; readonly data: string; readonly binary: boolean }
  | { readonly req: number; readonly op: 'sequence'; readonly topics: readonly string[]; readonly count: number }
  | { readonly req: number; readonly op: 'stats' }
  | { readonly req: number; readonly op: 'close' };

/** What the host reports: replies (`req`) and events. */
export type HostEvent =
  | { readonly ev: 'ready'; readonly id: string }
  | { readonly ev: 'reply'; readonly req: number; readonly result: unknown }
  | { readonly ev: 'message'; readonly topic: string; readonly origin: string; readonly binary: boolean; readonly size: number; readonly data: string | null }
  | { readonly ev: 'gap'; readonly topics: readonly string[]; readonly reason: string };

const url = process.argv[2];
if (url === undefined) throw new Error('redis-host: the Redis URL is missing');
const send = (event: HostEvent): void => {
  process.send?.(event);
};

const backplane = await createRedisBackplane({ url, reconnectDelay: { min: 20, max: 200 } });
backplane.onMessage = (m) => {
  // Big flood messages are reported by size only: the IPC channel is not what is tested.
  send({ ev: 'message', topic: m.topic, origin: m.origin, binary: m.binary, size: m.data.length, data: m.data.length <= 4096 ? m.data.toString('base64') : null });
};
backplane.onGap = (topics, reason) => send({ ev: 'gap', topics, reason });
await backplane.ready();

process.on('message', (raw: HostRequest) => {
  const reply = (result: unknown): void => send({ ev: 'reply', req: raw.req, result });
  switch (raw.op) {
    case 'subscribe':
      backplane.subscribe(raw.topic);
      reply(null);
      break;
    case 'unsubscribe':
      backplane.unsubscribe(raw.topic);
      reply(null);
      break;
    case 'publish':
      reply(backplane.publish({ topic: raw.topic, data: Buffer.from(raw.data, 'base64'), binary: raw.binary, origin: backplane.id }));
      break;
    case 'sequence': {
      // Interleaved across topics, so that order per topic is not order of the whole stream by accident.
      let accepted = 0;
      for (let seq = 0; seq < raw.count; seq++) {
        for (const topic of raw.topics) {
          if (backplane.publish({ topic, data: Buffer.from(String(seq)), binary: false, origin: backplane.id })) accepted++;
        }
      }
      reply(accepted);
      break;
    }
    case 'stats':
      reply(backplane.stats);
      break;
    case 'close':
      void backplane.close().then(() => {
        reply(null);
        // Delivers the reply, then the 'disconnect' handler below ends the process.
        process.disconnect();
      });
      break;
  }
});
// The test is gone (it ended, or crashed): so is this host, instead of reconnecting forever.
process.on('disconnect', () => {
  void backplane.close().then(() => process.exit(0));
});
send({ ev: 'ready', id: backplane.id });
