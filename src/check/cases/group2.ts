/**
 * Autobahn group 2 — pings and pongs: a ping must be answered by a pong with the same payload, a
 * ping over 125 octets fails the connection, unsolicited pongs are ignored.
 */
import type { CaseContext, CaseDefinition, ExpectedClose } from '../types.ts';
import { CLOSE } from '../types.ts';
import { closeAfter, sendInOneChop } from './group1.ts';

const cleanNormalClose: ExpectedClose = { closedByMe: true, closeCode: [CLOSE.NORMAL], requireClean: true };
const failedWithProtocolError: ExpectedClose = { closedByMe: false, closeCode: [CLOSE.PROTOCOL_ERROR], requireClean: false };

/** Cases 2.1–2.4 and 2.6: one ping, the matching pong is expected. */
function pingCase(id: string, what: string, payload: Buffer | string, options: { chopsize?: number; closeAfter: number }): CaseDefinition {
  return {
    id,
    description: `Send a ping with ${what}${options.chopsize === 1 ? ', its bytes written one octet at a time' : ''}.`,
    expectation: `The server answers with a pong carrying the identical payload${
      options.chopsize === 1 ? ' (it must reassemble a frame that arrives octet by octet)' : ''
    }. The client then closes with 1000 and the closing handshake completes cleanly.`,
    async run(ctx) {
      ctx.expect({ OK: [['pong', payload]] }, cleanNormalClose);
      await ctx.sendFrame(options.chopsize === undefined ? { opcode: 9, payload } : { opcode: 9, payload, chopsize: options.chopsize });
      closeAfter(ctx, options.closeAfter);
    },
  };
}

/** Cases 2.7 and 2.8: an unsolicited pong, then the client closes at once. */
function unsolicitedPongCase(id: string, payload: string): CaseDefinition {
  return {
    id,
    description: `Send an unsolicited pong ${payload === '' ? 'with an empty payload' : `with the payload "${payload}"`}, then immediately start the closing handshake with 1000.`,
    expectation: 'The server sends nothing in reply to the pong (no message, ping or pong) and completes the closing handshake cleanly with 1000.',
    async run(ctx) {
      ctx.expect({ OK: [] }, cleanNormalClose);
      await ctx.sendFrame({ opcode: 10, payload });
      // Autobahn also arms closeAfter(1) here; with the close already sent it can never fire, so it is left out.
      await ctx.sendClose(CLOSE.NORMAL);
    },
  };
}

/** Cases 2.10 and 2.11: ten pings back to back. */
function tenPingsCase(id: string, octetWise: boolean): CaseDefinition {
  const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
  return {
    id,
    description: octetWise
      ? 'Send 10 pings with the payloads "payload-0" … "payload-9", every frame written one octet at a time.'
      : 'Send 10 pings with the payloads "payload-0" … "payload-9", all in one write.',
    expectation:
      'The server answers every ping with a pong carrying its payload, in order (RFC 6455 only requires a pong for the most recent ping, but the suite checks for all ten). The client then closes with 1000 and the closing handshake completes cleanly.',
    async run(ctx: CaseContext) {
      ctx.expect({ OK: payloads.map((p) => ['pong', p] as const) }, cleanNormalClose);
      if (octetWise) {
        for (const payload of payloads) await ctx.sendFrame({ opcode: 9, payload, chopsize: 1 });
      } else {
        await sendInOneChop(
          ctx,
          payloads.map((payload) => ({ opcode: 9, payload })),
        );
      }
      closeAfter(ctx, 3);
    },
  };
}

export const group2: readonly CaseDefinition[] = [
  pingCase('2.1', 'an empty payload', '', { closeAfter: 1 }),
  pingCase('2.2', 'the short text payload "Hello, world!"', 'Hello, world!', { closeAfter: 1 }),
  pingCase('2.3', 'the 8-octet binary payload 00 FF FE FD FC FB 00 FF (not UTF-8)', Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]), {
    closeAfter: 1,
  }),
  pingCase('2.4', 'a binary payload of 125 octets (0xFE repeated), the largest a control frame may carry', Buffer.alloc(125, 0xfe), {
    closeAfter: 1,
  }),
  {
    id: '2.5',
    description: 'Send a ping with a binary payload of 126 octets (0xFE repeated), one more than a control frame may carry.',
    expectation:
      'The server fails the connection at once (close code 1002 or no code) without answering with a pong: control frames must have a payload of 125 octets or less.',
    async run(ctx) {
      ctx.expect({ OK: [] }, failedWithProtocolError);
      await ctx.sendFrame({ opcode: 9, payload: Buffer.alloc(126, 0xfe) });
      ctx.killAfter(1);
    },
  },
  pingCase('2.6', 'a binary payload of 125 octets (0xFE repeated)', Buffer.alloc(125, 0xfe), { chopsize: 1, closeAfter: 2 }),
  unsolicitedPongCase('2.7', ''),
  unsolicitedPongCase('2.8', 'unsolicited pong payload'),
  {
    id: '2.9',
    description: 'Send an unsolicited pong with the payload "unsolicited pong payload", then a ping with the payload "ping payload", both in one write.',
    expectation:
      'The server ignores the pong and answers the ping with a pong carrying "ping payload". The client then closes with 1000 and the closing handshake completes cleanly.',
    async run(ctx) {
      ctx.expect({ OK: [['pong', 'ping payload']] }, cleanNormalClose);
      await sendInOneChop(ctx, [
        { opcode: 10, payload: 'unsolicited pong payload' },
        { opcode: 9, payload: 'ping payload' },
      ]);
      closeAfter(ctx, 1);
    },
  },
  tenPingsCase('2.10', false),
  tenPingsCase('2.11', true),
];
