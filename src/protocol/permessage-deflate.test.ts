// permessage-deflate (RFC 7692), without a network: the Sec-WebSocket-Extensions parser, every path of
// the server's negotiation and the client's check of a response, and the codec (round trips in both
// roles with and without context takeover, window sizes checked by decoding the DEFLATE stream
// independently, invalid data, the inflate limit against a deflate bomb, the zlib pool and its job cap).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import zlib from 'node:zlib';
import { WsmodError } from '../errors.ts';
import { type ExtensionOffer, formatExtension, parseExtensions } from './extensions.ts';
import {
  DEFAULT_DEFLATE,
  type DeflateConfig,
  type DeflateParams,
  DeflateCodec,
  PERMESSAGE_DEFLATE,
  ZLIB_CONCURRENCY,
  ZlibPool,
  defaultZlibPool,
  acceptDeflateResponse,
  deflateOffer,
  negotiateDeflate,
} from './permessage-deflate.ts';

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/** RFC 7692 §7.2.1: the tail removed by the sender and appended again by the receiver. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * What a sender puts in a compressed message (RFC 7692 §7.2.1): raw DEFLATE ended by a sync flush,
 * without the 4-byte tail: the flush ws, Chromium and python-websockets use (not RFC 7692 §7.2.3.4's
 * BFINAL=1 variant).
 */
function deflateMessage(data: Buffer, options: zlib.ZlibOptions = {}): Buffer {
  const out = zlib.deflateRawSync(data, { ...options, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.ok(out.subarray(-4).equals(TAIL), 'a sync flush ends with the tail');
  return out.subarray(0, -4);
}

/** Inflates a compressed message alone, as a fresh receiver would (tail appended, no final block expected). */
function inflateMessage(payload: Buffer, options: zlib.ZlibOptions = {}): Buffer {
  return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), { ...options, finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

function offers(header: string): ExtensionOffer[] {
  const parsed = parseExtensions(header);
  assert.ok(parsed !== null, `test header should parse: ${header}`);
  return parsed;
}

/** The server's answer to a header, against a config (default: DEFAULT_DEFLATE). */
function negotiate(header: string, config: Partial<DeflateConfig> = {}) {
  return negotiateDeflate(offers(header), { ...DEFAULT_DEFLATE, ...config });
}

/** A config with context takeover both ways (the RFC's own default), so responses hold only what the offer asked. */
const TAKEOVER: Partial<DeflateConfig> = { serverNoContextTakeover: false, clientNoContextTakeover: false };

function params(p: Partial<DeflateParams> = {}): DeflateParams {
  return { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, ...p };
}

/** Repetitive but not trivial text: lines that recur at distances of a few KiB. */
function text(size: number): Buffer {
  let s = '';
  for (let i = 0; s.length < size; i++) s += `line ${i % 97}: the quick brown fox ${i % 13} jumps over the lazy dog ${i % 7} — ✓\n`;
  const b = Buffer.from(s);
  // Cut on a character boundary: the text is ASCII except "—" and "✓" (3 bytes each).
  let end = Math.min(size, b.length);
  while (end > 0 && end < b.length && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

/** Text with runs of repeated bytes (indentation, rulers, zero padding): what Z_RLE can compress. */
function runsText(size: number): Buffer {
  let s = '';
  for (let i = 0; s.length < size; i++) {
    s += `${' '.repeat(i % 9)}item ${i % 50} ${'='.repeat(3 + (i % 40))} value ${String(i % 1000).padStart(8, '0')}\n`;
  }
  return Buffer.from(s).subarray(0, size);
}

async function rejectsWith(promise: Promise<unknown>, code: string, closeCode: number): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WsmodError, `expected a WsmodError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.closeCode, closeCode);
    return true;
  });
}

/** A garbage collector, also when node runs without --expose-gc. */
function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

// An independent DEFLATE decoder (RFC 1951, after zlib's puff.c), used to check what zlib cannot:
// the largest back-reference distance in a compressed message, i.e. the window it really needs.

const LBASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEXT = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DBASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DEXT = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

interface Huffman {
  readonly count: number[];
  readonly symbol: number[];
}

function huffman(lengths: readonly number[]): Huffman {
  const count = new Array<number>(16).fill(0);
  for (const l of lengths) count[l]!++;
  count[0] = 0;
  const offs = new Array<number>(16).fill(0);
  for (let len = 1; len < 15; len++) offs[len + 1] = offs[len]! + count[len]!;
  const symbol = new Array<number>(lengths.length).fill(0);
  lengths.forEach((l, sym) => {
    if (l !== 0) symbol[offs[l]!++] = sym;
  });
  return { count, symbol };
}

/**
 * Decodes a raw DEFLATE stream that ends at a block boundary on a byte boundary (a compressed
 * message with the tail put back). Returns the data and the largest match distance used.
 */
function decodeDeflate(input: Buffer): { data: Buffer; maxDistance: number; matches: number } {
  let pos = 0;
  let bitbuf = 0;
  let bitcnt = 0;
  const out: number[] = [];
  let maxDistance = 0;
  let matches = 0;
  const bits = (need: number): number => {
    let val = bitbuf;
    while (bitcnt < need) {
      if (pos >= input.length) throw new Error('DEFLATE stream ends early');
      val |= input[pos++]! << bitcnt;
      bitcnt += 8;
    }
    bitbuf = val >>> need;
    bitcnt -= need;
    return val & ((1 << need) - 1);
  };
  const decode = (h: Huffman): number => {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= 15; len++) {
      code |= bits(1);
      const count = h.count[len]!;
      if (code - count < first) return h.symbol[index + (code - first)]!;
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw new Error('invalid Huffman code');
  };
  const codes = (lit: Huffman, dist: Huffman): void => {
    for (;;) {
      const sym = decode(lit);
      if (sym < 256) out.push(sym);
      else if (sym === 256) return;
      else {
        const li = sym - 257;
        if (li >= 29) throw new Error('invalid length symbol');
        const length = LBASE[li]! + bits(LEXT[li]!);
        const di = decode(dist);
        if (di >= 30) throw new Error('invalid distance symbol');
        const distance = DBASE[di]! + bits(DEXT[di]!);
        if (distance > out.length) throw new Error('distance too far back');
        maxDistance = Math.max(maxDistance, distance);
        matches++;
        for (let i = 0; i < length; i++) out.push(out[out.length - distance]!);
      }
    }
  };
  const fixedLit = huffman([...new Array<number>(144).fill(8), ...new Array<number>(112).fill(9), ...new Array<number>(24).fill(7), ...new Array<number>(8).fill(8)]);
  const fixedDist = huffman(new Array<number>(30).fill(5));
  let last = 0;
  while (last === 0 && pos < input.length) {
    last = bits(1);
    const type = bits(2);
    if (type === 0) {
      bitbuf = 0;
      bitcnt = 0;
      const len = input.readUInt16LE(pos);
      const nlen = input.readUInt16LE(pos + 2);
      if ((len ^ 0xffff) !== nlen) throw new Error('stored block length mismatch');
      pos += 4;
      for (let i = 0; i < len; i++) out.push(input[pos + i]!);
      pos += len;
    } else if (type === 1) {
      codes(fixedLit, fixedDist);
    } else if (type === 2) {
      const nlen = bits(5) + 257;
      const ndist = bits(5) + 1;
      const ncode = bits(4) + 4;
      const cl = new Array<number>(19).fill(0);
      for (let i = 0; i < ncode; i++) cl[CL_ORDER[i]!] = bits(3);
      const clh = huffman(cl);
      const lengths: number[] = [];
      while (lengths.length < nlen + ndist) {
        const sym = decode(clh);
        if (sym < 16) lengths.push(sym);
        else if (sym === 16) {
          const prev = lengths.at(-1);
          if (prev === undefined) throw new Error('repeat without a previous length');
          for (let n = 3 + bits(2); n > 0; n--) lengths.push(prev);
        } else if (sym === 17) for (let n = 3 + bits(3); n > 0; n--) lengths.push(0);
        else for (let n = 11 + bits(7); n > 0; n--) lengths.push(0);
      }
      codes(huffman(lengths.slice(0, nlen)), huffman(lengths.slice(nlen, nlen + ndist)));
    } else throw new Error('invalid block type');
  }
  return { data: Buffer.from(out), maxDistance, matches };
}

// ---------------------------------------------------------------------------------------------------
// parseExtensions
// ---------------------------------------------------------------------------------------------------

describe('parseExtensions', () => {
  test('an absent, empty or blank header is an empty list', () => {
    assert.deepEqual(parseExtensions(undefined), []);
    assert.deepEqual(parseExtensions(''), []);
    assert.deepEqual(parseExtensions('   \t '), []);
    assert.deepEqual(parseExtensions([]), []);
  });

  test('one extension, without and with parameters', () => {
    assert.deepEqual(parseExtensions('permessage-deflate'), [{ name: 'permessage-deflate', params: [] }]);
    assert.deepEqual(parseExtensions('permessage-deflate; client_max_window_bits; server_max_window_bits=10'), [
      {
        name: 'permessage-deflate',
        params: [
          ['client_max_window_bits', true],
          ['server_max_window_bits', '10'],
        ],
      },
    ]);
  });

  test('a list of offers, in order, with optional whitespace anywhere it may be', () => {
    assert.deepEqual(parseExtensions(' permessage-deflate ;server_no_context_takeover , x-webkit-deflate-frame,\tpermessage-deflate ; a = 1 ;b '), [
      { name: 'permessage-deflate', params: [['server_no_context_takeover', true]] },
      { name: 'x-webkit-deflate-frame', params: [] },
      {
        name: 'permessage-deflate',
        params: [
          ['a', '1'],
          ['b', true],
        ],
      },
    ]);
  });

  test('names and parameter names are lowercased, values are kept as sent', () => {
    assert.deepEqual(parseExtensions('PerMessage-Deflate; Server_Max_Window_Bits=Ab'), [
      { name: 'permessage-deflate', params: [['server_max_window_bits', 'Ab']] },
    ]);
  });

  test('quoted values: a quoted token, with quoted-pairs, is its content', () => {
    assert.deepEqual(parseExtensions('permessage-deflate; client_max_window_bits="10"'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', '10']] },
    ]);
    assert.deepEqual(parseExtensions('x; a="1\\2"; b=3'), [
      {
        name: 'x',
        params: [
          ['a', '12'],
          ['b', '3'],
        ],
      },
    ]);
    // A quoted comma or semicolon does not split the list, but the content must be a token (RFC 6455 §9.1).
    assert.equal(parseExtensions('x; a="1,2"'), null);
    assert.equal(parseExtensions('x; a="1;2"'), null);
  });

  test('repeated header values joined: an array is one comma-separated list', () => {
    assert.deepEqual(parseExtensions(['permessage-deflate; client_max_window_bits', 'x-foo']), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
      { name: 'x-foo', params: [] },
    ]);
  });

  test('empty list elements between and after offers are ignored (RFC 7230 §7)', () => {
    const two = [
      { name: 'a', params: [] },
      { name: 'b', params: [] },
    ];
    assert.deepEqual(parseExtensions('a, , b'), two);
    assert.deepEqual(parseExtensions('a,,b'), two);
    assert.deepEqual(parseExtensions('a ,\t, ,b , '), two);
    assert.deepEqual(parseExtensions('a,'), [{ name: 'a', params: [] }]);
  });

  const malformed = [
    'permessage-deflate;',
    'permessage-deflate; ',
    'permessage-deflate;;server_no_context_takeover',
    'permessage-deflate; =10',
    'permessage-deflate; server_max_window_bits=',
    'permessage-deflate; server_max_window_bits= ;',
    'permessage-deflate; server_max_window_bits=1 0',
    'permessage-deflate server_no_context_takeover',
    'permessage-deflate; a="10',
    'permessage-deflate; a=""',
    'permessage-deflate; a="1 0"',
    'permessage-deflate; a=10"',
    '"permessage-deflate"',
    'permessage-deflate; a b',
    '; permessage-deflate',
    ',',
    ', ,',
    'permessage/deflate',
    'permessage-deflate; a=(1)',
    'permessage-deflate; a@b=1',
    'perméssage-deflate',
  ];
  for (const header of malformed) {
    test(`malformed: ${JSON.stringify(header)} → null`, () => {
      assert.equal(parseExtensions(header), null);
    });
  }

  test('formatExtension writes what parseExtensions reads', () => {
    const params = [
      ['server_no_context_takeover', true],
      ['client_max_window_bits', '12'],
    ] as const;
    const header = formatExtension('permessage-deflate', params);
    assert.equal(header, 'permessage-deflate; server_no_context_takeover; client_max_window_bits=12');
    assert.deepEqual(parseExtensions(header), [{ name: 'permessage-deflate', params: params.map((p) => [...p]) }]);
    assert.equal(formatExtension('permessage-deflate', []), 'permessage-deflate');
  });
});

// ---------------------------------------------------------------------------------------------------
// negotiateDeflate (server side, RFC 7692 §5, §7.1)
// ---------------------------------------------------------------------------------------------------

describe('negotiateDeflate', () => {
  test('no offer: nothing negotiated', () => {
    assert.equal(negotiateDeflate([], DEFAULT_DEFLATE), undefined);
    assert.equal(negotiate('x-webkit-deflate-frame, deflate-frame'), undefined);
    assert.equal(negotiate('permessage-bzip2'), undefined);
  });

  test('a plain offer with context takeover configured: accepted, answered without parameters', () => {
    const r = negotiate('permessage-deflate', TAKEOVER);
    assert.deepEqual(r, { params: params(), response: 'permessage-deflate' });
  });

  test('a plain offer with the defaults: no context takeover either way, both answered', () => {
    const r = negotiate('permessage-deflate');
    assert.deepEqual(r, {
      params: params({ serverNoContextTakeover: true, clientNoContextTakeover: true }),
      response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    });
  });

  test('an unrelated extension before permessage-deflate is skipped', () => {
    assert.equal(negotiate('x-webkit-deflate-frame, permessage-deflate', TAKEOVER)?.response, 'permessage-deflate');
  });

  const invalidFirst: ReadonlyArray<readonly [string, string]> = [
    ['a duplicate parameter', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover'],
    ['a duplicate client_max_window_bits', 'permessage-deflate; client_max_window_bits; client_max_window_bits=10'],
    ['an unknown parameter', 'permessage-deflate; x_unknown'],
    ['an unknown parameter with a value', 'permessage-deflate; mux=1'],
    ['server_max_window_bits without a value', 'permessage-deflate; server_max_window_bits'],
    ['server_max_window_bits=7', 'permessage-deflate; server_max_window_bits=7'],
    ['server_max_window_bits=16', 'permessage-deflate; server_max_window_bits=16'],
    ['server_max_window_bits=0', 'permessage-deflate; server_max_window_bits=0'],
    ['server_max_window_bits=010', 'permessage-deflate; server_max_window_bits=010'],
    ['server_max_window_bits=1e1', 'permessage-deflate; server_max_window_bits=1e1'],
    ['client_max_window_bits=16', 'permessage-deflate; client_max_window_bits=16'],
    ['client_max_window_bits=7', 'permessage-deflate; client_max_window_bits=7'],
    ['a value on server_no_context_takeover', 'permessage-deflate; server_no_context_takeover=1'],
    ['a value on client_no_context_takeover', 'permessage-deflate; client_no_context_takeover=true'],
  ];
  for (const [what, first] of invalidFirst) {
    test(`fallback: first offer with ${what} is declined, the second (acceptable) one is chosen`, () => {
      // Alone, the invalid offer gets no extension at all.
      assert.equal(negotiate(first, TAKEOVER), undefined, `${first} alone must be declined`);
      const r = negotiate(`${first}, permessage-deflate; client_max_window_bits=11`, TAKEOVER);
      assert.deepEqual(r, {
        params: params({ clientMaxWindowBits: 11 }),
        response: 'permessage-deflate; client_max_window_bits=11',
      });
    });
  }

  test('fallback over several offers: the first acceptable one wins, later ones are not looked at', () => {
    const r = negotiate('permessage-deflate; bogus, permessage-deflate; server_max_window_bits=9, permessage-deflate', TAKEOVER);
    assert.deepEqual(r, { params: params({ serverMaxWindowBits: 9 }), response: 'permessage-deflate; server_max_window_bits=9' });
  });

  test('every offer invalid: declined', () => {
    assert.equal(negotiate('permessage-deflate; a, permessage-deflate; server_max_window_bits=20'), undefined);
  });

  test('server_no_context_takeover offered: accepted and answered, even when the config allows takeover', () => {
    const r = negotiate('permessage-deflate; server_no_context_takeover', TAKEOVER);
    assert.deepEqual(r, { params: params({ serverNoContextTakeover: true }), response: 'permessage-deflate; server_no_context_takeover' });
  });

  test('client_no_context_takeover offered: accepted; the client keeps to it, answering it is up to the config', () => {
    const r = negotiate('permessage-deflate; client_no_context_takeover', TAKEOVER);
    assert.equal(r?.response, 'permessage-deflate');
    const d = negotiate('permessage-deflate; client_no_context_takeover');
    assert.equal(d?.response, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    assert.equal(d?.params.clientNoContextTakeover, true);
  });

  test('config serverNoContextTakeover alone: answered server_no_context_takeover', () => {
    const r = negotiate('permessage-deflate', { ...TAKEOVER, serverNoContextTakeover: true });
    assert.deepEqual(r, { params: params({ serverNoContextTakeover: true }), response: 'permessage-deflate; server_no_context_takeover' });
  });

  test('config clientNoContextTakeover alone: answered client_no_context_takeover', () => {
    const r = negotiate('permessage-deflate', { ...TAKEOVER, clientNoContextTakeover: true });
    assert.deepEqual(r, { params: params({ clientNoContextTakeover: true }), response: 'permessage-deflate; client_no_context_takeover' });
  });

  test('server_max_window_bits=10 offered, config 15: answered 10', () => {
    const r = negotiate('permessage-deflate; server_max_window_bits=10', TAKEOVER);
    assert.deepEqual(r, { params: params({ serverMaxWindowBits: 10 }), response: 'permessage-deflate; server_max_window_bits=10' });
  });

  test('server_max_window_bits offered above the config: answered with the config (never above the offer)', () => {
    const r = negotiate('permessage-deflate; server_max_window_bits=14', { ...TAKEOVER, serverMaxWindowBits: 11 });
    assert.equal(r?.response, 'permessage-deflate; server_max_window_bits=11');
    assert.equal(r?.params.serverMaxWindowBits, 11);
    // 15 offered and 15 configured: answered (an offered value may always be echoed).
    assert.equal(negotiate('permessage-deflate; server_max_window_bits=15', TAKEOVER)?.response, 'permessage-deflate; server_max_window_bits=15');
  });

  test('server_max_window_bits quoted in the offer is read as its token', () => {
    assert.equal(negotiate('permessage-deflate; server_max_window_bits="12"', TAKEOVER)?.params.serverMaxWindowBits, 12);
  });

  test('config serverMaxWindowBits 12 without an offer: answered 12 (a server may limit itself)', () => {
    const r = negotiate('permessage-deflate', { ...TAKEOVER, serverMaxWindowBits: 12 });
    assert.deepEqual(r, { params: params({ serverMaxWindowBits: 12 }), response: 'permessage-deflate; server_max_window_bits=12' });
  });

  test('client_max_window_bits is never answered unless offered, whatever the config', () => {
    for (const clientMaxWindowBits of [8, 9, 12, 15]) {
      for (const header of ['permessage-deflate', 'permessage-deflate; server_max_window_bits=10', 'permessage-deflate; client_no_context_takeover']) {
        for (const base of [TAKEOVER, {}]) {
          const r = negotiate(header, { ...base, clientMaxWindowBits });
          assert.ok(r !== undefined, 'accepted');
          assert.doesNotMatch(r.response, /client_max_window_bits/, `${header} with config ${clientMaxWindowBits}`);
          assert.equal(r.params.clientMaxWindowBits, 15, 'the client may use its full window');
        }
      }
    }
  });

  test('client_max_window_bits offered without a value, config 12: answered 12', () => {
    const r = negotiate('permessage-deflate; client_max_window_bits', { ...TAKEOVER, clientMaxWindowBits: 12 });
    assert.deepEqual(r, { params: params({ clientMaxWindowBits: 12 }), response: 'permessage-deflate; client_max_window_bits=12' });
  });

  test('client_max_window_bits offered without a value, config 15: nothing to answer', () => {
    const r = negotiate('permessage-deflate; client_max_window_bits', TAKEOVER);
    assert.deepEqual(r, { params: params(), response: 'permessage-deflate' });
  });

  test('client_max_window_bits=9 offered: answered with at most 9', () => {
    for (const clientMaxWindowBits of [8, 9, 12, 15]) {
      const r = negotiate('permessage-deflate; client_max_window_bits=9', { ...TAKEOVER, clientMaxWindowBits });
      assert.ok(r !== undefined, 'accepted');
      const answered = /client_max_window_bits=(\d+)/.exec(r.response);
      assert.ok(answered !== null, `an offered value is answered (config ${clientMaxWindowBits}): ${r.response}`);
      assert.ok(Number(answered[1]) <= 9, r.response);
      assert.equal(Number(answered[1]), Math.min(9, clientMaxWindowBits));
      assert.equal(r.params.clientMaxWindowBits, Math.min(9, clientMaxWindowBits));
    }
  });

  test('every parameter at once', () => {
    const r = negotiate(
      'permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits',
      { ...TAKEOVER, clientMaxWindowBits: 10 },
    );
    assert.deepEqual(r, {
      params: { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 9, clientMaxWindowBits: 10 },
      response: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10',
    });
  });

  test('the response always parses and is accepted by the client side for the offer it answers', () => {
    const headers = [
      'permessage-deflate',
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; client_max_window_bits=9',
      'permessage-deflate; server_max_window_bits=8',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
      'permessage-deflate; server_max_window_bits=12; client_max_window_bits=10',
    ];
    const configs: Array<Partial<DeflateConfig>> = [{}, TAKEOVER, { serverMaxWindowBits: 9, clientMaxWindowBits: 8 }, { ...TAKEOVER, serverMaxWindowBits: 13 }];
    for (const header of headers) {
      for (const config of configs) {
        const r = negotiate(header, config);
        assert.ok(r !== undefined, header);
        const [response] = offers(r.response);
        const [offer] = offers(header);
        const accepted = acceptDeflateResponse(response!, offer!);
        assert.ok(typeof accepted === 'object', `${header} / ${JSON.stringify(config)}: ${String(accepted)}`);
        const what = `both sides agree on ${header} / ${JSON.stringify(config)} → ${r.response}`;
        assert.equal(accepted.serverNoContextTakeover, r.params.serverNoContextTakeover, what);
        assert.equal(accepted.serverMaxWindowBits, r.params.serverMaxWindowBits, what);
        assert.equal(accepted.clientMaxWindowBits, r.params.clientMaxWindowBits, what);
        // The server may keep an inflate context the client does not need (harmless); never the reverse.
        assert.ok(!r.params.clientNoContextTakeover || accepted.clientNoContextTakeover, what);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Client side: deflateOffer and acceptDeflateResponse
// ---------------------------------------------------------------------------------------------------

describe('deflateOffer', () => {
  test('formats the wishes as one offer', () => {
    assert.equal(deflateOffer({}), PERMESSAGE_DEFLATE);
    assert.equal(deflateOffer({ clientMaxWindowBits: true }), 'permessage-deflate; client_max_window_bits');
    assert.equal(
      deflateOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 }),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12',
    );
    assert.equal(deflateOffer({ serverNoContextTakeover: false, clientMaxWindowBits: false }), 'permessage-deflate');
  });
});

describe('acceptDeflateResponse', () => {
  const check = (response: string, offer: string): DeflateParams | string => {
    const [r] = offers(response);
    const [o] = offers(offer);
    return acceptDeflateResponse(r!, o!);
  };

  test('accepts a plain response to a plain offer: context takeover, 15-bit windows', () => {
    assert.deepEqual(check('permessage-deflate', 'permessage-deflate'), params());
  });

  test('accepts parameters the server may add on its own', () => {
    assert.deepEqual(
      check('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10', 'permessage-deflate'),
      params({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10 }),
    );
  });

  test('client_no_context_takeover offered: kept even when the server does not repeat it', () => {
    assert.equal((check('permessage-deflate', 'permessage-deflate; client_no_context_takeover') as DeflateParams).clientNoContextTakeover, true);
  });

  test('client_max_window_bits: the answered value, else the offered value, else 15', () => {
    assert.equal((check('permessage-deflate; client_max_window_bits=9', 'permessage-deflate; client_max_window_bits') as DeflateParams).clientMaxWindowBits, 9);
    assert.equal((check('permessage-deflate; client_max_window_bits=9', 'permessage-deflate; client_max_window_bits=10') as DeflateParams).clientMaxWindowBits, 9);
    assert.equal((check('permessage-deflate', 'permessage-deflate; client_max_window_bits=10') as DeflateParams).clientMaxWindowBits, 10);
    assert.equal((check('permessage-deflate', 'permessage-deflate; client_max_window_bits') as DeflateParams).clientMaxWindowBits, 15);
  });

  test('server_max_window_bits at or below the offered value is accepted', () => {
    assert.equal((check('permessage-deflate; server_max_window_bits=10', 'permessage-deflate; server_max_window_bits=10') as DeflateParams).serverMaxWindowBits, 10);
    assert.equal((check('permessage-deflate; server_max_window_bits=8', 'permessage-deflate; server_max_window_bits=10') as DeflateParams).serverMaxWindowBits, 8);
  });

  const refusals: ReadonlyArray<readonly [string, string, string, RegExp]> = [
    ['another extension', 'x-webkit-deflate-frame', 'permessage-deflate', /unexpected extension/],
    ['an unknown parameter', 'permessage-deflate; foo', 'permessage-deflate', /invalid/],
    ['a duplicate parameter', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', 'permessage-deflate', /invalid/],
    ['server_max_window_bits out of range', 'permessage-deflate; server_max_window_bits=16', 'permessage-deflate', /invalid/],
    ['server_max_window_bits without a value', 'permessage-deflate; server_max_window_bits', 'permessage-deflate', /invalid/],
    ['a value on a no_context_takeover', 'permessage-deflate; client_no_context_takeover=1', 'permessage-deflate', /invalid/],
    ['server_max_window_bits above the offer', 'permessage-deflate; server_max_window_bits=12', 'permessage-deflate; server_max_window_bits=10', /above the offered/],
    ['server_max_window_bits offered but not answered', 'permessage-deflate', 'permessage-deflate; server_max_window_bits=10', /missing/],
    ['server_no_context_takeover offered but not answered', 'permessage-deflate', 'permessage-deflate; server_no_context_takeover', /missing/],
    ['client_max_window_bits not offered', 'permessage-deflate; client_max_window_bits=10', 'permessage-deflate', /not offered/],
    ['client_max_window_bits answered without a value', 'permessage-deflate; client_max_window_bits', 'permessage-deflate; client_max_window_bits', /needs a value/],
    ['client_max_window_bits above the offer', 'permessage-deflate; client_max_window_bits=12', 'permessage-deflate; client_max_window_bits=10', /above the offered/],
  ];
  for (const [what, response, offer, reason] of refusals) {
    test(`refuses ${what}`, () => {
      const r = check(response, offer);
      assert.equal(typeof r, 'string', `${response} to ${offer} must be refused`);
      assert.match(r as string, reason);
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// DeflateCodec
// ---------------------------------------------------------------------------------------------------

describe('DeflateCodec', () => {
  const sizes: ReadonlyArray<readonly [string, () => Buffer]> = [
    ['0 bytes', () => Buffer.alloc(0)],
    ['1 byte', () => Buffer.from('x')],
    ['1023 bytes of text', () => text(1023)],
    ['1024 bytes of text', () => text(1024)],
    ['64 KiB random', () => randomBytes(64 * 1024)],
    ['1 MiB of text', () => text(1024 * 1024)],
  ];
  const modes = [
    ['no context takeover', params({ serverNoContextTakeover: true, clientNoContextTakeover: true })],
    ['context takeover', params()],
  ] as const;
  const directions = [
    ['server compresses, client decompresses', 'server', 'client'],
    ['client compresses, server decompresses', 'client', 'server'],
  ] as const;

  for (const [mode, p] of modes) {
    for (const [direction, from, to] of directions) {
      test(`round trips of 0 B to 1 MiB, ${mode}, ${direction}`, async () => {
        const sender = new DeflateCodec(p, from);
        const receiver = new DeflateCodec(p, to);
        try {
          // Twice over, so context takeover carries state from one message to the next.
          for (let round = 0; round < 2; round++) {
            for (const [name, make] of sizes) {
              const data = make();
              const compressed = await sender.compress(data);
              assert.ok(!compressed.subarray(-4).equals(TAIL) || compressed.length < 4, `${name}: the tail is removed`);
              const back = await receiver.decompress(compressed, data.length);
              assert.ok(back.equals(data), `${name} (round ${round}) comes back intact`);
              if (name.includes('text') && data.length >= 1024) assert.ok(compressed.length < data.length / 2, `${name} compresses`);
            }
          }
        } finally {
          sender.close();
          receiver.close();
        }
      });
    }
  }

  test('no context takeover: every message inflates alone, and the same message compresses to the same bytes', async () => {
    const codec = new DeflateCodec(params({ serverNoContextTakeover: true, clientNoContextTakeover: true }), 'server');
    const data = text(20_000);
    const a = await codec.compress(data);
    const b = await codec.compress(data);
    assert.ok(a.equals(b), 'a pooled stream is reset before reuse');
    assert.ok(inflateMessage(b).equals(data), 'the second message needs no earlier context');
    codec.close();
  });

  test('context takeover: the second identical message refers back to the first (much smaller), and decodes in sequence', async () => {
    const sender = new DeflateCodec(params(), 'server');
    const receiver = new DeflateCodec(params(), 'client');
    const data = text(20_000);
    const a = await sender.compress(data);
    const b = await sender.compress(data);
    assert.ok(b.length < a.length / 4, `second ${b.length} bytes vs first ${a.length}`);
    assert.throws(() => inflateMessage(b), /distance too far back/, 'alone, the second message is undecodable');
    assert.ok((await receiver.decompress(a, data.length)).equals(data), 'first message decodes');
    assert.ok((await receiver.decompress(b, data.length)).equals(data), 'second message decodes');
    sender.close();
    receiver.close();
  });

  test('an empty message compresses to a stored block RFC 7692 §7.2.3.6 allows (0x00), and back', async () => {
    const codec = new DeflateCodec(params({ serverNoContextTakeover: true, clientNoContextTakeover: true }), 'server');
    const out = await codec.compress(Buffer.alloc(0));
    assert.ok(out.length <= 2, `${out.toString('hex')}`);
    assert.equal((await codec.decompress(Buffer.from([0x00]), 0)).length, 0);
    // RFC 7692 §7.2.3.6's own example of an empty message: 0x02 0x00 (an empty fixed block).
    assert.equal((await codec.decompress(Buffer.from([0x02, 0x00]), 0)).length, 0);
    codec.close();
  });

  test('decompresses RFC 7692 §7.2.3 examples', async () => {
    const codec = new DeflateCodec(params(), 'client');
    // §7.2.3.1: "Hello" compressed.
    assert.equal((await codec.decompress(Buffer.from('f248cdc9c90700', 'hex'), 100)).toString(), 'Hello');
    // §7.2.3.2: the same again, referring back to the first with context takeover.
    assert.equal((await codec.decompress(Buffer.from('f200110000', 'hex'), 100)).toString(), 'Hello');
    // §7.2.3.3: a stored block.
    assert.equal((await codec.decompress(Buffer.from('000500faff48656c6c6f00', 'hex'), 100)).toString(), 'Hello');
    codec.close();
  });

  test('the inflate limit: exactly `limit` bytes pass, one more is WSMOD_ERR_MESSAGE_TOO_BIG (1009)', async () => {
    const codec = new DeflateCodec(params({ serverNoContextTakeover: true, clientNoContextTakeover: true }), 'server');
    const data = text(100_000);
    const compressed = deflateMessage(data);
    assert.equal((await codec.decompress(compressed, data.length)).length, data.length);
    await rejectsWith(codec.decompress(compressed, data.length - 1), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009);
    // The codec keeps working afterwards.
    assert.equal((await codec.decompress(compressed, data.length)).length, data.length);
    codec.close();
  });

  for (const [mode, p] of modes) {
    test(`garbage is WSMOD_ERR_INFLATE (1007), and the codec works afterwards (${mode})`, async () => {
      const codec = new DeflateCodec(p, 'server');
      const garbage = [
        Buffer.from([0xff, 0xff, 0xff, 0xff]), // BTYPE 11: reserved
        Buffer.from('this is not deflate at all, just text that happens to be here'),
        Buffer.from([0x00, 0x05, 0x00, 0x00, 0x00]), // stored block whose NLEN is not ~LEN
      ];
      for (const g of garbage) await rejectsWith(codec.decompress(g, 1 << 20), 'WSMOD_ERR_INFLATE', 1007);
      const data = text(5000);
      assert.ok((await codec.decompress(deflateMessage(data), 1 << 20)).equals(data), 'a valid message after the garbage');
      codec.close();
    });
  }

  test('a deflate bomb (~70 KiB inflating to 70 MiB) stops at the 1 MiB limit with 1009, without the memory', async () => {
    const gc = getGc();
    const bomb = deflateMessage(Buffer.alloc(70 * 1024 * 1024), { level: 9 });
    assert.ok(bomb.length <= 72 * 1024, `the bomb is ${bomb.length} bytes`);
    for (const [, p] of modes) {
      const codec = new DeflateCodec(p, 'server');
      gc();
      const before = process.memoryUsage();
      await rejectsWith(codec.decompress(bomb, 1024 * 1024), 'WSMOD_ERR_MESSAGE_TOO_BIG', 1009);
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      const after = process.memoryUsage();
      const MiB = 1024 * 1024;
      assert.ok(after.rss - before.rss < 32 * MiB, `rss grew by ${((after.rss - before.rss) / MiB).toFixed(1)} MiB`);
      assert.ok(after.arrayBuffers - before.arrayBuffers < 32 * MiB, `arrayBuffers grew by ${((after.arrayBuffers - before.arrayBuffers) / MiB).toFixed(1)} MiB`);
      // The codec is usable after the refusal.
      assert.equal((await codec.decompress(deflateMessage(Buffer.from('ok')), 10)).toString(), 'ok');
      codec.close();
    }
  });

  test('the independent DEFLATE decoder agrees with zlib (a check of the check)', () => {
    for (const data of [Buffer.alloc(0), text(300_000), randomBytes(5000), Buffer.alloc(100_000, 7)]) {
      for (const options of [{}, { level: 1 }, { strategy: zlib.constants.Z_FIXED }, { level: 0 }]) {
        const compressed = zlib.deflateRawSync(data, { ...options, finishFlush: zlib.constants.Z_SYNC_FLUSH });
        assert.ok(decodeDeflate(compressed).data.equals(data), `decoder agrees with zlib (${data.length} bytes, ${JSON.stringify(options)})`);
      }
    }
    // Long-range repetition at the default window really uses distances above 1 KiB.
    assert.ok(decodeDeflate(zlib.deflateRawSync(text(300_000))).maxDistance > 4096, 'long distances at the default window');
  });

  for (const bits of [9, 10, 12]) {
    test(`a negotiated ${bits}-bit window: the server's matches stay within ${2 ** bits} bytes`, async () => {
      const n = negotiate(`permessage-deflate; server_max_window_bits=${bits}`);
      assert.equal(n?.params.serverMaxWindowBits, bits);
      const codec = new DeflateCodec(n!.params, 'server');
      const data = text(300_000);
      const out = await codec.compress(data);
      const decoded = decodeDeflate(Buffer.concat([out, TAIL]));
      assert.ok(decoded.data.equals(data), 'window-limited output decodes');
      assert.ok(decoded.matches > 0, 'the output has matches');
      assert.ok(decoded.maxDistance <= 2 ** bits, `max distance ${decoded.maxDistance}`);
      codec.close();
    });
  }

  test('server_max_window_bits=8: accepted with 8; compressed with Z_RLE, decodable with a 256-byte window', async () => {
    const n = negotiate('permessage-deflate; server_max_window_bits=8');
    assert.ok(n !== undefined, 'accepted');
    assert.equal(n.params.serverMaxWindowBits, 8);
    assert.match(n.response, /server_max_window_bits=8/);
    const codec = new DeflateCodec(n.params, 'server');
    const data = runsText(100 * 1024);
    const out = await codec.compress(data);
    assert.ok(out.length < data.length / 2, `still compresses: ${out.length} bytes`);
    const withTail = Buffer.concat([out, TAIL]);
    assert.ok(inflateMessage(out, { windowBits: 8 }).equals(data), 'zlib inflates it with windowBits 8');
    // zlib's inflate does not enforce the window on one-shot input, so check the distances directly.
    const decoded = decodeDeflate(withTail);
    assert.ok(decoded.data.equals(data), 'RLE output decodes');
    assert.ok(decoded.matches > 0, 'the RLE output has matches');
    assert.ok(decoded.maxDistance <= 256, `max distance ${decoded.maxDistance}`);
    assert.equal(decoded.maxDistance, 1, 'Z_RLE matches are all at distance 1');
    // It is not what the default strategy makes.
    const plain = zlib.deflateRawSync(data, { windowBits: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    assert.ok(!plain.equals(withTail), 'the RLE output differs from the default strategy');
    assert.ok(decodeDeflate(plain).maxDistance > 1, 'the default strategy uses longer distances');
    codec.close();
  });

  test('client_max_window_bits=8: a client codec compresses with Z_RLE too; the server inflates it', async () => {
    const n = negotiate('permessage-deflate; client_max_window_bits=8', TAKEOVER);
    assert.equal(n?.params.clientMaxWindowBits, 8);
    const client = new DeflateCodec(n!.params, 'client');
    const server = new DeflateCodec(n!.params, 'server');
    const data = runsText(50_000);
    for (let i = 0; i < 2; i++) {
      const out = await client.compress(data);
      const decoded = decodeDeflate(Buffer.concat([out, TAIL]));
      assert.ok(decoded.matches > 0, 'the RLE output has matches');
      assert.equal(decoded.maxDistance, 1, `max distance ${decoded.maxDistance}`);
      assert.ok((await server.decompress(out, data.length)).equals(data), 'the server inflates the RLE message');
    }
    client.close();
    server.close();
  });

  test('the threshold is the config value', () => {
    assert.equal(new DeflateCodec(params(), 'server').threshold, DEFAULT_DEFLATE.threshold);
    assert.equal(new DeflateCodec(params(), 'server', { ...DEFAULT_DEFLATE, threshold: 7 }).threshold, 7);
  });

  test(`a pool runs at most ZLIB_CONCURRENCY (${ZLIB_CONCURRENCY}) zlib jobs at once by default, and every job completes`, async () => {
    const pool = new ZlibPool();
    assert.equal(pool.maxJobs, ZLIB_CONCURRENCY);
    const defaultBefore = defaultZlibPool.completed;
    const data = text(200_000);
    const compressed = deflateMessage(data);
    const jobs: Array<Promise<Buffer>> = [];
    const codecs: DeflateCodec[] = [];
    let maxWaiting = 0;
    for (let i = 0; i < 120; i++) {
      const codec = new DeflateCodec(i % 3 === 0 ? params() : params({ serverNoContextTakeover: true, clientNoContextTakeover: true }), 'server', DEFAULT_DEFLATE, pool);
      codecs.push(codec);
      jobs.push(i % 2 === 0 ? codec.compress(data) : codec.decompress(compressed, data.length));
      // A job that fails must release its slot too.
      if (i % 10 === 0) jobs.push(codec.decompress(Buffer.from([0xff]), 10).catch(() => Buffer.alloc(0)));
      maxWaiting = Math.max(maxWaiting, pool.waiting);
    }
    const results = await Promise.all(jobs);
    assert.equal(results.length, 132);
    for (let i = 0; i < 120; i++) {
      if (i % 2 === 0) assert.ok(inflateMessage(results[i + Math.ceil(i / 10)]!).equals(data), `compressed job ${i} is intact`);
    }
    assert.ok(maxWaiting > 0, 'jobs queued behind the cap (the test exercises it)');
    assert.equal(pool.peak, ZLIB_CONCURRENCY, 'the cap was reached and never passed');
    assert.equal(pool.running, 0);
    assert.equal(pool.waiting, 0);
    assert.equal(pool.completed, 132);
    assert.ok(pool.idle <= 2 * 8, `idle streams are bounded (${pool.idle})`);
    assert.equal(defaultZlibPool.completed, defaultBefore, 'codecs given a pool do not use the default one');
    for (const c of codecs) c.close();
    // Slots were all given back: a fresh job still runs.
    const codec = new DeflateCodec(params(), 'server', DEFAULT_DEFLATE, pool);
    assert.ok((await codec.compress(Buffer.from('after'))).length > 0, 'a job after the test still runs');
    codec.close();
    pool.close();
    assert.equal(pool.idle, 0);
  });

  test('a pool of 2 jobs: two run, the rest wait in order; a slot is handed on, never shared', async () => {
    const pool = new ZlibPool({ maxJobs: 2, maxIdle: 1 });
    const started: number[] = [];
    const release: Array<() => void> = [];
    const jobs = [0, 1, 2, 3, 4].map((n) =>
      pool.run(async () => {
        started.push(n);
        await new Promise<void>((resolve) => release.push(resolve));
        return n;
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, [0, 1]);
    assert.equal(pool.waiting, 3);
    release.shift()!();
    // A job arriving while the slot is being handed over waits behind those already waiting.
    const late = pool.run(async () => {
      started.push(5);
      return 5;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, [0, 1, 2]);
    assert.equal(pool.running, 2);
    while (release.length > 0 || started.length < 6) {
      release.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(await Promise.all([...jobs, late]), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
    assert.equal(pool.peak, 2);
    assert.equal(pool.running, 0);
    assert.throws(() => new ZlibPool({ maxJobs: 0 }), RangeError);
  });

  test('idle streams: borrowed per message without context takeover, at most maxIdle kept', async () => {
    const pool = new ZlibPool({ maxIdle: 1 });
    const noTakeover = params({ serverNoContextTakeover: true, clientNoContextTakeover: true });
    const codecs = [1, 2, 3].map(() => new DeflateCodec(noTakeover, 'server', DEFAULT_DEFLATE, pool));
    const data = text(5000);
    const out = await Promise.all(codecs.map((c) => c.compress(data)));
    assert.equal(pool.idle, 1, 'three streams were used at once, one is kept');
    assert.ok(out.every((o) => inflateMessage(o).equals(data)));
    const back = await Promise.all(codecs.map((c, i) => c.decompress(out[i]!, data.length)));
    assert.ok(back.every((b) => b.equals(data)));
    assert.equal(pool.idle, 2, 'one deflate and one inflate stream kept');
    // With context takeover a codec keeps its own streams: the pool lends none.
    const own = new DeflateCodec(params(), 'server', DEFAULT_DEFLATE, pool);
    await own.compress(data);
    assert.equal(pool.idle, 2);
    own.close();
    for (const c of codecs) c.close();
    pool.close();
  });

  test('closing a codec while its own streams work settles the job (no slot is held forever)', async () => {
    const big = text(4 * 1024 * 1024);
    const settled: string[] = [];
    for (let i = 0; i < ZLIB_CONCURRENCY + 4; i++) {
      const codec = new DeflateCodec(params(), 'server');
      const job = i % 2 === 0 ? codec.compress(big) : codec.decompress(deflateMessage(big, { level: 1 }), big.length);
      await new Promise((resolve) => setImmediate(resolve));
      codec.close();
      const outcome = await Promise.race([
        job.then(
          () => 'settled',
          () => 'settled',
        ),
        new Promise<string>((resolve) => setTimeout(() => resolve('pending'), 5000).unref()),
      ]);
      settled.push(outcome);
    }
    assert.deepEqual(new Set(settled), new Set(['settled']));
    const codec = new DeflateCodec(params(), 'server');
    assert.ok((await codec.decompress(deflateMessage(Buffer.from('still')), 100)).equals(Buffer.from('still')), 'a job after the closes still runs');
    codec.close();
  });
});

describe('messages that end with a final block (BFINAL, RFC 7692 §7.2.3.4)', () => {
  // "Hello" compressed as one final block: zlib ends the stream there, leaving the appended tail unread.
  const finalHello = Buffer.from('f348cdc9c90700', 'hex');
  const normal = (s: string) => {
    const out = zlib.deflateRawSync(Buffer.from(s), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    return out.subarray(0, out.length - 4);
  };
  const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

  test('without context takeover, the ended stream is not pooled: other connections keep inflating', async () => {
    const a = new DeflateCodec({ ...params, clientNoContextTakeover: true }, 'server');
    const b = new DeflateCodec({ ...params, clientNoContextTakeover: true }, 'server');
    assert.equal((await a.decompress(finalHello, 1024)).toString(), 'Hello');
    for (let i = 0; i < 20; i++) assert.equal((await b.decompress(normal(`message ${i}`), 1024)).toString(), `message ${i}`);
  });

  test('with context takeover, the next message is inflated by a fresh stream, not lost', async () => {
    const c = new DeflateCodec(params, 'server');
    assert.equal((await c.decompress(finalHello, 1024)).toString(), 'Hello');
    assert.equal((await c.decompress(normal('after the final block'), 1024)).toString(), 'after the final block');
    c.close();
  });
});

test('parseExtensions accepts empty elements before the first extension (RFC 7230 §7)', () => {
  assert.deepEqual(parseExtensions(', permessage-deflate'), [{ name: 'permessage-deflate', params: [] }]);
});

test('a codec with context takeover carries many messages without piling up listeners on its streams', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => void warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const c = new DeflateCodec({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, 'server');
    for (let i = 0; i < 50; i++) {
      const z = await c.compress(Buffer.from(`message ${i} `.repeat(50)));
      assert.equal((await c.decompress(z, 1 << 20)).toString(), `message ${i} `.repeat(50));
    }
    c.close();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
  }
});
