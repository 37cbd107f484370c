/**
 * Autobahn group 4 — opcodes: the reserved non-control opcodes 3–7 (4.1.x) and reserved control
 * opcodes 11–15 (4.2.x) must fail the connection (RFC 6455 §5.2).
 */
import type { CaseDefinition, ExpectedClose, FrameSpec } from '../types.ts';
import { CLOSE } from '../types.ts';
import { sendInOneChop } from './group1.ts';

const failedWithProtocolError: ExpectedClose = { closedByMe: false, closeCode: [CLOSE.PROTOCOL_ERROR], requireClean: false };
const HELLO = 'Hello, world!';

function kindOf(opcode: number): string {
  return opcode >= 8 ? 'control' : 'non-control';
}

/** A lone frame with a reserved opcode. */
function loneReservedCase(id: string, opcode: number, payload?: string): CaseDefinition {
  return {
    id,
    description:
      payload === undefined
        ? `Send a frame with the reserved ${kindOf(opcode)} opcode ${opcode} and an empty payload.`
        : `Send a frame with the reserved ${kindOf(opcode)} opcode ${opcode} and the payload "${payload}".`,
    expectation: 'The server fails the connection at once (close code 1002 or no code) without sending anything else.',
    async run(ctx) {
      ctx.expect({ OK: [] }, failedWithProtocolError);
      await ctx.sendFrame(payload === undefined ? { opcode } : { opcode, payload });
      ctx.killAfter(1);
    },
  };
}

/** A text message, a frame with a reserved opcode, then a ping. */
function messageThenReservedCase(id: string, opcode: number, withPayload: boolean, octetWise: boolean): CaseDefinition {
  const frames: FrameSpec[] = [{ opcode: 1, payload: HELLO }, withPayload ? { opcode, payload: HELLO } : { opcode }, { opcode: 9 }];
  return {
    id,
    description: `Send the text message "${HELLO}", then a frame with the reserved ${kindOf(opcode)} opcode ${opcode} ${
      withPayload ? `and the payload "${HELLO}"` : 'and an empty payload'
    }, then an empty ping. ${octetWise ? 'Every frame is written one octet at a time.' : 'All three frames go out in one write.'}`,
    expectation:
      'The server echoes the first message, then fails the connection (close code 1002 or no code) on the reserved opcode; no pong is sent. A server that fails before echoing the first message is NON-STRICT.',
    async run(ctx) {
      ctx.expect({ OK: [['message', HELLO, false]], 'NON-STRICT': [] }, failedWithProtocolError);
      if (octetWise) for (const frame of frames) await ctx.sendFrame({ ...frame, chopsize: 1 });
      else await sendInOneChop(ctx, frames);
      ctx.killAfter(1);
    },
  };
}

export const group4: readonly CaseDefinition[] = [
  loneReservedCase('4.1.1', 3),
  loneReservedCase('4.1.2', 4, 'reserved opcode payload'),
  messageThenReservedCase('4.1.3', 5, false, false),
  messageThenReservedCase('4.1.4', 6, true, false),
  messageThenReservedCase('4.1.5', 7, true, true),
  loneReservedCase('4.2.1', 11),
  loneReservedCase('4.2.2', 12, 'reserved opcode payload'),
  messageThenReservedCase('4.2.3', 13, false, false),
  messageThenReservedCase('4.2.4', 14, true, false),
  messageThenReservedCase('4.2.5', 15, true, true),
];
