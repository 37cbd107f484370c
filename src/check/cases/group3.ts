/**
 * Autobahn group 3 — reserved bits: with no extension negotiated, any frame with a non-zero RSV
 * field must fail the connection (RFC 6455 §5.2).
 */
import type { CaseDefinition, ExpectedClose, FrameSpec } from '../types.ts';
import { CLOSE } from '../types.ts';
import { sendInOneChop, sendSync } from './group1.ts';

const failedWithProtocolError: ExpectedClose = { closedByMe: false, closeCode: [CLOSE.PROTOCOL_ERROR], requireClean: false };
const HELLO = 'Hello, world!';

/** The RSV field as the bits it sets, e.g. 5 → "RSV1 + RSV3". */
function rsvBits(rsv: number): string {
  return [4, 2, 1]
    .filter((bit) => (rsv & bit) !== 0)
    .map((bit) => (bit === 4 ? 'RSV1' : bit === 2 ? 'RSV2' : 'RSV3'))
    .join(' + ');
}

/** A lone frame with reserved bits set: nothing may come back, the server fails the connection. */
function loneFrameCase(id: string, what: string, frame: FrameSpec & { rsv: number }): CaseDefinition {
  return {
    id,
    description: `Send ${what} with RSV = ${frame.rsv} (${rsvBits(frame.rsv)}).`,
    expectation:
      'The server fails the connection at once (close code 1002 or no code) without delivering anything: the RSV bits must be 0 when no extension that defines them has been negotiated.',
    async run(ctx) {
      ctx.expect({ OK: [] }, failedWithProtocolError);
      await ctx.sendFrame(frame);
      ctx.killAfter(1);
    },
  };
}

type Delivery = 'one write' | 'frame-wise' | 'octet-wise';

/** Text message, the same text with reserved bits set, then a ping. */
function messageThenReservedCase(id: string, rsv: number, delivery: Delivery): CaseDefinition {
  const frames: FrameSpec[] = [
    { opcode: 1, payload: HELLO },
    { opcode: 1, payload: HELLO, rsv },
    { opcode: 9 },
  ];
  const how =
    delivery === 'one write'
      ? 'All three frames go out in one write.'
      : delivery === 'frame-wise'
        ? 'Each frame is its own write.'
        : 'Every frame is written one octet at a time.';
  return {
    id,
    description: `Send the text message "${HELLO}", then the same message with RSV = ${rsv} (${rsvBits(rsv)}), then an empty ping. ${how}`,
    expectation:
      'The server echoes the first message, then fails the connection (close code 1002 or no code) on the frame with reserved bits; no pong is sent. A server that fails before echoing the first message is NON-STRICT.',
    async run(ctx) {
      ctx.expect({ OK: [['message', HELLO, false]], 'NON-STRICT': [] }, failedWithProtocolError);
      if (delivery === 'one write') await sendInOneChop(ctx, frames);
      else if (delivery === 'frame-wise') for (const frame of frames) await sendSync(ctx, frame);
      else for (const frame of frames) await ctx.sendFrame({ ...frame, chopsize: 1 });
      ctx.killAfter(1);
    },
  };
}

export const group3: readonly CaseDefinition[] = [
  loneFrameCase('3.1', `the text message "${HELLO}"`, { opcode: 1, payload: HELLO, rsv: 1 }),
  messageThenReservedCase('3.2', 2, 'one write'),
  messageThenReservedCase('3.3', 3, 'frame-wise'),
  messageThenReservedCase('3.4', 4, 'octet-wise'),
  loneFrameCase('3.5', 'the 8-octet binary message 00 FF FE FD FC FB 00 FF', {
    opcode: 2,
    payload: Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]),
    rsv: 5,
  }),
  // Autobahn titles 3.6 "Ping with RSV = 6" but its frame is a binary data frame (opcode 2); the wire
  // behaviour is what is kept here, so reports stay comparable with Autobahn's.
  loneFrameCase('3.6', `a binary message (opcode 2) with the payload "${HELLO}" (Autobahn labels this case a ping, but sends opcode 2)`, {
    opcode: 2,
    payload: HELLO,
    rsv: 6,
  }),
  loneFrameCase('3.7', 'a close frame with an empty payload', { opcode: 8, rsv: 7 }),
];
