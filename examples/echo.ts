import { definePlugin } from 'wsmod';

/** Echoes every message back as it came: text as text, binary as binary. */
export default definePlugin({
  name: 'echo',
  apiVersion: 1,
  onMessage(session, data, isBinary) {
    session.send(data, { binary: isBinary });
  },
});
