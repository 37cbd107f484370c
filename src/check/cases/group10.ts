/**
 * Autobahn group 10 — miscellaneous: 10.1.1 sends a 64 KiB text message through the client's own
 * automatic fragmentation (1300-octet fragments) and expects the whole message echoed back.
 */
import type { CaseDefinition } from '../types.ts';
import { CLOSE } from '../types.ts';

const SIZE = 65536;
const FRAGMENT = 1300;

export const group10: readonly CaseDefinition[] = [
  {
    id: '10.1.1',
    description:
      `Send a text message of ${SIZE} octets ('*' repeated) fragmented automatically into frames of ${FRAGMENT} payload octets: ` +
      `one text frame and ${Math.floor(SIZE / FRAGMENT)} continuation frames (${Math.floor(SIZE / FRAGMENT)} frames of ${FRAGMENT} octets and a last one of ${SIZE % FRAGMENT}).`,
    expectation: `The server reassembles the message and echoes one text message carrying the same ${SIZE} octets. The client then closes with 1000 and the closing handshake completes cleanly.`,
    timeout: 15000,
    async run(ctx) {
      const payload = Buffer.alloc(SIZE, 0x2a);
      ctx.expect({ OK: [['message', payload, false]] }, { closedByMe: true, closeCode: [CLOSE.NORMAL], requireClean: true });
      await ctx.sendMessage(payload, false, { fragmentSize: FRAGMENT });
      ctx.killAfter(10);
    },
  },
];
