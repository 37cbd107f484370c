import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CaseContext, CaseDefinition, Expectation, ExpectedClose, FrameSpec, ObservedEvent } from '../types.ts';
import { encodeFrame, group1 } from './group1.ts';
import { group2 } from './group2.ts';
import { group3 } from './group3.ts';
import { group4 } from './group4.ts';
import { group5 } from './group5.ts';
import { group10 } from './group10.ts';

const range = (prefix: string, from: number, to: number): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

const expectedIds: Record<string, string[]> = {
  group1: [...range('1.1.', 1, 8), ...range('1.2.', 1, 8)],
  group2: range('2.', 1, 11),
  group3: range('3.', 1, 7),
  group4: [...range('4.1.', 1, 5), ...range('4.2.', 1, 5)],
  group5: range('5.', 1, 20),
  group10: ['10.1.1'],
};

const groups: Record<string, readonly CaseDefinition[]> = { group1, group2, group3, group4, group5, group10 };

/** What a case did with its context, recorded by a fake context (sleep resolves at once). */
interface Recording {
  expectation?: Expectation;
  close?: ExpectedClose;
  /** Every call in order: frames, raw writes (decoded back into frames), messages, closes, pauses. */
  calls: Array<
    | { kind: 'frame'; frame: FrameSpec }
    | { kind: 'raw'; frames: DecodedFrame[]; chopsize?: number }
    | { kind: 'message'; payload: Buffer; binary: boolean; fragmentSize?: number }
    | { kind: 'close'; code?: number }
    | { kind: 'sleep'; ms: number }
    | { kind: 'kill'; seconds: number }
  >;
}

interface DecodedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** A minimal client-frame decoder to check what the one-write helper produced. */
function decodeFrames(bytes: Buffer): DecodedFrame[] {
  const frames: DecodedFrame[] = [];
  let at = 0;
  while (at < bytes.length) {
    const b0 = bytes[at]!;
    const b1 = bytes[at + 1]!;
    let length = b1 & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? bytes.subarray(offset, offset + 4) : Buffer.alloc(4);
    if (masked) offset += 4;
    const payload = Buffer.from(bytes.subarray(offset, offset + length));
    for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload });
    at = offset + length;
  }
  return frames;
}

async function record(c: CaseDefinition): Promise<Recording> {
  const rec: Recording = { calls: [] };
  const received: ObservedEvent[] = [];
  const ctx: CaseContext = {
    expect(expectation, close) {
      rec.expectation = expectation;
      rec.close = close;
    },
    async sendFrame(frame) {
      rec.calls.push({ kind: 'frame', frame });
    },
    async sendRaw(bytes, options) {
      rec.calls.push(
        options?.chopsize === undefined ? { kind: 'raw', frames: decodeFrames(bytes) } : { kind: 'raw', frames: decodeFrames(bytes), chopsize: options.chopsize },
      );
    },
    async sendMessage(payload, binary, options) {
      const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
      rec.calls.push(
        options?.fragmentSize === undefined
          ? { kind: 'message', payload: data, binary }
          : { kind: 'message', payload: data, binary, fragmentSize: options.fragmentSize },
      );
    },
    async sendClose(code) {
      rec.calls.push(code === undefined ? { kind: 'close' } : { kind: 'close', code });
    },
    async sleep(ms) {
      rec.calls.push({ kind: 'sleep', ms });
    },
    killAfter(seconds) {
      rec.calls.push({ kind: 'kill', seconds });
    },
    received,
    note() {},
    elapsed: () => 0,
    isOpen: () => true,
    compress: async () => Promise.reject(new Error('permessage-deflate is not in use')),
    deflate: undefined,
  };
  await c.run(ctx);
  // Let fire-and-forget timers (closeAfter) run to completion: the fake sleep resolves at once.
  await new Promise((resolve) => setImmediate(resolve));
  return rec;
}

function byId(id: string): CaseDefinition {
  for (const list of Object.values(groups)) {
    const found = list.find((c) => c.id === id);
    if (found) return found;
  }
  throw new Error(`no case ${id}`);
}

const asBuffer = (p: string | Buffer): Buffer => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p);

describe('groups 1-5 and 10: case list', () => {
  for (const [name, ids] of Object.entries(expectedIds)) {
    it(`${name} has exactly Autobahn's ids in order`, () => {
      assert.deepEqual(
        groups[name]!.map((c) => c.id),
        ids,
      );
    });
  }

  it('counts: 16, 11, 7, 10, 20, 1', () => {
    assert.deepEqual(
      Object.values(groups).map((g) => g.length),
      [16, 11, 7, 10, 20, 1],
    );
  });

  it('ids are unique across the groups', () => {
    const all = Object.values(groups).flatMap((g) => g.map((c) => c.id));
    assert.equal(new Set(all).size, all.length);
    assert.equal(all.length, 65);
  });

  it('every case has a description and an expectation', () => {
    for (const c of Object.values(groups).flat()) {
      assert.ok(c.description.trim().length > 10, `${c.id} description`);
      assert.ok(c.expectation.trim().length > 10, `${c.id} expectation`);
    }
  });

  it('every case declares its expectation when run, with a closeCode list', async () => {
    for (const c of Object.values(groups).flat()) {
      const rec = await record(c);
      assert.ok(rec.expectation, `${c.id} calls expect()`);
      assert.ok(rec.close && rec.close.closeCode.length > 0, `${c.id} close expectation`);
      if (rec.close.closedByMe) assert.deepEqual(rec.close.closeCode, [1000], c.id);
      else assert.deepEqual(rec.close.closeCode, [1002], c.id);
    }
  });
});

describe('groups 1-5 and 10: spot checks', () => {
  it('encodeFrame round-trips lengths around 125/126/65535/65536 with masking', () => {
    for (const size of [0, 125, 126, 127, 65535, 65536]) {
      const payload = Buffer.alloc(size, 0x2a);
      const [frame] = decodeFrames(encodeFrame({ opcode: 1, payload, fin: false, rsv: 5 }));
      assert.ok(frame);
      assert.equal(frame.opcode, 1);
      assert.equal(frame.fin, false);
      assert.equal(frame.rsv, 5);
      assert.equal(frame.masked, true);
      assert.ok(frame.payload.equals(payload), `size ${size}`);
    }
    const header = encodeFrame({ opcode: 9, payload: 'x', mask: false });
    assert.deepEqual([...header], [0x89, 0x01, 0x78]);
  });

  it('1.1.6 sends 65535 "*" as one text frame and expects the echo; kill after 10 s', async () => {
    const rec = await record(byId('1.1.6'));
    const [send, kill] = rec.calls;
    assert.equal(send?.kind, 'frame');
    if (send?.kind === 'frame') {
      assert.equal(send.frame.opcode, 1);
      assert.ok(asBuffer(send.frame.payload!).equals(Buffer.alloc(65535, 0x2a)));
    }
    assert.deepEqual(kill, { kind: 'kill', seconds: 10 });
    const ok = rec.expectation?.OK?.[0];
    assert.equal(ok?.[0], 'message');
    assert.equal(asBuffer(ok![1]).length, 65535);
    assert.equal(ok?.[2], false);
  });

  it('1.2.8 sends 65536 × 0xFE binary in chops of 997', async () => {
    const rec = await record(byId('1.2.8'));
    const send = rec.calls[0];
    assert.equal(send?.kind, 'frame');
    if (send?.kind === 'frame') {
      assert.equal(send.frame.opcode, 2);
      assert.equal(send.frame.chopsize, 997);
      assert.ok(asBuffer(send.frame.payload!).equals(Buffer.alloc(65536, 0xfe)));
    }
    assert.equal(rec.expectation?.OK?.[0]?.[2], true);
  });

  it('2.3 pings with 00 FF FE FD FC FB 00 FF; 2.5 pings 126 octets and expects failure', async () => {
    const r3 = await record(byId('2.3'));
    assert.deepEqual(r3.expectation?.OK, [['pong', Buffer.from([0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0, 0xff])]]);
    assert.deepEqual(r3.calls.at(-2), { kind: 'sleep', ms: 1000 });
    const r5 = await record(byId('2.5'));
    assert.deepEqual(r5.expectation, { OK: [] });
    assert.deepEqual(r5.close, { closedByMe: false, closeCode: [1002], requireClean: false });
  });

  it('2.10 sends ten pings in one write and expects ten pongs in order; 2.11 chops them octet-wise', async () => {
    const r10 = await record(byId('2.10'));
    const raw = r10.calls[0];
    assert.equal(raw?.kind, 'raw');
    if (raw?.kind === 'raw') {
      assert.equal(raw.frames.length, 10);
      assert.deepEqual(
        raw.frames.map((f) => [f.opcode, f.payload.toString()]),
        Array.from({ length: 10 }, (_, i) => [9, `payload-${i}`]),
      );
    }
    assert.equal(r10.expectation?.OK?.length, 10);
    assert.deepEqual(r10.expectation?.OK?.[9], ['pong', 'payload-9']);
    assert.deepEqual(r10.calls.at(-2), { kind: 'sleep', ms: 3000 });
    const r11 = await record(byId('2.11'));
    const frames = r11.calls.filter((c) => c.kind === 'frame');
    assert.equal(frames.length, 10);
    for (const f of frames) if (f.kind === 'frame') assert.equal(f.frame.chopsize, 1);
  });

  it('2.7 sends an empty pong then closes with 1000 itself', async () => {
    const rec = await record(byId('2.7'));
    assert.deepEqual(rec.calls.slice(0, 2), [
      { kind: 'frame', frame: { opcode: 10, payload: '' } },
      { kind: 'close', code: 1000 },
    ]);
    assert.deepEqual(rec.expectation, { OK: [] });
  });

  it('3.2 sends text, text with RSV=2 and a ping in one write; OK echo or NON-STRICT nothing', async () => {
    const rec = await record(byId('3.2'));
    const raw = rec.calls[0];
    assert.equal(raw?.kind, 'raw');
    if (raw?.kind === 'raw') {
      assert.deepEqual(
        raw.frames.map((f) => [f.opcode, f.rsv, f.payload.toString()]),
        [
          [1, 0, 'Hello, world!'],
          [1, 2, 'Hello, world!'],
          [9, 0, ''],
        ],
      );
    }
    assert.deepEqual(rec.expectation, { OK: [['message', 'Hello, world!', false]], 'NON-STRICT': [] });
  });

  it('3.6 keeps Autobahn\'s wire behaviour (opcode 2, RSV 6); 3.7 is a close frame with RSV 7', async () => {
    assert.deepEqual((await record(byId('3.6'))).calls[0], { kind: 'frame', frame: { opcode: 2, payload: 'Hello, world!', rsv: 6 } });
    assert.deepEqual((await record(byId('3.7'))).calls[0], { kind: 'frame', frame: { opcode: 8, rsv: 7 } });
  });

  it('4.2.5 sends all three frames octet-wise with opcode 15 in the middle', async () => {
    const rec = await record(byId('4.2.5'));
    const frames = rec.calls.filter((c) => c.kind === 'frame');
    assert.deepEqual(
      frames.map((c) => (c.kind === 'frame' ? [c.frame.opcode, c.frame.chopsize] : null)),
      [
        [1, 1],
        [15, 1],
        [9, 1],
      ],
    );
  });

  it('5.15 sends four frames in one write and accepts the first message as OK', async () => {
    const rec = await record(byId('5.15'));
    const raw = rec.calls[0];
    if (raw?.kind !== 'raw') throw new Error('expected one raw write');
    assert.deepEqual(
      raw.frames.map((f) => [f.opcode, f.fin, f.payload.toString()]),
      [
        [1, false, 'fragment1'],
        [0, true, 'fragment2'],
        [0, false, 'fragment3'],
        [1, true, 'fragment4'],
      ],
    );
    assert.deepEqual(rec.expectation, { OK: [['message', 'fragment1fragment2', false]], 'NON-STRICT': [] });
  });

  it('5.16 repeats the orphan-continuation round twice (6 frames)', async () => {
    const rec = await record(byId('5.16'));
    const raw = rec.calls[0];
    if (raw?.kind !== 'raw') throw new Error('expected one raw write');
    assert.deepEqual(
      raw.frames.map((f) => [f.opcode, f.fin]),
      [
        [0, false],
        [1, false],
        [0, true],
        [0, false],
        [1, false],
        [0, true],
      ],
    );
  });

  it('5.19 sends two batches 1 s apart; 5.20 sends the same frames one write each', async () => {
    const r19 = await record(byId('5.19'));
    assert.deepEqual(
      r19.calls.map((c) => c.kind),
      ['raw', 'sleep', 'raw', 'sleep', 'close'],
    );
    assert.deepEqual(r19.calls[1], { kind: 'sleep', ms: 1000 });
    assert.deepEqual(r19.expectation?.OK, [
      ['pong', 'pongme 1!'],
      ['pong', 'pongme 2!'],
      ['message', 'fragment1fragment2fragment3fragment4fragment5', false],
    ]);
    const r20 = await record(byId('5.20'));
    const frames = r20.calls.filter((c) => c.kind === 'frame');
    assert.deepEqual(
      frames.map((c) => (c.kind === 'frame' ? [c.frame.opcode, c.frame.fin ?? true, String(c.frame.payload)] : null)),
      [
        [1, false, 'fragment1'],
        [0, false, 'fragment2'],
        [9, true, 'pongme 1!'],
        [0, false, 'fragment3'],
        [0, false, 'fragment4'],
        [9, true, 'pongme 2!'],
        [0, true, 'fragment5'],
      ],
    );
    assert.ok(r20.calls.some((c) => c.kind === 'sleep' && c.ms === 1000));
  });

  it('10.1.1 sends 65536 "*" through sendMessage with fragmentSize 1300', async () => {
    const rec = await record(byId('10.1.1'));
    const send = rec.calls[0];
    if (send?.kind !== 'message') throw new Error('expected sendMessage');
    assert.equal(send.fragmentSize, 1300);
    assert.equal(send.binary, false);
    assert.ok(send.payload.equals(Buffer.alloc(65536, 0x2a)));
    assert.deepEqual(rec.calls[1], { kind: 'kill', seconds: 10 });
  });
});
