/**
 * Autobahn group 5 — fragmentation: control frames must not be fragmented, fragmented messages must
 * be reassembled (also with control frames interleaved), and continuation frames without a message to
 * continue, or a new data frame inside a fragmented message, fail the connection (RFC 6455 §5.4).
 */
import type { CaseContext, CaseDefinition, Expectation, ExpectedClose, FrameSpec } from '../types.ts';
import { CLOSE } from '../types.ts';
import { closeAfter, sendInOneChop, sendSync } from './group1.ts';

const cleanNormalClose: ExpectedClose = { closedByMe: true, closeCode: [CLOSE.NORMAL], requireClean: true };
const failedWithProtocolError: ExpectedClose = { closedByMe: false, closeCode: [CLOSE.PROTOCOL_ERROR], requireClean: false };

/** How a batch of frames is put on the wire (Autobahn: plain, `sync=True`, `chopsize=1`). */
type Delivery = 'one write' | 'frame-wise' | 'octet-wise';

const deliveryText: Record<Delivery, string> = {
  'one write': 'All frames go out in one write.',
  'frame-wise': 'Each frame is its own write.',
  'octet-wise': 'Every frame is written one octet at a time.',
};

async function deliver(ctx: CaseContext, frames: readonly FrameSpec[], delivery: Delivery): Promise<void> {
  if (delivery === 'one write') await sendInOneChop(ctx, frames);
  else if (delivery === 'frame-wise') for (const frame of frames) await sendSync(ctx, frame);
  else for (const frame of frames) await ctx.sendFrame({ ...frame, chopsize: 1 });
}

/** Cases where the server must fail the connection with 1002 (an optional echo first, see `expectation`). */
function protocolErrorCase(
  id: string,
  description: string,
  expectation: string,
  frames: readonly FrameSpec[],
  delivery: Delivery,
  expected: Expectation = { OK: [] },
): CaseDefinition {
  return {
    id,
    description: `${description} ${deliveryText[delivery]}`,
    expectation,
    async run(ctx) {
      ctx.expect(expected, failedWithProtocolError);
      await deliver(ctx, frames, delivery);
      ctx.killAfter(1);
    },
  };
}

// 5.1, 5.2 ------------------------------------------------------------------------------------

function fragmentedControlCase(id: string, opcode: 9 | 10): CaseDefinition {
  const name = opcode === 9 ? 'ping' : 'pong';
  return protocolErrorCase(
    id,
    `Send a ${name} split into two fragments: a ${name} frame with FIN = 0 and the payload "fragment1", then a continuation frame with FIN = 1 and the payload "fragment2".`,
    `The server fails the connection at once (close code 1002 or no code) without replying: control frames must not be fragmented.`,
    [
      { opcode, fin: false, payload: 'fragment1' },
      { opcode: 0, fin: true, payload: 'fragment2' },
    ],
    'one write',
  );
}

// 5.3–5.5 -------------------------------------------------------------------------------------

function twoFragmentCase(id: string, delivery: Delivery): CaseDefinition {
  return {
    id,
    description: `Send a text message in two fragments: a text frame with FIN = 0 and the payload "fragment1", then a continuation frame with FIN = 1 and the payload "fragment2". ${deliveryText[delivery]}`,
    expectation:
      'The server reassembles the message and echoes one text message "fragment1fragment2". The client then closes with 1000 and the closing handshake completes cleanly.',
    async run(ctx) {
      ctx.expect({ OK: [['message', 'fragment1fragment2', false]] }, cleanNormalClose);
      await deliver(
        ctx,
        [
          { opcode: 1, fin: false, payload: 'fragment1' },
          { opcode: 0, fin: true, payload: 'fragment2' },
        ],
        delivery,
      );
      closeAfter(ctx, 1);
    },
  };
}

// 5.6–5.8 -------------------------------------------------------------------------------------

function pingBetweenFragmentsCase(id: string, delivery: Delivery): CaseDefinition {
  return {
    id,
    description: `Send a text message in two fragments ("fragment1" with FIN = 0, then a continuation "fragment2" with FIN = 1) with a ping carrying "ping payload" between them. ${deliveryText[delivery]}`,
    expectation:
      'The server answers the ping with a pong carrying "ping payload" first, then echoes the text message "fragment1fragment2". The client then closes with 1000 and the closing handshake completes cleanly.',
    async run(ctx) {
      ctx.expect(
        {
          OK: [
            ['pong', 'ping payload'],
            ['message', 'fragment1fragment2', false],
          ],
        },
        cleanNormalClose,
      );
      await deliver(
        ctx,
        [
          { opcode: 1, fin: false, payload: 'fragment1' },
          { opcode: 9, fin: true, payload: 'ping payload' },
          { opcode: 0, fin: true, payload: 'fragment2' },
        ],
        delivery,
      );
      closeAfter(ctx, 1);
    },
  };
}

// 5.9–5.14 ------------------------------------------------------------------------------------

function orphanContinuationCase(id: string, fin: boolean, delivery: Delivery): CaseDefinition {
  return protocolErrorCase(
    id,
    `Send a continuation frame with FIN = ${fin ? 1 : 0} and the payload "non-continuation payload" while no fragmented message is in progress, then the unfragmented text message "Hello, world!".`,
    'The server fails the connection at once (close code 1002 or no code) and echoes nothing: there is no message to continue.',
    [
      { opcode: 0, fin, payload: 'non-continuation payload' },
      { opcode: 1, fin: true, payload: 'Hello, world!' },
    ],
    delivery,
  );
}

// 5.16, 5.17 ----------------------------------------------------------------------------------

function repeatedOrphanCase(id: string, fin: boolean): CaseDefinition {
  const round: FrameSpec[] = [
    { opcode: 0, fin, payload: 'fragment1' },
    { opcode: 1, fin: false, payload: 'fragment2' },
    { opcode: 0, fin: true, payload: 'fragment3' },
  ];
  return protocolErrorCase(
    id,
    `Twice in a row: a continuation frame with FIN = ${fin ? 1 : 0} and the payload "fragment1" while no message is in progress, then a text message in two fragments ("fragment2" with FIN = 0, continuation "fragment3" with FIN = 1).`,
    'The server fails the connection at once (close code 1002 or no code) on the first frame and echoes nothing: there is no message to continue.',
    [...round, ...round],
    'one write',
  );
}

// 5.19, 5.20 ----------------------------------------------------------------------------------

function pingsDuringSlowMessageCase(id: string, delivery: 'one write' | 'frame-wise'): CaseDefinition {
  const fragments = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'] as const;
  const pings = ['pongme 1!', 'pongme 2!'] as const;
  return {
    id,
    description:
      `Send a text message in five fragments "fragment1" … "fragment5": the first two fragments and a ping "pongme 1!", ` +
      `then wait 1 s, then fragments three and four, a ping "pongme 2!" and the final fragment (FIN = 1). All of it is legal. ` +
      (delivery === 'one write'
        ? 'Each of the two batches goes out in one write.'
        : 'Each frame is its own write (the octets are the same as in 5.19, only the chopping on the wire differs).'),
    expectation:
      'The server answers the first ping at once, before the message is complete, and the second one too; each pong carries its ping\'s payload exactly. Then it echoes the text message "fragment1fragment2fragment3fragment4fragment5". The client then closes with 1000 and the closing handshake completes cleanly.',
    async run(ctx) {
      ctx.expect(
        {
          OK: [
            ['pong', pings[0]],
            ['pong', pings[1]],
            ['message', fragments.join(''), false],
          ],
        },
        cleanNormalClose,
      );
      await deliver(
        ctx,
        [
          { opcode: 1, fin: false, payload: fragments[0] },
          { opcode: 0, fin: false, payload: fragments[1] },
          { opcode: 9, fin: true, payload: pings[0] },
        ],
        delivery,
      );
      await ctx.sleep(1000);
      await deliver(
        ctx,
        [
          { opcode: 0, fin: false, payload: fragments[2] },
          { opcode: 0, fin: false, payload: fragments[3] },
          { opcode: 9, fin: true, payload: pings[1] },
          { opcode: 0, fin: true, payload: fragments[4] },
        ],
        delivery,
      );
      closeAfter(ctx, 1);
    },
  };
}

export const group5: readonly CaseDefinition[] = [
  fragmentedControlCase('5.1', 9),
  fragmentedControlCase('5.2', 10),
  twoFragmentCase('5.3', 'one write'),
  twoFragmentCase('5.4', 'frame-wise'),
  twoFragmentCase('5.5', 'octet-wise'),
  pingBetweenFragmentsCase('5.6', 'one write'),
  pingBetweenFragmentsCase('5.7', 'frame-wise'),
  pingBetweenFragmentsCase('5.8', 'octet-wise'),
  orphanContinuationCase('5.9', true, 'one write'),
  orphanContinuationCase('5.10', true, 'frame-wise'),
  orphanContinuationCase('5.11', true, 'octet-wise'),
  orphanContinuationCase('5.12', false, 'one write'),
  orphanContinuationCase('5.13', false, 'frame-wise'),
  orphanContinuationCase('5.14', false, 'octet-wise'),
  protocolErrorCase(
    '5.15',
    'Send a text message in two fragments ("fragment1" with FIN = 0, continuation "fragment2" with FIN = 1), then a continuation frame with FIN = 0 and the payload "fragment3" while no message is in progress, then a text frame with FIN = 1 and the payload "fragment4".',
    'The server echoes the complete first message "fragment1fragment2", then fails the connection (close code 1002 or no code) on the orphan continuation frame. A server that fails before echoing the first message is NON-STRICT.',
    [
      { opcode: 1, fin: false, payload: 'fragment1' },
      { opcode: 0, fin: true, payload: 'fragment2' },
      { opcode: 0, fin: false, payload: 'fragment3' },
      { opcode: 1, fin: true, payload: 'fragment4' },
    ],
    'one write',
    { OK: [['message', 'fragment1fragment2', false]], 'NON-STRICT': [] },
  ),
  repeatedOrphanCase('5.16', false),
  repeatedOrphanCase('5.17', true),
  protocolErrorCase(
    '5.18',
    'Send a text message in two fragments where both frames carry the text opcode: a text frame with FIN = 0 and the payload "fragment1", then a text frame (not a continuation) with FIN = 1 and the payload "fragment2".',
    'The server fails the connection at once (close code 1002 or no code) and echoes nothing: every frame after the first of a fragmented message must be a continuation frame (opcode 0).',
    [
      { opcode: 1, fin: false, payload: 'fragment1' },
      { opcode: 1, fin: true, payload: 'fragment2' },
    ],
    'one write',
  ),
  pingsDuringSlowMessageCase('5.19', 'one write'),
  pingsDuringSlowMessageCase('5.20', 'frame-wise'),
];
