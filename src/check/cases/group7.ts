/**
 * Group 7: the closing handshake and close frames (after Autobahn's cases 7.1.x, 7.3.x, 7.5.1, 7.7.x,
 * 7.9.x and 7.13.x; all of them are started by this client). Autobahn numbers 7.2, 7.4, 7.6, 7.8,
 * 7.10 and 7.11 (server-initiated variants) are not part of its catalogue, so they are absent here too.
 */
import type { CaseContext, CaseDefinition, ExpectedClose } from '../types.ts';
import { CLOSE } from '../types.ts';

/** Autobahn drops the connection one second after the case's sends (`killAfter(1)`). */
const KILL_AFTER_SECONDS = 1;

const HELLO = 'Hello World!';

/** `length` octets of `seed` repeated (how Autobahn fills a frame when it overrides the payload length). */
function filled(seed: string, length: number): Buffer {
  const unit = Buffer.from(seed);
  const out = Buffer.alloc(length);
  for (let at = 0; at < length; at += unit.length) unit.copy(out, at, 0, Math.min(unit.length, length - at));
  return out;
}

/** The client closes and the server must answer with a clean close using one of `codes`. */
function cleanClose(...codes: number[]): ExpectedClose {
  return { closedByMe: true, closeCode: codes, requireClean: true };
}

/** The client closes; the server may answer with one of `codes` or simply drop TCP. */
function failOrClose(...codes: number[]): ExpectedClose {
  return { closedByMe: true, closeCode: codes, requireClean: false };
}

/** Puts every frame on the wire back to back (no wait between them), then arms the kill timer. */
async function backToBack(ctx: CaseContext, sends: ReadonlyArray<() => Promise<void>>): Promise<void> {
  const pending = sends.map((send) => send());
  ctx.killAfter(KILL_AFTER_SECONDS);
  await Promise.all(pending);
}

// ---- 7.1: basic close behaviour ----

const basic: CaseDefinition[] = [
  {
    id: '7.1.1',
    description: `Send the text message "${HELLO}"; once it comes back, start the closing handshake with code 1000.`,
    expectation: 'The message is echoed, then the closing handshake completes cleanly with code 1000.',
    run: (ctx) => {
      ctx.expect({ OK: [['message', HELLO, false]] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [() => ctx.sendFrame({ opcode: 0x1, payload: HELLO })]);
    },
  },
  {
    id: '7.1.2',
    description: 'Send a close frame with code 1000, then a second, empty close frame right after it.',
    expectation: 'A clean close with code 1000; the second close frame is ignored.',
    run: (ctx) => {
      ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [() => ctx.sendClose(CLOSE.NORMAL), () => ctx.sendFrame({ opcode: 0x8 })]);
    },
  },
  {
    id: '7.1.3',
    description: 'Send a close frame with code 1000, then an empty ping right after it.',
    expectation: 'A clean close with code 1000; the ping is not answered (no pong).',
    run: (ctx) => {
      ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [() => ctx.sendClose(CLOSE.NORMAL), () => ctx.sendFrame({ opcode: 0x9 })]);
    },
  },
  {
    id: '7.1.4',
    description: `Send a close frame with code 1000, then the text message "${HELLO}".`,
    expectation: 'A clean close with code 1000; the text message after the close is ignored (not echoed).',
    run: (ctx) => {
      ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [() => ctx.sendClose(CLOSE.NORMAL), () => ctx.sendFrame({ opcode: 0x1, payload: HELLO })]);
    },
  },
  {
    id: '7.1.5',
    description:
      'Send the first fragment ("fragment1", text, FIN clear) of a message, then a close frame with code 1000, then the final continuation fragment ("fragment2").',
    expectation: 'A clean close with code 1000; the unfinished message is never delivered.',
    run: (ctx) => {
      ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [
        () => ctx.sendFrame({ opcode: 0x1, fin: false, payload: 'fragment1' }),
        () => ctx.sendClose(CLOSE.NORMAL),
        () => ctx.sendFrame({ opcode: 0x0, fin: true, payload: 'fragment2' }),
      ]);
    },
  },
  {
    id: '7.1.6',
    description: `Send a 256 KiB text message (the octets "BAsd7&jh23" repeated), the text message "${HELLO}", a close frame with code 1000 and an empty ping, all back to back.`,
    expectation:
      'Informational: the outcome depends on how the implementation orders its writes and the close. Processed in order, both messages are echoed before the close; an asynchronous server may handle the close first and echo one or none of them. Either way the close should be clean with code 1000.',
    informational: true,
    run: (ctx) => {
      const big = filled('BAsd7&jh23', 256 * 1024);
      ctx.expect(
        {
          OK: [
            ['message', big, false],
            ['message', HELLO, false],
          ],
          'NON-STRICT': [],
          INFORMATIONAL: [['message', big, false]],
        },
        cleanClose(CLOSE.NORMAL),
      );
      return backToBack(ctx, [
        () => ctx.sendFrame({ opcode: 0x1, payload: big }),
        () => ctx.sendFrame({ opcode: 0x1, payload: HELLO }),
        () => ctx.sendClose(CLOSE.NORMAL),
        () => ctx.sendFrame({ opcode: 0x9 }),
      ]);
    },
  },
];

// ---- 7.3: close frame payload length ----

const payloadLength: CaseDefinition[] = [
  {
    id: '7.3.1',
    description: 'Send a close frame with an empty payload (neither code nor reason).',
    expectation: 'A clean close; the server answers with code 1000 or with no code.',
    run: (ctx) => {
      ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [() => ctx.sendClose()]);
    },
  },
  {
    id: '7.3.2',
    description: 'Send a close frame whose payload is the single octet "a" (too short to hold a close code).',
    expectation: 'The server fails the connection: a close with code 1002 (protocol error), or it drops TCP.',
    run: (ctx) => {
      // Any close frame the client sends starts its closing handshake, so the client closed first.
      ctx.expect({ OK: [] }, { closedByMe: true, closeCode: [CLOSE.PROTOCOL_ERROR], requireClean: false });
      return backToBack(ctx, [() => ctx.sendClose(undefined, 'a')]);
    },
  },
  {
    id: '7.3.3',
    description: 'Send a close frame with a 2-octet payload: code 1000 and no reason.',
    expectation: 'A clean close with code 1000.',
    run: (ctx) => {
      ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [() => ctx.sendClose(CLOSE.NORMAL)]);
    },
  },
  {
    id: '7.3.4',
    description: `Send a close frame with code 1000 and the reason "${HELLO}".`,
    expectation: 'A clean close with code 1000.',
    run: (ctx) => {
      ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [() => ctx.sendClose(CLOSE.NORMAL, HELLO)]);
    },
  },
  {
    id: '7.3.5',
    description: 'Send a close frame with code 1000 and a reason of 123 "*" octets: the largest close payload allowed (125 octets).',
    expectation: 'A clean close with code 1000.',
    run: (ctx) => {
      ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL));
      return backToBack(ctx, [() => ctx.sendClose(CLOSE.NORMAL, '*'.repeat(123))]);
    },
  },
  {
    id: '7.3.6',
    description:
      'Send a close frame with code 1000 and a reason of 124 "*" octets: a 126-octet payload, longer than a control frame may carry.',
    expectation: 'The server fails the connection: a close with code 1002 (protocol error), or it drops TCP.',
    run: (ctx) => {
      ctx.expect({ OK: [] }, failOrClose(CLOSE.PROTOCOL_ERROR));
      return backToBack(ctx, [() => ctx.sendClose(CLOSE.NORMAL, '*'.repeat(124))]);
    },
  },
];

// ---- 7.5: close frame payload value ----

/** "κόσμε" followed by an encoded UTF-16 surrogate (ED A0 80) and "edited": not valid UTF-8. */
const INVALID_UTF8_REASON = Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex');

const payloadValue: CaseDefinition[] = [
  {
    id: '7.5.1',
    description: 'Send a close frame with code 1000 and a reason that is not valid UTF-8 (it contains the surrogate ED A0 80).',
    expectation: 'The server fails the connection: a close with code 1002 or 1007, or it drops TCP.',
    run: (ctx) => {
      ctx.expect({ OK: [] }, failOrClose(CLOSE.PROTOCOL_ERROR, CLOSE.INVALID_PAYLOAD));
      return backToBack(ctx, [() => ctx.sendClose(CLOSE.NORMAL, INVALID_UTF8_REASON)]);
    },
  },
];

// ---- 7.7: valid close codes; 7.9: invalid close codes ----

/** Codes a close frame may carry (RFC 6455 §7.4.1 and §7.4.2), as sampled by Autobahn. */
export const VALID_CLOSE_CODES: readonly number[] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];

/** Codes a close frame must not carry (reserved, unassigned or out of range), as sampled by Autobahn. */
export const INVALID_CLOSE_CODES: readonly number[] = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999];

const validCodes: CaseDefinition[] = VALID_CLOSE_CODES.map((code, i) => ({
  id: `7.7.${i + 1}`,
  description: `Send a close frame with the valid close code ${code}.`,
  expectation: `A clean close; the server answers with code 1000 or echoes ${code}.`,
  run: (ctx) => {
    ctx.expect({ OK: [] }, cleanClose(CLOSE.NORMAL, code));
    return backToBack(ctx, [() => ctx.sendClose(code)]);
  },
}));

const invalidCodes: CaseDefinition[] = INVALID_CLOSE_CODES.map((code, i) => ({
  id: `7.9.${i + 1}`,
  description: `Send a close frame with the invalid close code ${code}.`,
  expectation: 'The server fails the connection: a close with code 1002 (protocol error), or it drops TCP.',
  run: (ctx) => {
    ctx.expect({ OK: [] }, failOrClose(CLOSE.PROTOCOL_ERROR));
    return backToBack(ctx, [() => ctx.sendClose(code)]);
  },
}));

// ---- 7.13: codes whose handling the RFC leaves open ----

function undefinedCode(id: string, code: number): CaseDefinition {
  return {
    id,
    description: `Send a close frame with close code ${code}, outside the ranges RFC 6455 defines.`,
    expectation: `Informational: the RFC does not say what to do. The server may close with 1000, echo ${code}, or fail with 1002.`,
    informational: true,
    run: (ctx) => {
      ctx.expect({ OK: [] }, failOrClose(CLOSE.NORMAL, code, CLOSE.PROTOCOL_ERROR));
      return backToBack(ctx, [() => ctx.sendClose(code)]);
    },
  };
}

const informational: CaseDefinition[] = [undefinedCode('7.13.1', 5000), undefinedCode('7.13.2', 65535)];

/** Group 7, in Autobahn's order. */
export const group7: readonly CaseDefinition[] = [
  ...basic,
  ...payloadLength,
  ...payloadValue,
  ...validCodes,
  ...invalidCodes,
  ...informational,
];
