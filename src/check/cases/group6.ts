/**
 * Group 6 — UTF-8 handling (Autobahn TestSuite cases 6.1.1 … 6.23.7, 145 cases).
 *
 * 6.1–6.4 are hand-written cases: empty fragments, valid text split on and inside code points,
 * invalid text whole and octet-wise, and fail-fast on the octet that makes a message invalid. 6.5–6.23
 * are generated from a table of UTF-8 test vectors (after Markus Kuhn's UTF-8-test.txt, in the order
 * Autobahn's case6_x_x.py lists them): each vector is sent as one text frame; valid text must come back
 * unchanged, invalid text must make the server fail the connection with 1007 (RFC 6455 §8.1, §7.4.1).
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { CaseContext, CaseDefinition, ExpectedClose } from '../types.ts';
import { CLOSE } from '../types.ts';
import { sameEvents } from '../verdict.ts';

const hex = (bytes: Buffer): string => bytes.toString('hex');
const fromHex = (text: string): Buffer => Buffer.from(text, 'hex');

/** A valid text message ends with the client's normal close, answered cleanly. */
const ECHO_THEN_CLOSE: ExpectedClose = { closedByMe: true, closeCode: [CLOSE.NORMAL], requireClean: true };
/** Invalid text: the server fails the connection itself, with 1007 or without a code (RFC 6455 §8.1). */
const FAILED_1007: ExpectedClose = { closedByMe: false, closeCode: [CLOSE.INVALID_PAYLOAD], requireClean: false };

/** Greek "kosme" (κόσμε): five code points, of 2, 3, 2, 2 and 2 octets. */
const KOSME = fromHex('cebae1bdb9cf83cebcceb5');
/** Text with 2-octet code points, as a UTF-8 string literal. */
const MIXED = 'Hello-µ@ßöäüàá-UTF-8!!';

/**
 * Autobahn's closeAfter(1): if nothing ended the case after a second, start the closing handshake
 * (without a code). When the echo arrived in time the client has already sent its close (finishWhenDone),
 * so only a case whose expectation is still unmet sends one here.
 */
async function closeAfterOneSecond(ctx: CaseContext, isOpen: () => boolean, echoed: Buffer): Promise<void> {
  await ctx.sleep(1000);
  if (!sameEvents(ctx.received, [['message', echoed, false]]) && isOpen()) await ctx.sendClose();
}

/** A text message that must be echoed, sent by `send`, closed after a second if nothing happens. */
function echoCase(id: string, description: string, expected: Buffer, send: (ctx: CaseContext) => Promise<void>): CaseDefinition {
  return {
    id,
    description,
    expectation: 'The server echoes one text message with exactly these payload octets; the client then closes normally (1000) and the closing handshake completes cleanly.',
    async run(ctx) {
      const isOpen = () => ctx.isOpen();
      ctx.expect({ OK: [['message', expected, false]] }, ECHO_THEN_CLOSE);
      await send(ctx);
      await closeAfterOneSecond(ctx, isOpen, expected);
    },
  };
}

// ---- 6.1: empty fragments --------------------------------------------------------------------------

const emptyFragments: CaseDefinition[] = [
  echoCase('6.1.1', 'One text frame with an empty payload (length 0).', Buffer.alloc(0), async (ctx) => {
    await ctx.sendFrame({ opcode: 1, payload: '' });
  }),
  echoCase(
    '6.1.2',
    'A text message in 3 frames (text, continuation, final continuation), all three with empty payloads.',
    Buffer.alloc(0),
    async (ctx) => {
      await ctx.sendFrame({ opcode: 1, fin: false, payload: '' });
      await ctx.sendFrame({ opcode: 0, fin: false, payload: '' });
      await ctx.sendFrame({ opcode: 0, fin: true, payload: '' });
    },
  ),
  echoCase(
    '6.1.3',
    'A text message in 3 frames: an empty first frame, a middle continuation carrying "middle frame payload", an empty final continuation.',
    Buffer.from('middle frame payload'),
    async (ctx) => {
      await ctx.sendFrame({ opcode: 1, fin: false, payload: '' });
      await ctx.sendFrame({ opcode: 0, fin: false, payload: 'middle frame payload' });
      await ctx.sendFrame({ opcode: 0, fin: true, payload: '' });
    },
  ),
];

// ---- 6.2: valid UTF-8, whole and split -------------------------------------------------------------

const MIXED_HEAD = 'Hello-µ@ßöä';
const MIXED_TAIL = 'üàá-UTF-8!!';

const validSplits: CaseDefinition[] = [
  echoCase(
    '6.2.1',
    `A valid UTF-8 text message in a single frame: "${MIXED}" (0x${hex(Buffer.from(MIXED))}).`,
    Buffer.from(MIXED),
    async (ctx) => {
      await ctx.sendMessage(MIXED, false);
    },
  ),
  echoCase(
    '6.2.2',
    `The same valid text in 2 frames split between two code points: "${MIXED_HEAD}" (0x${hex(Buffer.from(MIXED_HEAD))}) then "${MIXED_TAIL}" (0x${hex(Buffer.from(MIXED_TAIL))}).`,
    Buffer.from(MIXED),
    async (ctx) => {
      await ctx.sendFrame({ opcode: 1, fin: false, payload: MIXED_HEAD });
      await ctx.sendFrame({ opcode: 0, fin: true, payload: MIXED_TAIL });
    },
  ),
  echoCase(
    '6.2.3',
    `The same valid text as 6.2.1 fragmented into frames of 1 octet each, so most 2-octet code points are split across frames (0x${hex(Buffer.from(MIXED))}).`,
    Buffer.from(MIXED),
    async (ctx) => {
      await ctx.sendMessage(MIXED, false, { fragmentSize: 1 });
    },
  ),
  echoCase(
    '6.2.4',
    `Valid text "κόσμε" (0x${hex(KOSME)}) fragmented into frames of 1 octet each, splitting every multi-octet code point.`,
    KOSME,
    async (ctx) => {
      await ctx.sendMessage(KOSME, false, { fragmentSize: 1 });
    },
  ),
];

// ---- 6.3: invalid UTF-8, whole and octet-wise ------------------------------------------------------

/** "κόσμε", then the UTF-16 surrogate U+D800 encoded as UTF-8 (invalid from its 2nd octet, 0xa0), then "edited". */
const SURROGATE_IN_TEXT = Buffer.concat([KOSME, fromHex('eda080'), Buffer.from('edited')]);

function invalidTextCase(id: string, description: string, fragmentSize?: number): CaseDefinition {
  return {
    id,
    description,
    expectation:
      'No message comes back: the server fails the connection at once (close code 1007, or no code) because the text is not valid UTF-8. The client drops the connection after 1 second otherwise.',
    async run(ctx) {
      ctx.expect({ OK: [] }, FAILED_1007);
      await ctx.sendMessage(SURROGATE_IN_TEXT, false, fragmentSize === undefined ? {} : { fragmentSize });
      ctx.killAfter(1);
    },
  };
}

const invalidSplits: CaseDefinition[] = [
  invalidTextCase('6.3.1', `An invalid UTF-8 text message in a single frame: 0x${hex(SURROGATE_IN_TEXT)} (the octet at offset 12, 0xa0, makes it invalid).`),
  invalidTextCase(
    '6.3.2',
    `The invalid text of 6.3.1 (0x${hex(SURROGATE_IN_TEXT)}) fragmented into frames of 1 octet each, so frames end inside code points.`,
    1,
  ),
];

// ---- 6.4: fail fast --------------------------------------------------------------------------------

/** "κόσμε", then 0xf4 0x90 0x80 0x80 (the UTF-8 pattern for U+110000, beyond Unicode: invalid at 0x90), then "edited". */
const FAST_PART1 = KOSME;
const FAST_PART2 = fromHex('f4908080');
const FAST_PART3 = Buffer.from('edited');
const FAST_PAYLOAD = Buffer.concat([FAST_PART1, FAST_PART2, FAST_PART3]);
/** The offset of the octet that makes FAST_PAYLOAD invalid (0x90). */
const FAST_BAD_AT = 12;

const FAIL_FAST_EXPECTATION =
  'The first part is accepted and nothing happens during the first 1 s pause. On the second part the server fails the connection right away (1007 or no code), before the third part is sent: OK. Failing only after the whole message arrived is NON-STRICT; failing on the first (valid) part, echoing anything, or not failing at all is FAILED.';

/** One part of a fail-fast message put on the wire. */
type Step = (ctx: CaseContext) => Promise<void>;

/**
 * Autobahn marks each pause it survives with a ("timeout", tag) entry in `received`; OK is
 * [A] (failed during the 2nd pause), NON-STRICT [A, B] (still open after it). The markers are not
 * events of ours, so the same three outcomes are kept by re-declaring the expectation at each
 * checkpoint: closed before A → no expectation matches (FAILED); open at A → OK; open at B → NON-STRICT.
 */
async function failFast(ctx: CaseContext, parts: readonly [Step, Step, Step]): Promise<void> {
  const [first, second, third] = parts;
  const isOpen = () => ctx.isOpen();
  ctx.expect({}, FAILED_1007);
  await first(ctx);
  await ctx.sleep(1000);
  if (!isOpen()) return;
  ctx.note('timeout A: still open after the first part');
  ctx.expect({ OK: [] }, FAILED_1007);
  await second(ctx);
  await ctx.sleep(1000);
  if (!isOpen()) return;
  ctx.note('timeout B: still open after the part that made the text invalid');
  ctx.expect({ 'NON-STRICT': [] }, FAILED_1007);
  await third(ctx);
  ctx.killAfter(1);
}

/** Three frames of one text message, their payloads cut from FAST_PAYLOAD at `cuts`. */
function failFastFrames(id: string, description: string, cuts: readonly [number, number]): CaseDefinition {
  const [a, b] = cuts;
  return {
    id,
    description,
    expectation: FAIL_FAST_EXPECTATION,
    run: (ctx) =>
      failFast(ctx, [
        (c) => c.sendFrame({ opcode: 1, fin: false, payload: FAST_PAYLOAD.subarray(0, a) }),
        (c) => c.sendFrame({ opcode: 0, fin: false, payload: FAST_PAYLOAD.subarray(a, b) }),
        (c) => c.sendFrame({ opcode: 0, fin: true, payload: FAST_PAYLOAD.subarray(b) }),
      ]),
  };
}

/**
 * One text frame (FIN clear, payload length 21) written in three chops of its masked payload, the
 * first chop with the header; then an empty final continuation frame ends the message (Autobahn's
 * beginMessage / beginMessageFrame / sendMessageFrameData / endMessage).
 */
function failFastChops(id: string, description: string, cuts: readonly [number, number]): CaseDefinition {
  const [a, b] = cuts;
  return {
    id,
    description,
    expectation: FAIL_FAST_EXPECTATION,
    run: (ctx) => {
      const key = randomBytes(4);
      const header = Buffer.from([0x01, 0x80 | FAST_PAYLOAD.length, ...key]);
      const masked = Buffer.from(FAST_PAYLOAD.map((octet, i) => octet ^ key[i % 4]!));
      return failFast(ctx, [
        (c) => c.sendRaw(Buffer.concat([header, masked.subarray(0, a)])),
        (c) => c.sendRaw(masked.subarray(a, b)),
        async (c) => {
          await c.sendRaw(masked.subarray(b));
          await c.sendFrame({ opcode: 0, fin: true, payload: '' });
        },
      ]);
    },
  };
}

const partsText = (cuts: readonly [number, number]): string =>
  `part 1 = 0x${hex(FAST_PAYLOAD.subarray(0, cuts[0]))}, part 2 = 0x${hex(FAST_PAYLOAD.subarray(cuts[0], cuts[1]))}, part 3 = 0x${hex(FAST_PAYLOAD.subarray(cuts[1]))}`;

const WHOLE_CODE_POINT: readonly [number, number] = [FAST_PART1.length, FAST_PART1.length + FAST_PART2.length];
const BAD_OCTET_ONLY: readonly [number, number] = [FAST_BAD_AT, FAST_BAD_AT + 1];

const failFastCases: CaseDefinition[] = [
  failFastFrames(
    '6.4.1',
    `An invalid text message in 3 frames with a 1 s pause after the 1st and after the 2nd: ${partsText(WHOLE_CODE_POINT)}. Parts 1 and 3 are valid UTF-8 on their own; part 2 follows the UTF-8 bit pattern for 0x110000, a code point out of range.`,
    WHOLE_CODE_POINT,
  ),
  failFastFrames(
    '6.4.2',
    `Like 6.4.1, but the 2nd frame carries only the octet that makes the text invalid: ${partsText(BAD_OCTET_ONLY)}.`,
    BAD_OCTET_ONLY,
  ),
  failFastChops(
    '6.4.3',
    `Like 6.4.1, but the parts are 3 chops of the payload of one text frame (1 s pauses between chops), then an empty final continuation frame: ${partsText(WHOLE_CODE_POINT)}.`,
    WHOLE_CODE_POINT,
  ),
  failFastChops(
    '6.4.4',
    `Like 6.4.2, but the parts are 3 chops of the payload of one text frame (1 s pauses between chops), then an empty final continuation frame: ${partsText(BAD_OCTET_ONLY)}.`,
    BAD_OCTET_ONLY,
  ),
];

// ---- 6.5–6.23: UTF-8 test vectors ------------------------------------------------------------------

/** One test vector: its octets and whether they are valid UTF-8 (RFC 3629). */
export interface Utf8Vector {
  readonly valid: boolean;
  readonly bytes: Buffer;
}

/** A family of vectors; family k (from 0) becomes cases 6.(5+k).1, 6.(5+k).2, … */
export interface Utf8Family {
  readonly title: string;
  readonly vectors: readonly Utf8Vector[];
}

const valid = (h: string): Utf8Vector => ({ valid: true, bytes: fromHex(h) });
const invalid = (h: string): Utf8Vector => ({ valid: false, bytes: fromHex(h) });
const octetRange = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Sequences that miss their last continuation octet (Kuhn 3.3), reused whole by 3.4. */
const TRUNCATED = ['c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf'];

/** Noncharacters U+nFFFE / U+nFFFF for planes 1–16, as 4-octet sequences (Kuhn 5.3). */
function planeNoncharacters(): Utf8Vector[] {
  const out: Utf8Vector[] = [];
  for (const lead of [0xf0, 0xf1, 0xf2, 0xf3, 0xf4]) {
    for (const second of [0x8f, 0x9f, 0xaf, 0xbf]) {
      if (lead === 0xf4 && second !== 0x8f) continue; // beyond U+10FFFF
      if (lead === 0xf0 && second === 0x8f) continue; // overlong (plane 0)
      for (const last of [0xbe, 0xbf]) out.push({ valid: true, bytes: Buffer.from([lead, second, 0xbf, last]) });
    }
  }
  return out;
}

/** The vector families of cases 6.5–6.23, in Autobahn's order. */
export const UTF8_FAMILIES: readonly Utf8Family[] = [
  {
    title: 'Some valid UTF-8 sequences',
    vectors: [
      valid(hex(Buffer.from('hello$world'))), // U+0024
      valid(hex(Buffer.from('hello\u00a2world'))),
      valid(hex(Buffer.from('hello\u20acworld'))),
      valid(hex(Buffer.from('hello\u{24b62}world'))),
      { valid: true, bytes: KOSME },
    ],
  },
  {
    title: 'All prefixes of a valid UTF-8 string that contains multi-byte code points',
    // A prefix is valid exactly when it ends on a code point boundary.
    vectors: Array.from({ length: KOSME.length }, (_, i) => {
      const bytes = KOSME.subarray(0, i + 1);
      return { valid: isUtf8(bytes), bytes: Buffer.from(bytes) };
    }),
  },
  { title: 'First possible sequence of a certain length', vectors: [valid('00'), valid('c280'), valid('e0a080'), valid('f0908080')] },
  { title: 'First possible sequence length 5/6 (invalid codepoints)', vectors: [invalid('f888808080'), invalid('fc8480808080')] },
  { title: 'Last possible sequence of a certain length', vectors: [valid('7f'), valid('dfbf'), valid('efbfbf'), valid('f48fbfbf')] },
  { title: 'Last possible sequence length 4/5/6 (invalid codepoints)', vectors: [invalid('f7bfbfbf'), invalid('fbbfbfbfbf'), invalid('fdbfbfbfbfbf')] },
  {
    title: 'Other boundary conditions',
    vectors: [valid('ed9fbf'), valid('ee8080'), valid('efbfbd'), valid('f48fbfbf'), invalid('f4908080')],
  },
  {
    title: 'Unexpected continuation bytes',
    vectors: [
      invalid('80'),
      invalid('bf'),
      invalid('80bf'),
      invalid('80bf80'),
      invalid('80bf80bf'),
      invalid('80bf80bf80'),
      invalid('80bf80bf80bf'),
      // 0x80 … 0xbe (Autobahn's range stops short of 0xbf)
      { valid: false, bytes: Buffer.from(octetRange(0x80, 0xbf)) },
    ],
  },
  {
    title: 'Lonely start characters',
    // Each start octet of a range followed by a space; the ranges stop one short of their end, as in Autobahn.
    vectors: [
      [0xc0, 0xdf],
      [0xe0, 0xef],
      [0xf0, 0xf7],
      [0xf8, 0xfb],
      [0xfc, 0xfd],
    ].map(([from, to]) => ({ valid: false, bytes: Buffer.from(octetRange(from!, to!).flatMap((o) => [o, 0x20])) })),
  },
  { title: 'Sequences with last continuation byte missing', vectors: TRUNCATED.map(invalid) },
  { title: 'Concatenation of incomplete sequences', vectors: [invalid(TRUNCATED.join(''))] },
  { title: 'Impossible bytes', vectors: [invalid('fe'), invalid('ff'), invalid('fefeffff')] },
  {
    title: 'Examples of an overlong ASCII character',
    vectors: [invalid('c0af'), invalid('e080af'), invalid('f08080af'), invalid('f8808080af'), invalid('fc80808080af')],
  },
  {
    title: 'Maximum overlong sequences',
    vectors: [invalid('c1bf'), invalid('e09fbf'), invalid('f08fbfbf'), invalid('f887bfbfbf'), invalid('fc83bfbfbfbf')],
  },
  {
    title: 'Overlong representation of the NUL character',
    vectors: [invalid('c080'), invalid('e08080'), invalid('f0808080'), invalid('f880808080'), invalid('fc8080808080')],
  },
  {
    title: 'Single UTF-16 surrogates',
    vectors: ['eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf'].map(invalid),
  },
  {
    title: 'Paired UTF-16 surrogates',
    vectors: [
      'eda080edb080',
      'eda080edbfbf',
      'edadbfedb080',
      'edadbfedbfbf',
      'edae80edb080',
      'edae80edbfbf',
      'edafbfedb080',
      'edafbfedbfbf',
    ].map(invalid),
  },
  { title: 'Non-character code points (valid UTF-8)', vectors: [valid('efbfbe'), valid('efbfbf'), ...planeNoncharacters()] },
  {
    title: 'Unicode specials (i.e. replacement char)',
    vectors: ['efbfb9', 'efbfba', 'efbfbb', 'efbfbc', 'efbfbd', 'efbfbe', 'efbfbf'].map(valid),
  },
];

/** The number of the first vector family (6.5). */
const FIRST_FAMILY = 5;

function vectorCase(id: string, family: string, vector: Utf8Vector): CaseDefinition {
  const payload = vector.bytes;
  return {
    id,
    description: vector.valid
      ? `${family}: a text message in one frame whose payload is valid UTF-8, 0x${hex(payload)}.`
      : `${family}: a text message in one frame whose payload is not valid UTF-8, 0x${hex(payload)}.`,
    expectation: vector.valid
      ? 'The server echoes the message unchanged; the client then closes normally (1000) and the closing handshake completes cleanly.'
      : 'No message comes back: the server fails the connection at once (close code 1007, or no code) because the payload is not valid UTF-8.',
    async run(ctx) {
      if (vector.valid) ctx.expect({ OK: [['message', payload, false]] }, ECHO_THEN_CLOSE);
      else ctx.expect({ OK: [] }, FAILED_1007);
      await ctx.sendMessage(payload, false);
      ctx.killAfter(0.5);
    },
  };
}

const vectorCases: CaseDefinition[] = UTF8_FAMILIES.flatMap((family, k) =>
  family.vectors.map((vector, j) => vectorCase(`6.${FIRST_FAMILY + k}.${j + 1}`, family.title, vector)),
);

/** Autobahn group 6, UTF-8 handling: 145 cases in Autobahn's order. */
export const group6: readonly CaseDefinition[] = [...emptyFragments, ...validSplits, ...invalidSplits, ...failFastCases, ...vectorCases];
