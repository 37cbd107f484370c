import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseExtensions } from '../../protocol/extensions.ts';
import { ALL_CASES, BASE_CASES, DEFLATE_CASES } from '../catalog.ts';
import type { CaseContext, CaseDefinition, Expectation, ExpectedClose, ObservedEvent } from '../types.ts';
import { DEFLATE_DATA, GROUP12_DATA, messageAt } from './deflate-data.ts';
import { group12 } from './group12.ts';
import { group13 } from './group13.ts';

// Autobahn's MSG_SIZES (case12_x_x.py), written out again here on purpose: (length, count, wait s, auto-fragment size).
const MSG_SIZES: ReadonlyArray<readonly [number, number, number, number]> = [
  [16, 1000, 60, 0],
  [64, 1000, 60, 0],
  [256, 1000, 120, 0],
  [1024, 1000, 240, 0],
  [4096, 1000, 480, 0],
  [8192, 1000, 480, 0],
  [16384, 1000, 480, 0],
  [32768, 1000, 480, 0],
  [65536, 1000, 480, 0],
  [131072, 1000, 480, 0],
  [8192, 1000, 480, 256],
  [16384, 1000, 480, 256],
  [32768, 1000, 480, 256],
  [65536, 1000, 480, 256],
  [131072, 1000, 480, 256],
  [131072, 1000, 480, 1024],
  [131072, 1000, 480, 4096],
  [131072, 1000, 480, 32768],
];

// Autobahn's DEFLATE_PARAMS client offers, (requestNoContextTakeover, requestMaxWindowBits), and how it prints them.
const AUTOBAHN_OFFERS: ReadonlyArray<readonly [string, ReadonlyArray<readonly [boolean, number]>]> = [
  ['[(False, 0)]', [[false, 0]]],
  ['[(True, 0)]', [[true, 0]]],
  ['[(False, 8)]', [[false, 8]]],
  ['[(False, 15)]', [[false, 15]]],
  ['[(True, 8)]', [[true, 8]]],
  ['[(True, 15)]', [[true, 15]]],
  ['[(True, 8), (True, 0), (False, 0)]', [[true, 8], [true, 0], [false, 0]]],
];

/** Parameters of one offer as a sorted list, `name` or `name=value`. */
function offerParams(offer: string): string[] {
  const parsed = parseExtensions(offer);
  assert.ok(parsed !== null && parsed.length === 1, `one extension in "${offer}"`);
  assert.equal(parsed[0]!.name, 'permessage-deflate');
  return parsed[0]!.params.map(([k, v]) => (v === true ? k : `${k}=${v}`)).sort();
}

/** PerMessageDeflateOffer(acceptNoContextTakeover=True, acceptMaxWindowBits=True, requestNoContextTakeover, requestMaxWindowBits). */
function autobahnParams(requestNoContextTakeover: boolean, requestMaxWindowBits: number): string[] {
  const p = ['client_no_context_takeover', 'client_max_window_bits'];
  if (requestNoContextTakeover) p.push('server_no_context_takeover');
  if (requestMaxWindowBits !== 0) p.push(`server_max_window_bits=${requestMaxWindowBits}`);
  return p.sort();
}

const ids = (group: number, subgroups: number) =>
  Array.from({ length: subgroups }, (_, j) => Array.from({ length: 18 }, (_, i) => `${group}.${j + 1}.${i + 1}`)).flat();

test('groups 12 and 13: exact ids, count and order, after group 10 in the catalogue', () => {
  assert.deepEqual(
    group12.map((c) => c.id),
    ids(12, 5),
  );
  assert.deepEqual(
    group13.map((c) => c.id),
    ids(13, 7),
  );
  assert.equal(group12.length, 90);
  assert.equal(group13.length, 126);
  assert.equal(ALL_CASES.length, 517);
  const at = ALL_CASES.findIndex((c) => c.id === '12.1.1');
  assert.equal(ALL_CASES[at - 1]?.id, '10.1.1');
  assert.deepEqual(
    ALL_CASES.slice(at).map((c) => c.id),
    [...ids(12, 5), ...ids(13, 7)],
  );
  assert.equal(BASE_CASES.length, 301);
  assert.ok(BASE_CASES.every((c) => c.deflate === undefined));
  assert.deepEqual(
    DEFLATE_CASES.map((c) => c.id),
    [...ids(12, 5), ...ids(13, 7)],
  );
});

test('every case has its description, expectation, Autobahn wait as timeout, and reports its time', () => {
  for (const c of [...group12, ...group13]) {
    const i = Number(c.id.split('.')[2]) - 1;
    const [length, count, wait, frag] = MSG_SIZES[i]!;
    assert.ok(c.description.length > 40, c.id);
    assert.ok(c.expectation.length > 40, c.id);
    assert.match(c.description, new RegExp(`^Send ${count} compressed (text|binary) messages of ${length} octets`), c.id);
    if (frag > 0) assert.match(c.description, new RegExp(`fragmented into frames of ${frag} octets`), c.id);
    else assert.match(c.description, /each in a single frame/, c.id);
    assert.match(c.expectation, new RegExp(`within ${wait} s`), c.id);
    assert.equal(c.timeout, wait * 1000, c.id);
    assert.equal(c.reportTime, true, c.id);
    assert.ok(c.deflate !== undefined && c.deflate.offers.length > 0, c.id);
  }
});

test('12.x: the default offer; 13.x: the offers of Autobahn\'s parameter tuples, in order', () => {
  for (const c of group12) {
    assert.equal(c.deflate?.offers.length, 1, c.id);
    assert.deepEqual(offerParams(c.deflate!.offers[0]!), autobahnParams(false, 0), c.id);
    assert.match(c.description, /default offer/, c.id);
  }
  for (const c of group13) {
    const j = Number(c.id.split('.')[1]) - 1;
    const [printed, tuples] = AUTOBAHN_OFFERS[j]!;
    const offers = c.deflate!.offers;
    assert.equal(offers.length, tuples.length, c.id);
    tuples.forEach(([nct, bits], k) => assert.deepEqual(offerParams(offers[k]!), autobahnParams(nct, bits), `${c.id} offer ${k + 1}`));
    assert.ok(c.description.includes(`(requestNoContextTakeover, requestMaxWindowBits): ${printed}`), c.id);
  }
});

test('data sets: Autobahn\'s order in 12.x, the JSON one in 13.x; large enough, text ones pure ASCII', () => {
  assert.deepEqual(
    GROUP12_DATA.map((d) => d.key),
    ['json_data1', 'lena512', 'gutenberg_faust', 'html_data1', 'ooms'],
  );
  assert.deepEqual(
    GROUP12_DATA.map((d) => d.binary),
    [false, true, true, false, true],
  );
  for (const d of GROUP12_DATA) {
    const bytes = d.bytes();
    assert.ok(bytes.length > 131072, `${d.key}: ${bytes.length} octets`);
    assert.equal(d.bytes(), bytes, 'built once');
    if (!d.binary) assert.ok(bytes.every((b) => b < 0x80), `${d.key} is ASCII, so every slice is valid UTF-8`);
  }
  assert.equal(DEFLATE_DATA.lena512.bytes().length, 263222);
  assert.equal(DEFLATE_DATA.lena512.bytes().subarray(0, 2).toString('latin1'), 'BM');
  JSON.parse(DEFLATE_DATA.json_data1.bytes().toString());
  assert.ok(DEFLATE_DATA.gutenberg_faust.bytes().toString('utf8').includes('ü'), 'German text with UTF-8 letters');
});

test('messageAt reads the data cyclically, each message starting where the previous one ended', () => {
  const data = Buffer.from('0123456789');
  assert.equal(messageAt(data, 0, 4).toString(), '0123');
  assert.equal(messageAt(data, 1, 4).toString(), '4567');
  assert.equal(messageAt(data, 2, 4).toString(), '8901');
  assert.equal(messageAt(data, 3, 4).toString(), '2345');
  assert.equal(messageAt(data, 5, 2).toString(), '01');
});

interface Sent {
  payload: Buffer;
  binary: boolean;
  fragmentSize?: number;
  compress?: boolean;
}

function fakeContext(): { ctx: CaseContext; sent: Sent[]; closes: number[]; notes: string[]; expectation: () => { e?: Expectation; c?: ExpectedClose } } {
  const sent: Sent[] = [];
  const closes: number[] = [];
  const notes: string[] = [];
  let e: Expectation | undefined;
  let c: ExpectedClose | undefined;
  const received: ObservedEvent[] = [];
  const ctx: CaseContext = {
    expect(expectation, close) {
      e = expectation;
      c = close;
    },
    sendFrame: async () => {},
    sendRaw: async () => {},
    async sendMessage(payload, binary, options) {
      const entry: Sent = { payload: Buffer.from(payload), binary };
      if (options?.fragmentSize !== undefined) entry.fragmentSize = options.fragmentSize;
      if (options?.compress !== undefined) entry.compress = options.compress;
      sent.push(entry);
    },
    async sendClose(code) {
      closes.push(code ?? 1005);
    },
    sleep: async () => {},
    killAfter() {},
    isOpen: () => true,
    received,
    note: (line) => void notes.push(line),
    elapsed: () => 0,
    compress: async (p) => Buffer.from(p),
    deflate: { serverNoContextTakeover: false, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
  };
  return { ctx, sent, closes, notes, expectation: () => (e === undefined || c === undefined ? {} : { e, c }) };
}

function byId(id: string): CaseDefinition {
  const c = DEFLATE_CASES.find((x) => x.id === id);
  assert.ok(c, id);
  return c;
}

test('a case sends one message at a time, the next once the echo matches, and keeps only the last echo', async () => {
  const def = byId('12.4.11'); // HTML (text), 8192 octets, fragments of 256
  const { ctx, sent, closes, expectation } = fakeContext();
  await def.run(ctx);
  const data = DEFLATE_DATA.html_data1.bytes();
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0], { payload: messageAt(data, 0, 8192), binary: false, fragmentSize: 256 });
  const { e, c } = expectation();
  assert.deepEqual(c, { closedByMe: true, closeCode: [1000], requireClean: true });
  assert.deepEqual(e, { OK: [['message', messageAt(data, 999, 8192), false]] });
  for (let k = 0; k < 999; k++) {
    const keep = def.onEvent!(ctx, { type: 'message', data: sent[k]!.payload, binary: false });
    assert.equal(keep, false, `echo ${k + 1} is not kept`);
    assert.deepEqual(sent[k + 1]?.payload, messageAt(data, k + 1, 8192));
  }
  assert.equal(sent.length, 1000);
  assert.equal(def.onEvent!(ctx, { type: 'message', data: sent[999]!.payload, binary: false }), true, 'the last echo is kept');
  assert.equal(sent.length, 1000, 'nothing after the last');
  assert.deepEqual(closes, [], 'the session closes once the kept echo matches the expectation');
});

test('a wrong echo (content or type) is kept, noted, and the client closes at once', async () => {
  for (const wrong of ['content', 'type'] as const) {
    const def = byId('12.2.1'); // bitmap (binary), 16 octets
    const { ctx, sent, closes, notes } = fakeContext();
    await def.run(ctx);
    const echo = Buffer.from(sent[0]!.payload);
    if (wrong === 'content') echo[0] = echo[0]! ^ 0xff;
    assert.equal(def.onEvent!(ctx, { type: 'message', data: echo, binary: wrong !== 'type' }), true);
    assert.deepEqual(closes, [1000]);
    assert.equal(sent.length, 1);
    assert.match(notes.join('\n'), wrong === 'type' ? /type differs/ : /content differs/);
  }
});

test('13.x cases send the JSON data set as text', async () => {
  for (const id of ['13.1.1', '13.7.18']) {
    const def = byId(id);
    const { ctx, sent } = fakeContext();
    await def.run(ctx);
    assert.equal(sent[0]?.binary, false);
    assert.deepEqual(sent[0]?.payload, messageAt(DEFLATE_DATA.json_data1.bytes(), 0, id === '13.1.1' ? 16 : 131072));
    assert.equal(sent[0]?.fragmentSize, id === '13.1.1' ? undefined : 32768);
  }
});
