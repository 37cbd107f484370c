import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CaseContext, CaseDefinition, Expectation, ExpectedClose, FrameSpec, ObservedEvent } from '../types.ts';
import { group7, INVALID_CLOSE_CODES, VALID_CLOSE_CODES } from './group7.ts';
import { filled, group9 } from './group9.ts';

const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}.${i + 1}`);

const GROUP7_IDS = [
  ...range('7.1', 6),
  ...range('7.3', 6),
  '7.5.1',
  ...range('7.7', 13),
  ...range('7.9', 9),
  '7.13.1',
  '7.13.2',
];

const GROUP9_IDS = [
  ...range('9.1', 6),
  ...range('9.2', 6),
  ...range('9.3', 9),
  ...range('9.4', 9),
  ...range('9.5', 6),
  ...range('9.6', 6),
  ...range('9.7', 6),
  ...range('9.8', 6),
];

/** What a case did with a context that only records. */
interface Recording {
  expected?: Expectation;
  close?: ExpectedClose;
  readonly sends: Array<
    | { kind: 'frame'; frame: FrameSpec }
    | { kind: 'message'; payload: Buffer; binary: boolean; fragmentSize?: number }
    | { kind: 'close'; code?: number; reason?: Buffer }
    | { kind: 'raw'; bytes: Buffer }
  >;
  killAfter?: number;
  readonly notes: string[];
}

function recordingContext(): { ctx: CaseContext; rec: Recording; received: ObservedEvent[] } {
  const rec: Recording = { sends: [], notes: [] };
  const received: ObservedEvent[] = [];
  const toBuffer = (b: Buffer | string | undefined) => (typeof b === 'string' ? Buffer.from(b) : (b ?? Buffer.alloc(0)));
  const ctx: CaseContext = {
    expect(expectation, close) {
      rec.expected = expectation;
      rec.close = close;
    },
    async sendFrame(frame) {
      rec.sends.push({ kind: 'frame', frame });
    },
    async sendRaw(bytes) {
      rec.sends.push({ kind: 'raw', bytes });
    },
    async sendMessage(payload, binary, options) {
      const entry: Recording['sends'][number] =
        options?.fragmentSize === undefined
          ? { kind: 'message', payload: toBuffer(payload), binary }
          : { kind: 'message', payload: toBuffer(payload), binary, fragmentSize: options.fragmentSize };
      rec.sends.push(entry);
    },
    async sendClose(code, reason) {
      const entry: Recording['sends'][number] = { kind: 'close' };
      if (code !== undefined) entry.code = code;
      if (reason !== undefined) entry.reason = toBuffer(reason);
      rec.sends.push(entry);
    },
    async sleep() {},
    killAfter(seconds) {
      rec.killAfter = seconds;
    },
    received,
    note(line) {
      rec.notes.push(line);
    },
    elapsed: () => 0,
    isOpen: () => true,
    compress: async () => Promise.reject(new Error('permessage-deflate is not in use')),
    deflate: undefined,
  };
  return { ctx, rec, received };
}

async function runRecorded(def: CaseDefinition) {
  const r = recordingContext();
  await def.run(r.ctx);
  return r;
}

function byId(cases: readonly CaseDefinition[], id: string): CaseDefinition {
  const c = cases.find((x) => x.id === id);
  assert.ok(c, `case ${id} exists`);
  return c;
}

const payloadOf = (e: readonly unknown[] | undefined): Buffer => {
  const p = e?.[1];
  return typeof p === 'string' ? Buffer.from(p) : (p as Buffer);
};

test('group 7 has Autobahn\'s 37 ids in order, group 9 its 54', () => {
  assert.deepEqual(
    group7.map((c) => c.id),
    GROUP7_IDS,
  );
  assert.equal(group7.length, 37);
  assert.deepEqual(
    group9.map((c) => c.id),
    GROUP9_IDS,
  );
  assert.equal(group9.length, 54);
});

test('ids are unique and every case is described', () => {
  const all = [...group7, ...group9];
  assert.equal(new Set(all.map((c) => c.id)).size, all.length);
  for (const c of all) {
    assert.ok(c.description.length > 10, `${c.id} description`);
    assert.ok(c.expectation.length > 10, `${c.id} expectation`);
    assert.equal(typeof c.run, 'function');
  }
});

test('every group 7 case declares an expectation and arms the 1 s kill timer', async () => {
  for (const c of group7) {
    const { rec } = await runRecorded(c);
    assert.ok(rec.expected && rec.close, `${c.id} expects`);
    assert.equal(rec.killAfter, 1, `${c.id} killAfter`);
    assert.ok(rec.sends.length > 0, `${c.id} sends`);
  }
});

test('7.1.x: close ordering and what follows the close', async () => {
  const c1 = await runRecorded(byId(group7, '7.1.1'));
  assert.deepEqual(c1.rec.expected, { OK: [['message', 'Hello World!', false]] });
  assert.deepEqual(c1.rec.close, { closedByMe: true, closeCode: [1000], requireClean: true });

  const c5 = await runRecorded(byId(group7, '7.1.5'));
  assert.deepEqual(
    c5.rec.sends.map((s) => (s.kind === 'frame' ? `${s.frame.opcode}:${s.frame.fin}:${String(s.frame.payload)}` : s.kind)),
    ['1:false:fragment1', 'close', '0:true:fragment2'],
  );

  const c6 = await runRecorded(byId(group7, '7.1.6'));
  assert.equal(byId(group7, '7.1.6').informational, true);
  const big = c6.rec.sends[0];
  assert.ok(big?.kind === 'frame');
  const bigPayload = big.frame.payload as Buffer;
  assert.equal(bigPayload.length, 256 * 1024);
  assert.equal(bigPayload.subarray(0, 20).toString(), 'BAsd7&jh23BAsd7&jh23');
  assert.deepEqual(
    c6.rec.sends.map((s) => (s.kind === 'frame' ? s.frame.opcode : s.kind)),
    [1, 1, 'close', 9],
  );
});

test('7.3.x / 7.5.1: close payloads', async () => {
  const c2 = await runRecorded(byId(group7, '7.3.2'));
  const s2 = c2.rec.sends[0];
  // A close frame whose whole payload is the 1-octet reason "a", sent as the client's close.
  assert.ok(s2?.kind === 'close' && s2.code === undefined);
  assert.equal(s2.reason?.length, 1);
  assert.deepEqual(c2.rec.close, { closedByMe: true, closeCode: [1002], requireClean: false });

  const c5 = await runRecorded(byId(group7, '7.3.5'));
  const s5 = c5.rec.sends[0];
  assert.ok(s5?.kind === 'close');
  assert.equal(2 + (s5.reason?.length ?? 0), 125);

  const c6 = await runRecorded(byId(group7, '7.3.6'));
  const s6 = c6.rec.sends[0];
  assert.ok(s6?.kind === 'close');
  assert.equal(2 + (s6.reason?.length ?? 0), 126);
  assert.deepEqual(c6.rec.close, { closedByMe: true, closeCode: [1002], requireClean: false });

  const c51 = await runRecorded(byId(group7, '7.5.1'));
  const s51 = c51.rec.sends[0];
  assert.ok(s51?.kind === 'close' && s51.reason);
  assert.equal(s51.reason.toString('hex'), 'cebae1bdb9cf83cebcceb5eda080656469746564');
  assert.deepEqual(c51.rec.close?.closeCode, [1002, 1007]);
});

test('7.7.x / 7.9.x / 7.13.x: close codes', async () => {
  assert.deepEqual(VALID_CLOSE_CODES, [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]);
  assert.deepEqual(INVALID_CLOSE_CODES, [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]);
  const c = await runRecorded(byId(group7, '7.7.10'));
  assert.deepEqual(c.rec.sends, [{ kind: 'close', code: 3000 }]);
  assert.deepEqual(c.rec.close, { closedByMe: true, closeCode: [1000, 3000], requireClean: true });
  const d = await runRecorded(byId(group7, '7.9.4'));
  assert.deepEqual(d.rec.sends, [{ kind: 'close', code: 1005 }]);
  assert.deepEqual(d.rec.close, { closedByMe: true, closeCode: [1002], requireClean: false });
  const e = await runRecorded(byId(group7, '7.13.2'));
  assert.deepEqual(e.rec.sends, [{ kind: 'close', code: 65535 }]);
  assert.equal(byId(group7, '7.13.1').informational, true);
});

test('group 9 cases report their duration and have generous timeouts', () => {
  for (const c of group9) {
    assert.equal(c.reportTime, true, c.id);
    assert.ok((c.timeout ?? 0) >= 60_000, `${c.id} timeout`);
  }
  assert.equal(byId(group9, '9.5.1').timeout, 1_000_000);
  assert.equal(byId(group9, '9.7.6').timeout, 480_000);
});

test('9.1 / 9.2: sizes and fill patterns', async () => {
  const sizes = [64 * 1024, 256 * 1024, 1 << 20, 4 << 20, 8 << 20, 16 << 20];
  for (const [group, binary] of [['9.1', false], ['9.2', true]] as const) {
    for (let i = 0; i < sizes.length; i++) {
      const { rec } = await runRecorded(byId(group9, `${group}.${i + 1}`));
      const send = rec.sends[0];
      assert.ok(send?.kind === 'frame');
      assert.equal(send.frame.opcode, binary ? 2 : 1);
      assert.equal((send.frame.payload as Buffer).length, sizes[i]);
      assert.equal(send.frame.chopsize, undefined);
      const ok = rec.expected?.OK?.[0];
      assert.ok(payloadOf(ok).equals(send.frame.payload as Buffer));
      assert.equal(ok?.[2], binary);
    }
  }
  const { rec } = await runRecorded(byId(group9, '9.2.1'));
  const s = rec.sends[0];
  assert.ok(s?.kind === 'frame');
  assert.equal((s.frame.payload as Buffer).subarray(0, 7).toString('hex'), '00fe23faf000fe');
});

test('9.3 / 9.4: 4 MiB in fragments of 64 octets up to 4 MiB', async () => {
  const frags = [64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20];
  for (const [group, binary] of [['9.3', false], ['9.4', true]] as const) {
    for (let i = 0; i < frags.length; i++) {
      const { rec } = await runRecorded(byId(group9, `${group}.${i + 1}`));
      const send = rec.sends[0];
      assert.ok(send?.kind === 'message');
      assert.equal(send.binary, binary);
      assert.equal(send.payload.length, 4 << 20);
      assert.equal(send.fragmentSize, frags[i]);
    }
  }
  const first = (await runRecorded(byId(group9, '9.4.1'))).rec.sends[0];
  assert.ok(first?.kind === 'message' && first.payload[0] === 0xfe);
  const second = (await runRecorded(byId(group9, '9.4.2'))).rec.sends[0];
  assert.ok(second?.kind === 'message' && second.payload[0] === 0x2a);
});

test('9.5 / 9.6: 1 MiB written in chops of 64 to 2048 octets', async () => {
  const chops = [64, 128, 256, 512, 1024, 2048];
  for (const [group, binary] of [['9.5', false], ['9.6', true]] as const) {
    for (let i = 0; i < chops.length; i++) {
      const { rec } = await runRecorded(byId(group9, `${group}.${i + 1}`));
      const send = rec.sends[0];
      assert.ok(send?.kind === 'frame');
      assert.equal(send.frame.opcode, binary ? 2 : 1);
      assert.equal((send.frame.payload as Buffer).length, 1 << 20);
      assert.equal(send.frame.chopsize, chops[i]);
    }
  }
});

test('9.7 / 9.8: 1000 round trips, one message in flight, only the last echo kept', async () => {
  const def = byId(group9, '9.8.3');
  const { ctx, rec, received } = recordingContext();
  await def.run(ctx);
  const echo = (data: Buffer, binary = true): ObservedEvent => ({ type: 'message', data, binary });
  const payload = Buffer.alloc(64, 0xfe);
  assert.equal(rec.sends.length, 1);
  for (let i = 1; i < 1000; i++) {
    assert.equal(def.onEvent?.(ctx, echo(payload)), false);
    assert.equal(rec.sends.length, i + 1);
  }
  assert.equal(def.onEvent?.(ctx, echo(payload)), true);
  assert.equal(rec.sends.length, 1000);
  assert.ok(rec.sends.every((s) => s.kind === 'frame' && s.frame.opcode === 2 && (s.frame.payload as Buffer).equals(payload)));
  assert.deepEqual(rec.expected, { OK: [['message', payload, true]] });
  assert.equal(received.length, 0);

  // A wrong echo is kept (so the case fails) and the client closes at once.
  const other = recordingContext();
  const text = byId(group9, '9.7.2');
  await text.run(other.ctx);
  assert.equal(text.onEvent?.(other.ctx, echo(Buffer.alloc(16, 0x2a), true)), true);
  assert.deepEqual(other.rec.sends.at(-1), { kind: 'close', code: 1000 });

  // 9.7.1 sends empty messages.
  const empty = recordingContext();
  await byId(group9, '9.7.1').run(empty.ctx);
  const s = empty.rec.sends[0];
  assert.ok(s?.kind === 'frame' && (s.frame.payload as Buffer).length === 0 && s.frame.opcode === 1);
});

test('filled repeats the seed and cuts the tail', () => {
  assert.equal(filled('abc', 7).toString(), 'abcabca');
  assert.equal(filled(Buffer.from([1, 2]), 3).toString('hex'), '010201');
  assert.equal(filled('x', 0).length, 0);
});
