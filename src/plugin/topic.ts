import { WsmodError } from '../errors.ts';

/** The longest topic name, in UTF-8 bytes: room for `app:room:<uuid>` and more, bounded for the broker's maps. */
export const MAX_TOPIC_BYTES = 256;

/** C0 and C1 control characters and DEL: invisible in logs and unsafe in other transports' channel names. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** With the `u` flag a surrogate matches only when unpaired (a pair is read as one code point). */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * Checks a topic name (docs/pubsub.md, "Topic names"): a string of 1 to {@link MAX_TOPIC_BYTES} UTF-8
 * bytes, well-formed (no lone surrogate, which UTF-8 cannot carry to another host) and free of control
 * characters. Throws WSMOD_ERR_TOPIC_INVALID.
 */
export function checkTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string') throw new WsmodError('WSMOD_ERR_TOPIC_INVALID', `got ${typeof topic}`);
  if (topic.length === 0) throw new WsmodError('WSMOD_ERR_TOPIC_INVALID', 'empty');
  // A string longer than the byte limit in UTF-16 units is over it in UTF-8 too.
  if (topic.length > MAX_TOPIC_BYTES || Buffer.byteLength(topic) > MAX_TOPIC_BYTES) {
    throw new WsmodError('WSMOD_ERR_TOPIC_INVALID', `${Buffer.byteLength(topic)} bytes`);
  }
  if (CONTROL.test(topic)) throw new WsmodError('WSMOD_ERR_TOPIC_INVALID', 'control character');
  if (LONE_SURROGATE.test(topic)) throw new WsmodError('WSMOD_ERR_TOPIC_INVALID', 'lone surrogate');
}
