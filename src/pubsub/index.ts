/**
 * `wsmod/pubsub`: the backplanes that carry topics between hosts (pass one to
 * `createHost({ backplane })`), and the contract a backplane of your own implements.
 */
export { createRedisBackplane, type RedisBackplane, type RedisBackplaneOptions, type RedisBackplaneStats } from './redis.ts';
export type { Backplane, BackplaneStats, TopicMessage } from './backplane.ts';
